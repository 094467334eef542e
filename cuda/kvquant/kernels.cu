// KV-quantization kernels. Every piece of arithmetic (codes, scales, per-element decode,
// spectral weights) comes from the shared headers the CPU backend also runs.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "cuda/check.cuh"
#include "cuda/kvquant/kernels.h"
#include "cuda/runtime.h"
#include "native/shared/error.h"
#include "native/shared/kvquant/encode.h"

namespace iz::kv::gpu {

namespace {

constexpr int kThreads = 256;  // >= the largest head_dim (256)
constexpr int kTile = 256;     // tokens scored per step of the attention loop

__device__ StreamView ViewOf(const Planes& P, size_t s) {
  StreamView v;
  for (int p = 0; p < kNumPlanes; ++p) v.p[p] = P.base[p] ? P.base[p] + s * P.stride[p] : nullptr;
  return v;
}

__global__ void KiviKeysKernel(Layout L, Planes P, size_t streams, const float* x, uint64_t first_block, int nblocks,
                               int ntok_last, int64_t n) {
  size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= streams * size_t(nblocks)) return;
  size_t s = i / nblocks, b = i % nblocks;
  int ntok = (int(b) == nblocks - 1) ? ntok_last : L.G;
  const float* rows = x + (s * size_t(n) + b * L.G) * L.d;  // n tokens per stream (last block may be partial)
  uint8_t* out = P.base[KBLK] + s * P.stride[KBLK] + (first_block + b) * L.kblock_bytes;
  EncodeKiviKeyBlock(L, rows, L.d, ntok, out);
}

// One thread per 32-token chunk (aligned to absolute token multiples of 32, so chunks never
// share a 32-bit word even when a token's codes are shorter than a word).
__global__ void KiviValuesKernel(Layout L, Planes P, size_t streams, const float* x, uint64_t t0, int64_t n,
                                 int64_t chunks) {
  size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= streams * size_t(chunks)) return;
  size_t s = i / chunks, c = i % chunks;
  uint64_t first = (t0 / 32 + c) * 32;
  uint64_t begin = first < t0 ? t0 : first, end = first + 32 < t0 + n ? first + 32 : t0 + n;
  uint32_t* codes = reinterpret_cast<uint32_t*>(P.base[VCODE] + s * P.stride[VCODE]);
  uint16_t* params = reinterpret_cast<uint16_t*>(P.base[VPARAM] + s * P.stride[VPARAM]);
  const int groups = L.d / L.Cg;
  for (uint64_t t = begin; t < end; ++t)
    EncodeTokenGroups(x + (s * n + (t - t0)) * L.d, L.d, L.Cg, L.bits, codes, t * L.d * L.bits,
                      params + t * 2 * groups);
}

__global__ void Fp8Kernel(Layout L, Planes P, size_t streams, const float* k, const float* v, uint64_t t0, int64_t n,
                          int nblocks) {
  size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= streams * size_t(nblocks) * 2) return;
  int kv = int(i % 2);
  size_t sb = i / 2, s = sb / nblocks, b = sb % nblocks;
  int64_t left = n - int64_t(b) * L.G;
  int ntok = int(left < L.G ? left : L.G);
  const float* rows = (kv ? v : k) + (s * n + b * L.G) * L.d;
  uint64_t t = t0 + b * L.G;
  uint8_t* code = P.base[kv ? VCODE : KCODE] + s * P.stride[kv ? VCODE : KCODE] + t * L.d;
  float* scale = reinterpret_cast<float*>(P.base[kv ? VPARAM : KPARAM] + s * P.stride[kv ? VPARAM : KPARAM]) + t / L.G;
  EncodeFp8Block(L, rows, L.d, ntok, code, scale);
}

__global__ void DequantKernel(Layout L, Planes P, size_t streams, int64_t tk, int64_t tv, int64_t T, const float* basis,
                              float* k, float* v) {
  int64_t tmax = tk > tv ? tk : tv;
  size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= streams * size_t(tmax)) return;
  size_t s = i / tmax;
  int64_t t = int64_t(i % tmax);
  StreamView view = ViewOf(P, s);
  if (t < tk) DecodeKeyToken(L, view, uint64_t(t), basis, k + (s * T + t) * L.d);
  if (t < tv)
    for (int c = 0; c < L.d; ++c) v[(s * T + t) * L.d + c] = ValueElem(L, view, uint64_t(t), c);
}

__device__ float BlockReduceMax(float x, float* red) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = x;
  __syncthreads();
  if (threadIdx.x < 32) {
    float y = threadIdx.x < blockDim.x / 32 ? red[threadIdx.x] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1) y = fmaxf(y, __shfl_xor_sync(0xffffffffu, y, o));
    if (threadIdx.x == 0) red[0] = y;
  }
  __syncthreads();
  float r = red[0];
  __syncthreads();
  return r;
}

__device__ float BlockReduceSum(float x, float* red) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = x;
  __syncthreads();
  if (threadIdx.x < 32) {
    float y = threadIdx.x < blockDim.x / 32 ? red[threadIdx.x] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) y += __shfl_xor_sync(0xffffffffu, y, o);
    if (threadIdx.x == 0) red[0] = y;
  }
  __syncthreads();
  float r = red[0];
  __syncthreads();
  return r;
}

// grid: (rows = streams * gq * nq, chunks). Thread j scores token tile_start + j straight from the
// codes; thread c then accumulates channel c of P.V, decoding each value element in registers.
__global__ void AttentionChunkKernel(Layout L, Planes P, AttentionArgs a, int64_t chunk, float* part_m, float* part_l,
                                     float* part_acc, float* probs, float* tile_m, int64_t tiles) {
  __shared__ float qp[kMaxHeadDim];
  __shared__ float qraw[kMaxHeadDim];
  __shared__ float prob[kTile];
  __shared__ float red[32];
  const int gq = a.q_heads / a.heads;
  const int64_t row = blockIdx.x;
  const int64_t i = row % a.nq;
  const int64_t sr = row / a.nq;
  const size_t s = size_t(sr / gq);
  const int r = int(sr % gq);
  const size_t b = s / a.heads, h = s % a.heads;
  const float* q = a.q + ((b * a.q_heads + h * gq + r) * size_t(a.nq) + size_t(i)) * L.d;
  for (int c = threadIdx.x; c < L.d; c += blockDim.x) qraw[c] = q[c];
  __syncthreads();
  for (int e = threadIdx.x; e < L.d; e += blockDim.x) qp[e] = PrepareQueryEntry(L, qraw, a.basis, e);
  __syncthreads();
  const StreamView view = ViewOf(P, s);
  const int64_t limit = a.causal ? a.causal_end - a.nq + i : a.T - 1;
  const int64_t t_begin = int64_t(blockIdx.y) * chunk;
  const int64_t t_end = min(a.T, min(t_begin + chunk, limit + 1));
  float m = -INFINITY, l = 0.0f, acc = 0.0f;  // thread c owns channel c of the accumulator
  const int c = threadIdx.x;
  for (int64_t tile = t_begin; tile < t_end; tile += kTile) {
    const int64_t t = tile + threadIdx.x;
    float logit = -INFINITY;
    if (threadIdx.x < kTile && t < t_end) {
      if (t >= a.tk) {
        const float* kr = a.rk + (s * size_t(a.T - a.tk) + size_t(t - a.tk)) * L.d;
        logit = 0.0f;
        for (int e = 0; e < L.d; ++e) logit += qraw[e] * kr[e];
      } else {
        logit = KeyDot(L, view, uint64_t(t), qp);
      }
      if (a.live && !a.live[s * size_t(a.T) + size_t(t)]) logit = -INFINITY;  // evicted slot
    }
    const float tile_max = BlockReduceMax(logit, red);
    if (tile_max == -INFINITY) {
      if (probs && threadIdx.x == 0) tile_m[size_t(row) * tiles + size_t(tile / kTile)] = -INFINITY;
      continue;
    }
    const float mn = fmaxf(m, tile_max);
    const float corr = m == -INFINITY ? 0.0f : __expf(m - mn);
    const float p = logit == -INFINITY ? 0.0f : __expf(logit - mn);
    if (threadIdx.x < kTile) prob[threadIdx.x] = p;
    if (probs) {
      if (threadIdx.x < kTile && t < a.T) probs[size_t(row) * size_t(a.T) + size_t(t)] = p;
      if (threadIdx.x == 0) tile_m[size_t(row) * tiles + size_t(tile / kTile)] = mn;
    }
    const float tile_sum = BlockReduceSum(p, red);  // also orders the prob[] writes
    l = l * corr + tile_sum;
    acc *= corr;
    m = mn;
    if (c < L.d) {
      const int64_t n = (t_end - tile) < kTile ? (t_end - tile) : int64_t(kTile);
      for (int j = 0; j < n; ++j) {
        const float pj = prob[j];
        if (pj == 0.0f) continue;
        const int64_t tt = tile + j;
        const float x = tt >= a.tv ? a.rv[(s * size_t(a.T - a.tv) + size_t(tt - a.tv)) * L.d + c]
                                   : ValueElem(L, view, uint64_t(tt), c);
        acc += pj * x;
      }
    }
    __syncthreads();
  }
  const size_t slot = size_t(row) * gridDim.y + blockIdx.y;
  if (threadIdx.x == 0) {
    part_m[slot] = m;
    part_l[slot] = l;
  }
  if (c < L.d) part_acc[slot * L.d + c] = acc;
}

__global__ void AttentionMergeKernel(AttentionArgs a, int d, int chunks, const float* part_m, const float* part_l,
                                     const float* part_acc, float* row_m, float* row_l) {
  const int64_t row = blockIdx.x;
  const int gq = a.q_heads / a.heads;
  const int64_t i = row % a.nq, sr = row / a.nq;
  const size_t s = size_t(sr / gq);
  const int r = int(sr % gq);
  const size_t b = s / a.heads, h = s % a.heads;
  float M = -INFINITY;
  for (int k = 0; k < chunks; ++k) M = fmaxf(M, part_m[size_t(row) * chunks + k]);
  float L = 0.0f, acc = 0.0f;
  const int c = threadIdx.x;
  for (int k = 0; k < chunks; ++k) {
    const size_t slot = size_t(row) * chunks + k;
    if (part_m[slot] == -INFINITY) continue;
    const float w = __expf(part_m[slot] - M);
    L += part_l[slot] * w;
    if (c < d) acc += part_acc[slot * d + c] * w;
  }
  if (c < d) a.out[((b * a.q_heads + h * gq + r) * size_t(a.nq) + size_t(i)) * d + c] = L > 0.0f ? acc / L : 0.0f;
  if (row_m && threadIdx.x == 0) {
    row_m[row] = M;
    row_l[row] = L;
  }
}

// grid: streams x token blocks; thread t adds every row's probability of token t, rescaled from
// the running max it was taken against to the row's final max and sum.
__global__ void ScoreAccumulateKernel(AttentionArgs a, const float* probs, const float* tile_m, int64_t tiles,
                                      const float* row_m, const float* row_l) {
  const size_t s = blockIdx.y;
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= a.T) return;
  const int64_t rows = int64_t(a.q_heads / a.heads) * a.nq;
  float sum = 0.0f;
  for (int64_t k = 0; k < rows; ++k) {
    const int64_t row = int64_t(s) * rows + k;
    const int64_t i = k % a.nq;
    const int64_t limit = a.causal ? a.causal_end - a.nq + i : a.T - 1;
    if (t > limit || row_m[row] == -INFINITY || !(row_l[row] > 0.0f)) continue;
    const float m = tile_m[size_t(row) * tiles + size_t(t / kTile)];
    if (m == -INFINITY) continue;
    sum += probs[size_t(row) * size_t(a.T) + size_t(t)] * (__expf(m - row_m[row]) / row_l[row]);
  }
  a.scores[s * size_t(a.T) + size_t(t)] += sum;
}

unsigned Blocks(size_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

}  // namespace

void KiviEncodeKeys(const Layout& L, const Planes& P, size_t streams, const float* x, uint64_t first_block, int nblocks,
                    int ntok_last) {
  if (nblocks <= 0) return;
  const int64_t n = int64_t(nblocks - 1) * L.G + ntok_last;
  KiviKeysKernel<<<Blocks(streams * nblocks, 128), 128>>>(L, P, streams, x, first_block, nblocks, ntok_last, n);
  cuda::CheckLastError("kvquant KIVI key encode");
  cuda::Synchronize();  // the caller frees the staging rows next
}

void KiviEncodeValues(const Layout& L, const Planes& P, size_t streams, const float* x, uint64_t t0, int64_t n) {
  if (n <= 0) return;
  int64_t chunks = int64_t((t0 + n + 31) / 32 - t0 / 32);
  KiviValuesKernel<<<Blocks(streams * chunks, 128), 128>>>(L, P, streams, x, t0, n, chunks);
  cuda::CheckLastError("kvquant KIVI value encode");
  cuda::Synchronize();
}

void Fp8Encode(const Layout& L, const Planes& P, size_t streams, const float* k, const float* v, uint64_t t0,
               int64_t n) {
  if (n <= 0) return;
  int nblocks = int((n + L.G - 1) / L.G);
  Fp8Kernel<<<Blocks(streams * nblocks * 2, 128), 128>>>(L, P, streams, k, v, t0, n, nblocks);
  cuda::CheckLastError("kvquant FP8 encode");
  cuda::Synchronize();
}

void Dequantize(const Layout& L, const Planes& P, size_t streams, int64_t tk, int64_t tv, int64_t T, const float* basis,
                float* k, float* v) {
  int64_t tmax = std::max(tk, tv);
  if (tmax <= 0) return;
  DequantKernel<<<Blocks(streams * size_t(tmax), 128), 128>>>(L, P, streams, tk, tv, T, basis, k, v);
  cuda::CheckLastError("kvquant dequantize");
  cuda::Synchronize();
}

void Attention(const Layout& L, const Planes& P, const AttentionArgs& a) {
  const size_t streams = size_t(a.batch) * a.heads;
  const int64_t rows = int64_t(streams) * (a.q_heads / a.heads) * a.nq;
  // Enough chunks to fill the GPU (~4 blocks per SM on a 132-SM part) without tiny chunks.
  int64_t want = std::max<int64_t>(1, 528 / std::max<int64_t>(1, rows));
  int64_t chunk = std::max<int64_t>(kTile, (a.T + want - 1) / want);
  chunk = (chunk + kTile - 1) / kTile * kTile;
  const int chunks = static_cast<int>((a.T + chunk - 1) / chunk);
  IZ_CHECK(rows < (int64_t(1) << 31) && chunks <= 65535, InvalidArgument,
           "too many query rows or tokens for one attention call");
  const int64_t tiles = (a.T + kTile - 1) / kTile;
  const size_t score_floats = a.scores ? size_t(rows) * (size_t(a.T) + size_t(tiles) + 2) : 0;
  float* scratch =
      static_cast<float*>(cuda::Malloc(sizeof(float) * (size_t(rows) * chunks * (2 + L.d) + score_floats)));
  float* pm = scratch;
  float* pl = pm + size_t(rows) * chunks;
  float* pacc = pl + size_t(rows) * chunks;
  float* probs = a.scores ? pacc + size_t(rows) * chunks * L.d : nullptr;
  float* tile_m = probs ? probs + size_t(rows) * size_t(a.T) : nullptr;
  float* row_m = tile_m ? tile_m + size_t(rows) * size_t(tiles) : nullptr;
  float* row_l = row_m ? row_m + rows : nullptr;
  cudaError_t err = cudaSuccess;
  if (probs) err = cudaMemset(probs, 0, sizeof(float) * size_t(rows) * size_t(a.T));
  dim3 grid(static_cast<unsigned>(rows), static_cast<unsigned>(chunks));
  if (err == cudaSuccess) {
    AttentionChunkKernel<<<grid, kThreads>>>(L, P, a, chunk, pm, pl, pacc, probs, tile_m, tiles);
    err = cudaGetLastError();
  }
  if (err == cudaSuccess) {
    AttentionMergeKernel<<<static_cast<unsigned>(rows), kThreads>>>(a, L.d, chunks, pm, pl, pacc, row_m, row_l);
    err = cudaGetLastError();
  }
  if (err == cudaSuccess && probs) {
    dim3 sgrid(static_cast<unsigned>((a.T + kThreads - 1) / kThreads), static_cast<unsigned>(streams));
    ScoreAccumulateKernel<<<sgrid, kThreads>>>(a, probs, tile_m, tiles, row_m, row_l);
    err = cudaGetLastError();
  }
  if (err == cudaSuccess) err = cudaDeviceSynchronize();
  cuda::Free(scratch);
  IZ_CUDA_CHECK(err);  // either attention kernel
}

}  // namespace iz::kv::gpu
