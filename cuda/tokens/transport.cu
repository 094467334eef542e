// TopV on the GPU: the visual-aware cost matrix, the row-shifted Sinkhorn kernel, the
// Sinkhorn scaling rounds and the per-token transport scores, with the CPU backend's
// arithmetic (native/shared/tokens/reduce_hd.h) and summation order. Matrices are kept in
// both layouts where a pass needs them: column-major C^T and G'^T let the row sums of u run
// one thread per token i over j with coalesced reads, row-major G' lets the column sums
// of v run one thread per target j over i, each sum in ascending index order like the CPU.
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "cuda/tokens/rows.h"
#include "cuda/tokens/transport.h"
#include "native/shared/error.h"

namespace iz::cuda::tokens {

using iz::tokens::TransportGeometry;

namespace {

constexpr int kThreads = 256;

unsigned Blocks(int64_t count) { return LaunchBlocks(count, kThreads, "the CUDA transport plan"); }

// In place over the column-major [m][n] dots: C_ij from the dot, the norms and positions.
__global__ void CostKernel(double* ct, int64_t n, int64_t m, int64_t positioned, const double* vnorm,
                           const double* tnorm, TransportGeometry g, double alpha, double beta, double gamma) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= n * m) return;
  const int64_t i = idx % n, j = idx / n;
  const double cosv = iz::tokens::GuardedCosineHd(ct[idx], vnorm[i], tnorm[j]);
  const double spatial = iz::tokens::TransportSpatialTerm(i, j < positioned, j, g, beta);
  ct[idx] = iz::tokens::TransportCost(alpha, cosv, spatial, iz::tokens::TransportCentralTerm(i, g, gamma));
}

__global__ void RowMinKernel(const double* ct, int64_t n, int64_t m, double* row_min) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  double r = INFINITY;
  for (int64_t j = 0; j < m; ++j) r = min(r, ct[j * n + i]);
  row_min[i] = r;
}

// G'^T (column-major, as C^T) and G' (row-major) from C^T.
__global__ void KernelMatrixKernel(const double* ct, int64_t n, int64_t m, const double* row_min, double eps,
                                   double* gt, double* g) {
  const int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= n * m) return;
  const int64_t i = idx % n, j = idx / n;
  const double v = iz::tokens::SinkhornKernel(ct[idx], row_min[i], eps);
  gt[idx] = v;
  g[i * m + j] = v;
}

// One Sinkhorn half-step: out_r = target / sum_k mat[k * rows + r] x_k, k ascending. With
// G'^T ([m][n]) it is u_i = a / sum_j G'_ij v_j; with G' ([n][m]) v_j = b / sum_i G'_ij u_i.
__global__ void ScaleKernel(const double* mat, const double* x, int64_t rows, int64_t cols, double target,
                            double* out) {
  const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  double s = 0;
  for (int64_t k = 0; k < cols; ++k) s = __dadd_rn(s, __dmul_rn(mat[k * rows + r], x[k]));
  out[r] = target / s;
}

// score_i = -n sum_j u_i G'_ij v_j C_ij
__global__ void ScoreKernel(const double* gt, const double* ct, const double* u, const double* v, int64_t n, int64_t m,
                            double* score) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  double s = 0;
  for (int64_t j = 0; j < m; ++j)
    s = __dadd_rn(s, iz::tokens::TransportMassCost(u[i], gt[j * n + i], v[j], ct[j * n + i]));
  score[i] = -double(n) * s;
}

__global__ void FillKernel(double* x, int64_t count, double value) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) x[i] = value;
}

}  // namespace

std::vector<double> TransportScores(const TransportInputs& in, const TransportKnobs& k) {
  const int64_t n = k.n, c = k.c, mp = in.positioned_rows, m = mp + in.text_rows;
  IZ_CHECK(n >= 1 && c >= 1 && m >= 1, ShapeMismatch, "the transport plan needs visual tokens and targets");
  const size_t plan = size_t(n) * size_t(m) * sizeof(double);
  Scratch ct(plan), gt(plan), g(plan);
  Scratch vnorm(size_t(n) * 8), tnorm(size_t(m) * 8), row_min(size_t(n) * 8), u(size_t(n) * 8), v(size_t(m) * 8),
      score(size_t(n) * 8);

  // dots into C^T (element (i, j) at j * n + i), then the cost in place
  const RowSet vis{in.visual, in.visual_dt, nullptr, n};
  PairDotsF64(vis, RowSet{in.positioned, in.positioned_dt, nullptr, mp}, c, ct.as<double>(), 1, n);
  PairDotsF64(vis, RowSet{in.text, in.text_dt, nullptr, in.text_rows}, c, ct.as<double>() + mp * n, 1, n);
  SquaredNormsF64(in.visual, in.visual_dt, nullptr, n, c, vnorm.as<double>());
  SquaredNormsF64(in.positioned, in.positioned_dt, nullptr, mp, c, tnorm.as<double>());
  SquaredNormsF64(in.text, in.text_dt, nullptr, in.text_rows, c, tnorm.as<double>() + mp);
  CostKernel<<<Blocks(n * m), kThreads>>>(ct.as<double>(), n, m, mp, vnorm.as<double>(), tnorm.as<double>(), k.geometry,
                                          k.alpha, k.beta, k.gamma);
  CheckLastError("transport cost");
  RowMinKernel<<<Blocks(n), kThreads>>>(ct.as<double>(), n, m, row_min.as<double>());
  CheckLastError("transport row minimum");
  KernelMatrixKernel<<<Blocks(n * m), kThreads>>>(ct.as<double>(), n, m, row_min.as<double>(), k.eps, gt.as<double>(),
                                                  g.as<double>());
  CheckLastError("transport kernel matrix");

  // Sinkhorn in the scaling domain, uniform marginals a = 1/n, b = 1/m; v starts at 1
  FillKernel<<<Blocks(m), kThreads>>>(v.as<double>(), m, 1.0);
  CheckLastError("transport init");
  const double a = 1.0 / double(n), b = 1.0 / double(m);
  for (int64_t it = 0; it < k.iters; ++it) {
    ScaleKernel<<<Blocks(n), kThreads>>>(gt.as<double>(), v.as<double>(), n, m, a, u.as<double>());
    CheckLastError("transport row scaling");
    ScaleKernel<<<Blocks(m), kThreads>>>(g.as<double>(), u.as<double>(), m, n, b, v.as<double>());
    CheckLastError("transport column scaling");
  }
  ScoreKernel<<<Blocks(n), kThreads>>>(gt.as<double>(), ct.as<double>(), u.as<double>(), v.as<double>(), n, m,
                                       score.as<double>());
  CheckLastError("transport scores");
  std::vector<double> out(static_cast<size_t>(n));
  CopyDeviceToHost(out.data(), score.as<double>(), out.size() * sizeof(double));
  return out;
}

}  // namespace iz::cuda::tokens
