// CUDA kernels of TempMe's cross-clip step: a bipartite merge whose sides are explicit row
// lists (the tokens of a group's 2nd, 4th, ... clips into those of its 1st, 3rd, ...), which
// ToMe's even/odd kernels cannot express. Normalization, validation and the weighted
// reduce are ToMe's own (cuda/tokens/tome.h); the tie rules are tome_hd.h's and the
// placement is clips_hd.h's, which the CPU backend runs too.
//   normalize -> best match (warp per B row) -> rank -> placement (thread per clip) -> reduce
#include <cuda_runtime.h>

#include <cstdint>

#include "cuda/runtime.h"
#include "cuda/tokens/clips.h"
#include "cuda/tokens/tome.h"
#include "native/shared/error.h"
#include "native/shared/tokens/clips_hd.h"

namespace iz::cuda::tokens {

using iz::tokens::TokDType;

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

// One block per (A row k, clip); warps over the B list, lanes over channels. best_q is the
// index into the B list (ascending positions, so the lower index is the lower position).
__global__ void ListBestMatchKernel(const float* nm, int64_t n, int64_t c, const int32_t* a_rows, int64_t na,
                                    const int32_t* b_rows, int64_t nb, int32_t* best_q, float* best_score) {
  const int64_t k = blockIdx.x, clip = blockIdx.y;
  const float* arow = nm + (clip * n + a_rows[k]) * c;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  float my_best = iz::tokens::kProtectedScore;
  int64_t my_idx = -1;
  for (int64_t q = warp; q < nb; q += kWarps) {
    const float* brow = nm + (clip * n + b_rows[q]) * c;
    float acc = 0.f;
    for (int64_t j = lane; j < c; j += 32) acc += arow[j] * brow[j];
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
    if (my_idx < 0 || iz::tokens::ArgmaxBetter(acc, q, my_best, my_idx)) my_best = acc, my_idx = q;
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
    best_q[clip * na + k] = static_cast<int32_t>(idx);
    best_score[clip * na + k] = best;
  }
}

// merged[k] = A row k is among the r first of the strict order (score desc, position asc).
__global__ void ListRankKernel(int64_t na, int64_t r, const float* best_score, uint8_t* merged) {
  const int64_t clip = blockIdx.y;
  const int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (k >= na) return;
  const float* sc = best_score + clip * na;
  int64_t rank = 0;
  for (int64_t o = 0; o < na && rank < r; ++o)
    if (iz::tokens::RankBefore(sc[o], o, sc[k], k)) ++rank;
  merged[clip * na + k] = rank < r;
}

// One thread per clip: into[] from the merge decisions, then the shared placement.
__global__ void ListPlacementKernel(int64_t n, int64_t n_out, const int32_t* a_rows, int64_t na, const int32_t* b_rows,
                                    const uint8_t* merged, const int32_t* best_q, int32_t* into, int32_t* dest,
                                    int32_t* offsets, int32_t* sources) {
  const int64_t clip = blockIdx.x;
  int32_t* in = into + clip * n;
  for (int64_t i = 0; i < n; ++i) in[i] = -1;
  for (int64_t k = 0; k < na; ++k)
    if (merged[clip * na + k]) in[a_rows[k]] = b_rows[best_q[clip * na + k]];
  iz::tokens::BuildKeepOrderPlacement(n, in, dest + clip * n, offsets + clip * (n_out + 1), sources + clip * n, n_out);
}

__global__ void ConvertKernel(const void* in, TokDType in_dt, void* out, TokDType out_dt, int64_t count) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride)
    iz::tokens::StoreFromF32(out, i, iz::tokens::LoadAsF32(in, i, in_dt), out_dt);
}

}  // namespace

void ClipListMerge(int64_t batch, int64_t n, int64_t c, const int32_t* a_host, int64_t na, const int32_t* b_host,
                   int64_t nb, int64_t r, const float* x, const float* sizes, float* out_x, float* out_sizes,
                   int32_t* dest) {
  IZ_CHECK(batch >= 1 && batch <= 65535, Unsupported, "the CUDA clip merge handles 1 to 65535 clips per call");
  IZ_CHECK(batch * n < (int64_t(1) << 31) && na <= n && nb <= n && na + nb <= n, Unsupported,
           "the CUDA clip merge handles fewer than 2^31 tokens per call");
  IZ_CHECK(r >= 0 && r <= na && (r == 0 || nb > 0), InvalidArgument, "clip merge count out of range");
  const int64_t n_out = n - r;
  Scratch nm(r > 0 ? size_t(batch * n * c) * 4 : 0), a_rows(size_t(na) * 4), b_rows(size_t(nb) * 4);
  Scratch best_q(size_t(batch * na) * 4), best_score(size_t(batch * na) * 4), merged(size_t(batch * na));
  Scratch into(size_t(batch * n) * 4), offsets(size_t(batch * (n_out + 1)) * 4), sources(size_t(batch * n) * 4);
  if (na) CopyHostToDevice(a_rows.as<void>(), a_host, size_t(na) * 4);
  if (nb) CopyHostToDevice(b_rows.as<void>(), b_host, size_t(nb) * 4);
  if (r > 0) {
    TomeNormalizeRows(batch * n, c, TokDType::F32, x, nm.as<float>());
    ListBestMatchKernel<<<dim3(unsigned(na), unsigned(batch)), kThreads>>>(
        nm.as<float>(), n, c, a_rows.as<int32_t>(), na, b_rows.as<int32_t>(), nb, best_q.as<int32_t>(),
        best_score.as<float>());
    CheckLastError("clip best match");
    ListRankKernel<<<dim3(unsigned((na + kThreads - 1) / kThreads), unsigned(batch)), kThreads>>>(
        na, r, best_score.as<float>(), merged.as<uint8_t>());
    CheckLastError("clip rank");
  } else if (na) {
    Memset(merged.as<void>(), 0, size_t(batch * na));
  }
  ListPlacementKernel<<<unsigned(batch), 1>>>(n, n_out, a_rows.as<int32_t>(), na, b_rows.as<int32_t>(),
                                              merged.as<uint8_t>(), best_q.as<int32_t>(), into.as<int32_t>(), dest,
                                              offsets.as<int32_t>(), sources.as<int32_t>());
  CheckLastError("clip placement");
  TomeReduce(batch, n, n_out, c, TokDType::F32, x, sizes, offsets.as<int32_t>(), sources.as<int32_t>(), out_x,
             out_sizes);
  Synchronize();
}

void ClipConvert(const void* in, TokDType in_dt, void* out, TokDType out_dt, int64_t count) {
  if (count <= 0) return;
  const int64_t blocks = (count + kThreads - 1) / kThreads;
  ConvertKernel<<<unsigned(blocks < 4096 ? blocks : 4096), kThreads>>>(in, in_dt, out, out_dt, count);
  CheckLastError("clip convert");
  Synchronize();
}

}  // namespace iz::cuda::tokens
