// Zero-TPrune on the GPU: the weighted PageRank over each head's attention graph (I stage)
// and the cosine similarities of the S stage, with the CPU backend's arithmetic
// (native/shared/tokens/reduce_hd.h) and summation order. One PageRank round is two
// launches: the per-row weights s_j / r_j, then one thread per (key i, head) summing the
// rows j in ascending order with coalesced reads of A[h, j, i].
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda/tokens/graph.h"
#include "cuda/tokens/rows.h"
#include "native/shared/error.h"
#include "native/shared/tokens/reduce_hd.h"

namespace iz::cuda::tokens {

using iz::tokens::LoadAsF32;
using iz::tokens::TokDType;

namespace {

constexpr int kThreads = 256;

unsigned Blocks(int64_t count) { return LaunchBlocks(count, kThreads, "the CUDA attention graph"); }

// r[h, j] = sum over i of A[h, j, i]
__global__ void RowSumKernel(const void* att, TokDType dt, int64_t rows, int64_t n, double* r) {
  const int64_t hj = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (hj >= rows) return;
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s = __dadd_rn(s, double(LoadAsF32(att, hj * n + i, dt)));
  r[hj] = s;
}

__global__ void FillKernel(double* x, int64_t count, double value) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) x[i] = value;
}

__global__ void WeightKernel(const double* s, const double* r, int64_t rows, int64_t n, double* w) {
  const int64_t hj = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (hj < rows) w[hj] = iz::tokens::PageRankWeight(s[hj], r[hj], n);
}

// next[h, i] = sum over j of A[h, j, i] w[h, j] (a zero row j gives w[h, j] to every key)
__global__ void StepKernel(const void* att, TokDType dt, int64_t n, const double* w, const double* r, double* next) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, h = blockIdx.y;
  if (i >= n) return;
  const double* wh = w + h * n;
  const double* rh = r + h * n;
  double acc = 0;
  for (int64_t j = 0; j < n; ++j)
    acc = __dadd_rn(acc, iz::tokens::PageRankTerm(LoadAsF32(att, (h * n + j) * n + i, dt), wh[j], rh[j]));
  next[h * n + i] = acc;
}

__global__ void HeadMeanKernel(const double* s, int64_t heads, int64_t n, double* imp) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  double acc = 0;
  for (int64_t h = 0; h < heads; ++h) acc = __dadd_rn(acc, s[h * n + i]);
  imp[i] = acc / double(heads);
}

// sim[k] = max over q of cos(A_k, B_q) from the dots [na][nb] and the squared norms of the
// list (B first, then A)
__global__ void SimilarityMaxKernel(const double* dots, const double* norms, int64_t nb, int64_t na, double* sim) {
  const int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= na) return;
  double best = -INFINITY;
  for (int64_t q = 0; q < nb; ++q)
    best = max(best, iz::tokens::GuardedCosineHd(dots[k * nb + q], norms[nb + k], norms[q]));
  sim[k] = best;
}

}  // namespace

std::vector<double> GraphImportance(const void* attention, TokDType dt, int64_t heads, int64_t n, int64_t iters) {
  IZ_CHECK(heads >= 1 && heads <= 65535, Unsupported, "the CUDA attention graph handles 1 to 65535 heads");
  const int64_t rows = heads * n;
  Scratch r(size_t(rows) * 8), w(size_t(rows) * 8), s(size_t(rows) * 8), next(size_t(rows) * 8), imp(size_t(n) * 8);
  RowSumKernel<<<Blocks(rows), kThreads>>>(attention, dt, rows, n, r.as<double>());
  CheckLastError("attention graph row sums");
  FillKernel<<<Blocks(rows), kThreads>>>(s.as<double>(), rows, 1.0 / double(n));
  CheckLastError("attention graph init");
  double* cur = s.as<double>();
  double* nxt = next.as<double>();
  for (int64_t it = 0; it < iters; ++it) {
    WeightKernel<<<Blocks(rows), kThreads>>>(cur, r.as<double>(), rows, n, w.as<double>());
    CheckLastError("attention graph weights");
    StepKernel<<<dim3(Blocks(n), unsigned(heads)), kThreads>>>(attention, dt, n, w.as<double>(), r.as<double>(), nxt);
    CheckLastError("attention graph step");
    double* t = cur;
    cur = nxt;
    nxt = t;
  }
  HeadMeanKernel<<<Blocks(n), kThreads>>>(cur, heads, n, imp.as<double>());
  CheckLastError("attention graph head mean");
  std::vector<double> out(static_cast<size_t>(n));
  CopyDeviceToHost(out.data(), imp.as<double>(), out.size() * sizeof(double));
  return out;
}

std::vector<double> GraphSimilarity(const void* tokens, TokDType dt, int64_t c, const std::vector<int32_t>& list_host,
                                    int64_t nb, int64_t na) {
  IZ_CHECK(nb >= 0 && na >= 0 && static_cast<int64_t>(list_host.size()) == nb + na, Internal,
           "the S stage splits the whole list");
  std::vector<double> out(static_cast<size_t>(na));
  if (na == 0) return out;
  if (nb == 0) {
    for (double& x : out) x = -INFINITY;
    return out;
  }
  Scratch list(list_host.size() * sizeof(int32_t)), norms(list_host.size() * 8), dots(size_t(na) * size_t(nb) * 8),
      sim(size_t(na) * 8);
  CopyHostToDevice(list.as<int32_t>(), list_host.data(), list_host.size() * sizeof(int32_t));
  SquaredNormsF64(tokens, dt, list.as<int32_t>(), nb + na, c, norms.as<double>());
  PairDotsF64(RowSet{tokens, dt, list.as<int32_t>() + nb, na}, RowSet{tokens, dt, list.as<int32_t>(), nb}, c,
              dots.as<double>(), nb, 1);
  SimilarityMaxKernel<<<Blocks(na), kThreads>>>(dots.as<double>(), norms.as<double>(), nb, na, sim.as<double>());
  CheckLastError("attention graph similarity");
  CopyDeviceToHost(out.data(), sim.as<double>(), out.size() * sizeof(double));
  return out;
}

}  // namespace iz::cuda::tokens
