// CUDA kernels for one ToMe step. Same decisions as the CPU backend: the shared
// tome_hd.h holds the tie rules, placement and dtype conversion.
//   normalize -> best match (warp per B row, fused argmax) -> rank (score desc,
//   index asc) -> placement (one thread per batch row) -> weighted scatter-reduce.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda/runtime.h"
#include "cuda/tokens/tome.h"
#include "native/shared/error.h"

namespace iz::cuda::tokens {

using iz::tokens::TokDType;

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

// Flags what the CPU backend rejects: bit 1 = x holds NaN/Inf, 2 = metric does, 4 = a size
// is not finite and > 0. Grid-stride over every element.
__global__ void CheckInputsKernel(const void* x, int64_t nx, const void* metric, int64_t nm, TokDType dt,
                                  const float* sizes, int64_t ns, unsigned* flags) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  unsigned bad = 0;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < nx || i < nm || i < ns; i += stride) {
    if (i < nx && !isfinite(iz::tokens::LoadAsF32(x, i, dt))) bad |= 1u;
    if (i < nm && !isfinite(iz::tokens::LoadAsF32(metric, i, dt))) bad |= 2u;
    if (i < ns && !(isfinite(sizes[i]) && sizes[i] > 0.0f)) bad |= 4u;
  }
  if (bad) atomicOr(flags, bad);
}

__global__ void NormalizeKernel(const void* metric, TokDType dt, int64_t cm, float* out) {
  const int64_t row = blockIdx.x;
  __shared__ float partial[kThreads];
  float ss = 0.f;
  for (int64_t k = threadIdx.x; k < cm; k += blockDim.x) {
    const float v = iz::tokens::LoadAsF32(metric, row * cm + k, dt);
    ss += v * v;
  }
  partial[threadIdx.x] = ss;
  __syncthreads();
  for (unsigned s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  const float inv = iz::tokens::InvNorm(partial[0]);
  for (int64_t k = threadIdx.x; k < cm; k += blockDim.x)
    out[row * cm + k] = iz::tokens::LoadAsF32(metric, row * cm + k, dt) * inv;
}

// One block per (A row, batch row); each warp scores B rows with lanes over channels.
__global__ void BestMatchKernel(const float* nm, int64_t n, int64_t cm, const uint8_t* protect, int32_t* best_b,
                                float* best_score) {
  const int64_t a = blockIdx.x, batch = blockIdx.y;
  const int64_t na = iz::tokens::SideCountA(n), nb = iz::tokens::SideCountB(n);
  const float* arow = nm + (batch * n + 2 * a) * cm;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float my_best = iz::tokens::kProtectedScore;
  int64_t my_idx = -1;
  for (int64_t b = warp; b < nb; b += kWarps) {
    if (protect && protect[2 * b + 1]) continue;
    const float* brow = nm + (batch * n + 2 * b + 1) * cm;
    float acc = 0.f;
    for (int64_t k = lane; k < cm; k += 32) acc += arow[k] * brow[k];
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
    if (my_idx < 0 || iz::tokens::ArgmaxBetter(acc, b, my_best, my_idx)) my_best = acc, my_idx = b;
  }
  __shared__ float ws[kWarps];
  __shared__ int64_t wi[kWarps];
  if (lane == 0) ws[warp] = my_best, wi[warp] = my_idx;
  __syncthreads();
  if (threadIdx.x == 0) {
    float best = iz::tokens::kProtectedScore;
    int64_t idx = -1;
    for (int w = 0; w < kWarps; ++w) {
      if (wi[w] < 0) continue;
      if (idx < 0 || iz::tokens::ArgmaxBetter(ws[w], wi[w], best, idx)) best = ws[w], idx = wi[w];
    }
    const bool prot = protect && protect[2 * a];
    best_b[batch * na + a] = prot ? -1 : static_cast<int32_t>(idx);
    best_score[batch * na + a] = prot || idx < 0 ? iz::tokens::kProtectedScore : best;
  }
}

// merged[a] = a is among the r first of the strict order (score desc, index asc).
__global__ void RankKernel(int64_t na, int64_t r, const int32_t* best_b, const float* best_score, uint8_t* merged) {
  const int64_t batch = blockIdx.y;
  const int64_t a = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (a >= na) return;
  const int32_t* bb = best_b + batch * na;
  const float* sc = best_score + batch * na;
  uint8_t out = 0;
  if (bb[a] >= 0) {
    int64_t rank = 0;
    for (int64_t o = 0; o < na && rank < r; ++o)
      if (bb[o] >= 0 && iz::tokens::RankBefore(sc[o], o, sc[a], a)) ++rank;
    out = rank < r;
  }
  merged[batch * na + a] = out;
}

__global__ void PlacementKernel(int64_t n, int64_t n_out, bool keep_order, const uint8_t* merged, const int32_t* best_b,
                                int32_t* dest, int32_t* offsets, int32_t* sources) {
  const int64_t batch = blockIdx.x;
  const int64_t na = iz::tokens::SideCountA(n);
  iz::tokens::BuildPlacement(n, merged + batch * na, best_b + batch * na, keep_order, dest + batch * n,
                             offsets + batch * (n_out + 1), sources + batch * n, n_out);
}

// One block per (output token, batch row); threads over channels; sources summed in
// ascending order like the CPU, so results match bit for bit up to FMA contraction.
__global__ void ReduceKernel(const void* x, TokDType dt, const float* sizes, int64_t n, int64_t n_out, int64_t c,
                             const int32_t* offsets, const int32_t* sources, void* out_x, float* out_sizes) {
  const int64_t j = blockIdx.x, batch = blockIdx.y;
  const int32_t* off = offsets + batch * (n_out + 1);
  const int32_t* src = sources + batch * n;
  const float* sz = sizes ? sizes + batch * n : nullptr;
  const int32_t o0 = off[j], o1 = off[j + 1];
  const int64_t xbase = batch * n * c, obase = (batch * n_out + j) * c;
  if (o1 - o0 == 1) {
    const int64_t i = src[o0];
    for (int64_t k = threadIdx.x; k < c; k += blockDim.x)
      iz::tokens::StoreFromF32(out_x, obase + k, iz::tokens::LoadAsF32(x, xbase + i * c + k, dt), dt);
    if (threadIdx.x == 0) out_sizes[batch * n_out + j] = sz ? sz[i] : 1.0f;
    return;
  }
  float wsum = 0.f;
  for (int32_t q = o0; q < o1; ++q) wsum += sz ? sz[src[q]] : 1.0f;
  for (int64_t k = threadIdx.x; k < c; k += blockDim.x) {
    float acc = 0.f;
    for (int32_t q = o0; q < o1; ++q) {
      const int64_t i = src[q];
      acc = __fadd_rn(acc, __fmul_rn(iz::tokens::LoadAsF32(x, xbase + i * c + k, dt), sz ? sz[i] : 1.0f));
    }
    iz::tokens::StoreFromF32(out_x, obase + k, iz::tokens::WeightedMean(acc, wsum), dt);
  }
  if (threadIdx.x == 0) out_sizes[batch * n_out + j] = wsum;
}

}  // namespace

void TomeMerge(int64_t batch, int64_t n, int64_t c, int64_t cm, int64_t r, bool keep_order, TokDType dtype,
               const void* x, const void* metric, const float* sizes, const uint8_t* protect_host, void* out_x,
               float* out_sizes, int32_t* dest) {
  IZ_CHECK(batch <= 65535, Unsupported, "the CUDA token merge handles at most 65535 batch rows per call");
  IZ_CHECK(batch * n < (int64_t(1) << 31), Unsupported, "the CUDA token merge handles fewer than 2^31 tokens per call");
  const int64_t na = iz::tokens::SideCountA(n), n_out = n - r;
  Scratch nm(size_t(batch * n * cm) * 4);
  Scratch best_b(size_t(batch * na) * 4), best_score(size_t(batch * na) * 4), merged(size_t(batch * na));
  Scratch offsets(size_t(batch * (n_out + 1)) * 4), sources(size_t(batch * n) * 4);
  Scratch protect(protect_host ? size_t(n) : 0);
  if (protect_host) CopyHostToDevice(protect.as<void>(), protect_host, size_t(n));

  // Reject what the CPU backend rejects (non-finite x or metric, sizes not finite and > 0)
  // instead of merging NaN scores, which breaks the strict ranking and the count of merges.
  {
    Scratch flags(sizeof(unsigned));
    Memset(flags.as<void>(), 0, sizeof(unsigned));
    CheckInputsKernel<<<1024, kThreads>>>(x, batch * n * c, metric, metric == x ? 0 : batch * n * cm, dtype, sizes,
                                          sizes ? batch * n : 0, flags.as<unsigned>());
    CheckLastError("tome input check");
    unsigned bad = 0;
    CopyDeviceToHost(&bad, flags.as<void>(), sizeof(unsigned));
    IZ_CHECK(!(bad & 1u), InvalidArgument, "x holds a non-finite value (NaN or Inf); clean the input before merging");
    IZ_CHECK(!(bad & 2u), InvalidArgument,
             "metric holds a non-finite value (NaN or Inf); clean the input before merging");
    IZ_CHECK(!(bad & 4u), InvalidArgument, "sizes must be finite and > 0");
  }

  NormalizeKernel<<<dim3(unsigned(batch * n)), kThreads>>>(metric, dtype, cm, nm.as<float>());
  CheckLastError("tome normalize");
  BestMatchKernel<<<dim3(unsigned(na), unsigned(batch)), kThreads>>>(nm.as<float>(), n, cm, protect.as<uint8_t>(),
                                                                     best_b.as<int32_t>(), best_score.as<float>());
  CheckLastError("tome best match");
  RankKernel<<<dim3(unsigned((na + kThreads - 1) / kThreads), unsigned(batch)), kThreads>>>(
      na, r, best_b.as<int32_t>(), best_score.as<float>(), merged.as<uint8_t>());
  CheckLastError("tome rank");
  PlacementKernel<<<unsigned(batch), 1>>>(n, n_out, keep_order, merged.as<uint8_t>(), best_b.as<int32_t>(), dest,
                                          offsets.as<int32_t>(), sources.as<int32_t>());
  CheckLastError("tome placement");
  if (n_out > 0) {
    ReduceKernel<<<dim3(unsigned(n_out), unsigned(batch)), kThreads>>>(
        x, dtype, sizes, n, n_out, c, offsets.as<int32_t>(), sources.as<int32_t>(), out_x, out_sizes);
    CheckLastError("tome reduce");
  }
  Synchronize();
}

bool TomeAnyNonFinite(const void* x, int64_t count, TokDType dtype) {
  if (count <= 0) return false;
  Scratch flags(sizeof(unsigned));
  Memset(flags.as<void>(), 0, sizeof(unsigned));
  CheckInputsKernel<<<1024, kThreads>>>(x, count, nullptr, 0, dtype, nullptr, 0, flags.as<unsigned>());
  CheckLastError("tome finite check");
  unsigned bad = 0;
  CopyDeviceToHost(&bad, flags.as<void>(), sizeof(unsigned));
  return bad != 0;
}

void TomeNormalizeRows(int64_t rows, int64_t cm, TokDType dtype, const void* metric, float* out) {
  IZ_CHECK(rows < (int64_t(1) << 31), Unsupported, "the CUDA token merge handles fewer than 2^31 rows per call");
  if (rows <= 0) return;
  NormalizeKernel<<<dim3(unsigned(rows)), kThreads>>>(metric, dtype, cm, out);
  CheckLastError("tome normalize");
}

void TomeReduce(int64_t batch, int64_t n, int64_t n_out, int64_t c, TokDType dtype, const void* x, const float* sizes,
                const int32_t* offsets, const int32_t* sources, void* out_x, float* out_sizes) {
  IZ_CHECK(batch <= 65535 && n_out < (int64_t(1) << 31), Unsupported,
           "the CUDA token merge handles at most 65535 batch rows per call");
  if (n_out <= 0 || batch <= 0) return;
  ReduceKernel<<<dim3(unsigned(n_out), unsigned(batch)), kThreads>>>(x, dtype, sizes, n, n_out, c, offsets, sources,
                                                                     out_x, out_sizes);
  CheckLastError("tome reduce");
}

}  // namespace iz::cuda::tokens
