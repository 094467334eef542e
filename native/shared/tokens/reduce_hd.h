// Per-element TopV and Zero-TPrune math shared by the CPU backend
// (native/core/tokens/transport.cpp, graph.cpp) and the CUDA kernels
// (cuda/tokens/transport.cu, graph.cu): cosine guard, the visual-aware cost terms, the
// row-shifted Sinkhorn kernel, the transported mass and the PageRank weights. Both sides
// compile without FMA contraction (-ffp-contract=off on the CPU, -fmad=false for these
// kernels) and sum in the same index order, so each value has the same bits on both (exp
// may differ in its last bit between libm and CUDA's device exp; the emulated device uses libm).
#pragma once

#include <math.h>

#include <cstdint>

#include "native/shared/hd.h"

namespace iz::tokens {

// cos(x, y) = x.y / (max(|x|, 1e-12) max(|y|, 1e-12)) from the f64 dot and squared norms.
IZ_HD_INLINE double GuardedCosineHd(double dot, double sq_a, double sq_b) {
  double na = sqrt(sq_a), nb = sqrt(sq_b);
  na = na < 1e-12 ? 1e-12 : na;
  nb = nb < 1e-12 ? 1e-12 : nb;
  return dot / (na * nb);
}

// Euclidean distance of two grid positions (row, column).
IZ_HD_INLINE double PlaneDistance(double y0, double x0, double y1, double x1) {
  const double dy = y0 - y1, dx = x0 - x1;
  return sqrt(dy * dy + dx * dx);
}

// The grid constants of TopV's spatial terms: diagonal dg, centre (cy, cx), and rc, the
// largest distance of a token from the centre. Host code computes them once per call.
struct TransportGeometry {
  int64_t w = 1;  // grid width
  double dg = 0, cy = 0, cx = 0, rc = 0;
};

inline TransportGeometry TransportGeometryOf(int64_t grid_h, int64_t grid_w, int64_t n) {
  TransportGeometry g;
  g.w = grid_w;
  g.dg = sqrt(double(grid_h - 1) * double(grid_h - 1) + double(grid_w - 1) * double(grid_w - 1));
  g.cy = double(grid_h - 1) / 2;
  g.cx = double(grid_w - 1) / 2;
  for (int64_t i = 0; i < n; ++i) {
    const double d = PlaneDistance(double(i / grid_w), double(i % grid_w), g.cy, g.cx);
    g.rc = g.rc < d ? d : g.rc;
  }
  return g;
}

// gamma |p_i - centre| / rc (0 on a one-token grid).
IZ_HD_INLINE double TransportCentralTerm(int64_t i, const TransportGeometry& g, double gamma) {
  return g.rc > 0 ? gamma * (PlaneDistance(double(i / g.w), double(i % g.w), g.cy, g.cx) / g.rc) : 0.0;
}

// beta |p_i - p_j| / dg for a target with a position (0 for text targets and 1x1 grids).
IZ_HD_INLINE double TransportSpatialTerm(int64_t i, bool has_pos, int64_t pos, const TransportGeometry& g,
                                         double beta) {
  if (!has_pos || !(g.dg > 0)) return 0.0;
  return beta * (PlaneDistance(double(i / g.w), double(i % g.w), double(pos / g.w), double(pos % g.w)) / g.dg);
}

// C_ij = alpha (1 - cos) + spatial + central, summed in that order.
IZ_HD_INLINE double TransportCost(double alpha, double cosv, double spatial, double central) {
  return alpha * (1.0 - cosv) + spatial + central;
}

// G'_ij = exp(-(C_ij - min_j C_ij) / eps): every row holds a 1, so G'v never underflows.
IZ_HD_INLINE double SinkhornKernel(double cost, double row_min, double eps) { return exp(-((cost - row_min) / eps)); }

// The transport cost of one plan entry, u_i G'_ij v_j C_ij, multiplied left to right.
IZ_HD_INLINE double TransportMassCost(double u, double g, double v, double cost) { return u * g * v * cost; }

// PageRank: row j of the attention passes s_j / r_j along each edge (r_j its row sum); a
// zero row attends uniformly (A_ji = 1, r_j = n), so each key gets s_j / n.
IZ_HD_INLINE double PageRankWeight(double s, double row_sum, int64_t n) {
  return row_sum > 0 ? s / row_sum : s / double(n);
}
IZ_HD_INLINE double PageRankTerm(float a, double weight, double row_sum) {
  return row_sum > 0 ? double(a) * weight : weight;
}

}  // namespace iz::tokens
