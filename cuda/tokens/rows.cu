// Row kernels shared by the TopV and Zero-TPrune device paths (cuda/tokens/transport.cu,
// graph.cu): the input check, f64 squared norms and dot products summed in channel order
// with separate multiply and add (the CPU's pair_dots.h order, so each value has the CPU's
// bits), and the gather of the kept rows into a new tensor.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "cuda/tokens/rows.h"
#include "native/shared/error.h"

namespace iz::cuda::tokens {

using iz::tokens::LoadAsF32;
using iz::tokens::TokDType;

namespace {

constexpr int kThreads = 256;
constexpr int kCheckBlocks = 256;
constexpr int kTile = 16;
constexpr int64_t kNone = INT64_MAX;

// Per block: the lowest index of a bad element (NaN/Inf, or < 0 with reject_negative), kNone
// when none. Each thread scans a grid-stride sequence, so its first hit is its lowest.
__global__ void FirstBadKernel(const void* x, TokDType dt, int64_t count, bool reject_negative, int64_t* block_min) {
  __shared__ int64_t low[kThreads];
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  int64_t mine = kNone;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const float v = LoadAsF32(x, i, dt);
    if (!isfinite(v) || (reject_negative && v < 0.0f)) {
      mine = i;
      break;
    }
  }
  low[threadIdx.x] = mine;
  __syncthreads();
  for (unsigned s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) low[threadIdx.x] = min(low[threadIdx.x], low[threadIdx.x + s]);
    __syncthreads();
  }
  if (threadIdx.x == 0) block_min[blockIdx.x] = low[0];
}

__global__ void SquaredNormsKernel(const void* x, TokDType dt, const int32_t* ids, int64_t rows, int64_t c,
                                   double* out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows) return;
  const int64_t base = int64_t(ids ? ids[i] : i) * c;
  double s = 0;
  for (int64_t k = 0; k < c; ++k) {
    const double v = LoadAsF32(x, base + k, dt);
    s = __dadd_rn(s, __dmul_rn(v, v));
  }
  out[i] = s;
}

// One 16 x 16 tile of (a row, b row) pairs per block; channels staged through shared
// memory 16 at a time, each thread's sum running over them in order.
__global__ void PairDotsKernel(const void* a, TokDType da, const int32_t* ids_a, int64_t na, const void* b, TokDType db,
                               const int32_t* ids_b, int64_t nb, int64_t c, double* out, int64_t stride_i,
                               int64_t stride_j) {
  __shared__ double ta[kTile][kTile + 1];
  __shared__ double tb[kTile][kTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t i0 = int64_t(blockIdx.y) * kTile, j0 = int64_t(blockIdx.x) * kTile;
  // the rows this thread stages: a row i0 + ty and b row j0 + ty, channel k0 + tx
  const int64_t la = i0 + ty, lb = j0 + ty;
  const int64_t base_a = la < na ? int64_t(ids_a ? ids_a[la] : la) * c : -1;
  const int64_t base_b = lb < nb ? int64_t(ids_b ? ids_b[lb] : lb) * c : -1;
  double acc = 0;
  for (int64_t k0 = 0; k0 < c; k0 += kTile) {
    const int64_t k = k0 + tx;
    ta[ty][tx] = base_a >= 0 && k < c ? double(LoadAsF32(a, base_a + k, da)) : 0.0;
    tb[ty][tx] = base_b >= 0 && k < c ? double(LoadAsF32(b, base_b + k, db)) : 0.0;
    __syncthreads();
    const int len = int(min(int64_t(kTile), c - k0));
    for (int kk = 0; kk < len; ++kk) acc = __dadd_rn(acc, __dmul_rn(ta[ty][kk], tb[tx][kk]));
    __syncthreads();
  }
  const int64_t i = i0 + ty, j = j0 + tx;
  if (i < na && j < nb) out[i * stride_i + j * stride_j] = acc;
}

// One block per (kept row, batch item); threads copy 16-bit units.
__global__ void GatherRowsKernel(const uint16_t* src, int64_t n, int64_t units, const int32_t* kept, int64_t k,
                                 uint16_t* dst) {
  const int64_t j = blockIdx.x, b = blockIdx.y;
  const uint16_t* from = src + (b * n + kept[b * k + j]) * units;
  uint16_t* to = dst + (b * k + j) * units;
  for (int64_t u = threadIdx.x; u < units; u += blockDim.x) to[u] = from[u];
}

}  // namespace

int64_t FirstBadElement(const void* x, TokDType dt, int64_t count, bool reject_negative, float* value) {
  if (count <= 0) return -1;
  const int blocks = int(std::min<int64_t>(kCheckBlocks, (count + kThreads - 1) / kThreads));
  Scratch block_min(size_t(blocks) * sizeof(int64_t));
  FirstBadKernel<<<blocks, kThreads>>>(x, dt, count, reject_negative, block_min.as<int64_t>());
  CheckLastError("token input check");
  std::vector<int64_t> host(static_cast<size_t>(blocks));
  CopyDeviceToHost(host.data(), block_min.as<int64_t>(), host.size() * sizeof(int64_t));
  const int64_t first = *std::min_element(host.begin(), host.end());
  if (first == kNone) return -1;
  const int64_t eb = iz::tokens::DTypeBytes(dt);
  uint32_t raw = 0;
  CopyDeviceToHost(&raw, static_cast<const uint8_t*>(x) + first * eb, size_t(eb));
  *value = LoadAsF32(&raw, 0, dt);
  return first;
}

unsigned LaunchBlocks(int64_t count, int threads, const char* what) {
  const int64_t b = (count + threads - 1) / threads;
  IZ_CHECK(b < (int64_t(1) << 31), Unsupported, std::string(what) + " is too large for one launch");
  return unsigned(b);
}

void SquaredNormsF64(const void* x, TokDType dt, const int32_t* ids, int64_t rows, int64_t c, double* out) {
  if (rows <= 0) return;
  SquaredNormsKernel<<<LaunchBlocks(rows, kThreads, "the token rows"), kThreads>>>(x, dt, ids, rows, c, out);
  CheckLastError("token squared norms");
}

void PairDotsF64(const RowSet& a, const RowSet& b, int64_t c, double* out, int64_t stride_i, int64_t stride_j) {
  if (a.count <= 0 || b.count <= 0) return;
  const int64_t gy = (a.count + kTile - 1) / kTile, gx = (b.count + kTile - 1) / kTile;
  IZ_CHECK(gy <= 65535 && gx < (int64_t(1) << 31), Unsupported,
           "the CUDA token similarity handles at most " + std::to_string(65535 * kTile) + " rows per side");
  PairDotsKernel<<<dim3(unsigned(gx), unsigned(gy)), dim3(kTile, kTile)>>>(a.x, a.dt, a.ids, a.count, b.x, b.dt, b.ids,
                                                                           b.count, c, out, stride_i, stride_j);
  CheckLastError("token pair dots");
}

void GatherRows(const void* src, int64_t batch, int64_t n, int64_t row_bytes, const std::vector<int32_t>& kept_host,
                int64_t k, void* dst) {
  if (batch <= 0 || k <= 0 || row_bytes <= 0) return;
  IZ_CHECK(row_bytes % 2 == 0, Internal, "rows of an odd byte count");
  IZ_CHECK(static_cast<int64_t>(kept_host.size()) == batch * k, Internal, "one kept list of k rows per batch item");
  for (const int32_t i : kept_host) IZ_CHECK(i >= 0 && i < n, Internal, "kept row out of range");
  IZ_CHECK(batch <= 65535 && k < (int64_t(1) << 31), Unsupported, "too many rows to gather in one launch");
  Scratch kept(kept_host.size() * sizeof(int32_t));
  CopyHostToDevice(kept.as<int32_t>(), kept_host.data(), kept_host.size() * sizeof(int32_t));
  GatherRowsKernel<<<dim3(unsigned(k), unsigned(batch)), kThreads>>>(
      static_cast<const uint16_t*>(src), n, row_bytes / 2, kept.as<int32_t>(), k, static_cast<uint16_t*>(dst));
  CheckLastError("token row gather");
  Synchronize();
}

}  // namespace iz::cuda::tokens
