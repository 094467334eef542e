// ToMe matching on the GPU: normalize metric rows (A = even, B = odd tokens), then for
// every A row the most similar unprotected B row. One block per A row, one warp per B
// row at a time with lanes striding over channels (coalesced), warp-shuffle reductions.
#include <cuda_runtime.h>

#include <cfloat>
#include <string>

#include "../../native/core/error.h"
#include "../runtime.h"
#include "match.h"
#include "similarity.h"

namespace iz::tokens::cuda {

namespace {

constexpr int kWarps = 8;

__device__ float WarpSum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// rows [n, cm] in original order -> out: A rows (even) then B rows (odd), unit norm.
__global__ void NormalizeSplitKernel(const float* __restrict__ in, size_t n, size_t cm, float* __restrict__ out) {
  size_t row = blockIdx.x;
  if (row >= n) return;
  size_t na = (n + 1) / 2;
  size_t dst = (row % 2 == 0) ? row / 2 : na + row / 2;
  const float* src = in + row * cm;
  float ss = 0.f;
  for (size_t k = threadIdx.x; k < cm; k += blockDim.x) ss += src[k] * src[k];
  __shared__ float partial[32];
  ss = WarpSum(ss);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < (blockDim.x + 31) / 32 ? partial[threadIdx.x] : 0.f;
    v = WarpSum(v);
    if (threadIdx.x == 0) partial[0] = v;
  }
  __syncthreads();
  float inv = InverseNorm(partial[0]);
  for (size_t k = threadIdx.x; k < cm; k += blockDim.x) out[dst * cm + k] = src[k] * inv;
}

__global__ void MatchKernel(const float* __restrict__ rows, size_t n, size_t cm, const uint8_t* __restrict__ protect,
                            int32_t* __restrict__ best, float* __restrict__ score) {
  size_t na = (n + 1) / 2, nb = n / 2;
  size_t a = blockIdx.x;
  if (a >= na) return;
  const float* A = rows + a * cm;
  const float* B = rows + na * cm;
  int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float best_s = -FLT_MAX;
  int best_i = -1;
  for (size_t b = warp; b < nb; b += kWarps) {
    if (protect && protect[2 * b + 1]) continue;
    const float* br = B + b * cm;
    float d = 0.f;
    for (size_t k = lane; k < cm; k += 32) d += A[k] * br[k];
    d = WarpSum(d);
    if (best_i < 0 || Better(d, int(b), best_s, best_i)) best_s = d, best_i = int(b);
  }
  __shared__ float ws[kWarps];
  __shared__ int wi[kWarps];
  if (lane == 0) ws[warp] = best_s, wi[warp] = best_i;
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = -FLT_MAX;
    int i = -1;
    for (int w = 0; w < kWarps; ++w) {
      if (wi[w] < 0) continue;
      if (i < 0 || Better(ws[w], wi[w], s, i)) s = ws[w], i = wi[w];
    }
    bool prot = protect && protect[2 * a];
    best[a] = i;
    score[a] = (prot || i < 0) ? -INFINITY : s;
  }
}

struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(size_t bytes) { p = iz::cuda::Malloc(bytes); }
  ~DeviceBuffer() { iz::cuda::Free(p); }
  template <class T>
  T* as() { return static_cast<T*>(p); }
};

}  // namespace

void TomeMatch(const float* metric, size_t n, size_t cm, const uint8_t* protect, int32_t* best, float* score) {
  size_t na = (n + 1) / 2;
  if (n == 0 || cm == 0) return;
  DeviceBuffer d_in(n * cm * sizeof(float)), d_rows(n * cm * sizeof(float));
  DeviceBuffer d_best(na * sizeof(int32_t)), d_score(na * sizeof(float));
  DeviceBuffer d_prot(protect ? n : 1);
  iz::cuda::CopyHostToDevice(d_in.p, metric, n * cm * sizeof(float));
  if (protect) iz::cuda::CopyHostToDevice(d_prot.p, protect, n);
  NormalizeSplitKernel<<<unsigned(n), 256>>>(d_in.as<float>(), n, cm, d_rows.as<float>());
  iz::cuda::CheckLastError("token merge: normalize kernel");
  MatchKernel<<<unsigned(na), kWarps * 32>>>(d_rows.as<float>(), n, cm, protect ? d_prot.as<uint8_t>() : nullptr, d_best.as<int32_t>(),
                                             d_score.as<float>());
  iz::cuda::CheckLastError("token merge: match kernel");
  iz::cuda::CopyDeviceToHost(best, d_best.p, na * sizeof(int32_t));
  iz::cuda::CopyDeviceToHost(score, d_score.p, na * sizeof(float));
}

}  // namespace iz::tokens::cuda
