// TopV (Yang et al., CVPR 2025) on the CPU backend: token importance from an entropic
// optimal-transport plan between the visual tokens and the targets (the tokens after the
// layer's post-LN, and/or the text), solved with Sinkhorn iterations.
//
// The Sinkhorn loop runs in the scaling domain on G' = exp(-(C - r)/eps) with r_i the
// row minimum of C: the shift is absorbed by u exactly (u' = u exp(-r/eps), v unchanged),
// so the plan is the unshifted one, but every row of G' holds a 1 and G'v never
// underflows. Rows (cost, G', u) and column blocks (v) run on all cores; every sum runs
// in the reference's index order, so results do not depend on the thread count.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "native/core/parallel.h"
#include "native/core/tokens/exact.h"
#include "native/core/tokens/pair_dots.h"
#include "native/core/tokens/reduce.h"
#include "native/core/tokens/reduce_stages.h"
#include "native/shared/error.h"
#include "native/shared/tokens/reduce_hd.h"

namespace iz::tokens {

double GuardedCosine(double dot, double sq_a, double sq_b) { return GuardedCosineHd(dot, sq_a, sq_b); }

namespace {

struct Target {
  const float* row;
  bool has_pos;
  int64_t pos;  // index in the grid when has_pos
};

std::vector<double> RowNorms(const float* x, int64_t rows, int64_t c) {
  std::vector<double> out(static_cast<size_t>(rows));
  for (int64_t i = 0; i < rows; ++i) out[static_cast<size_t>(i)] = SquaredNormF64(x + i * c, c);
  return out;
}

}  // namespace

void CheckTransportShape(const TransportParams& p) {
  IZ_CHECK(p.n >= 1 && p.c >= 1, ShapeMismatch, "visual must be [N, C] with N, C >= 1");
  IZ_CHECK(p.grid_h >= 1 && p.grid_w >= 1 && p.grid_h * p.grid_w == p.n, ShapeMismatch,
           "grid " + std::to_string(p.grid_h) + " x " + std::to_string(p.grid_w) + " does not cover " +
               std::to_string(p.n) + " tokens");
  IZ_CHECK(std::isfinite(p.eps) && p.eps > 0, InvalidArgument, "eps must be finite and > 0");
  IZ_CHECK(p.iters >= 1, InvalidArgument, "iters must be >= 1");
}

void CheckTransportScores(const std::vector<double>& score, double eps) {
  for (const double s : score) {
    IZ_CHECK(
        std::isfinite(s), InvalidArgument,
        "the transport plan overflowed (eps = " + std::to_string(eps) + " is too small for these costs); raise eps");
  }
}

std::vector<double> TransportScores(const float* visual, const float* target, const float* text,
                                    const TransportParams& p) {
  const int64_t n = p.n, c = p.c;
  CheckTransportShape(p);
  CheckFiniteF32(visual, n * c, "visual");
  if (target) CheckFiniteF32(target, p.targets_pos * c, "target");
  if (text) CheckFiniteF32(text, p.text * c, "text");

  std::vector<Target> targets;
  if (!target && !text) {
    for (int64_t j = 0; j < n; ++j) targets.push_back({visual + j * c, true, j});
  } else {
    if (target)
      for (int64_t j = 0; j < p.targets_pos; ++j) targets.push_back({target + j * c, true, j});
    if (text)
      for (int64_t j = 0; j < p.text; ++j) targets.push_back({text + j * c, false, 0});
  }
  const int64_t m = static_cast<int64_t>(targets.size());
  IZ_CHECK(m >= 1, ShapeMismatch, "there are no transport targets");

  const std::vector<double> vnorm = RowNorms(visual, n, c);
  std::vector<double> tnorm(static_cast<size_t>(m));
  for (int64_t j = 0; j < m; ++j) tnorm[static_cast<size_t>(j)] = SquaredNormF64(targets[j].row, c);

  const TransportGeometry geo = TransportGeometryOf(p.grid_h, p.grid_w, n);

  // Cost C [n, m] (dot products through the packed tiles), then the row-shifted kernel G'.
  std::vector<float> tbuf(static_cast<size_t>(m * c));
  for (int64_t j = 0; j < m; ++j) std::copy(targets[j].row, targets[j].row + c, tbuf.begin() + j * c);
  std::vector<int32_t> vid(static_cast<size_t>(n)), tid(static_cast<size_t>(m));
  for (int64_t i = 0; i < n; ++i) vid[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  for (int64_t j = 0; j < m; ++j) tid[static_cast<size_t>(j)] = static_cast<int32_t>(j);
  const PackedRows vrows = PackRows(visual, c, vid.data(), n);
  const PackedRows trows = PackRows(tbuf.data(), c, tid.data(), m);
  std::vector<double> central(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) central[static_cast<size_t>(i)] = TransportCentralTerm(i, geo, p.gamma);
  std::vector<double> cost(static_cast<size_t>(n * m)), g(static_cast<size_t>(n * m));
  ForEachDot(vrows, trows, [&](int64_t i, int64_t j, double dot) {
    const Target& t = targets[static_cast<size_t>(j)];
    const double cosv = GuardedCosineHd(dot, vnorm[static_cast<size_t>(i)], tnorm[static_cast<size_t>(j)]);
    const double spatial = TransportSpatialTerm(i, t.has_pos, t.pos, geo, p.beta);
    cost[static_cast<size_t>(i * m + j)] = TransportCost(p.alpha, cosv, spatial, central[static_cast<size_t>(i)]);
  });
  ParallelFor(static_cast<size_t>(n), 16, [&](size_t lo, size_t hi) {
    for (size_t ii = lo; ii < hi; ++ii) {
      const double* crow = cost.data() + int64_t(ii) * m;
      double rmin = std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < m; ++j) rmin = std::min(rmin, crow[j]);
      double* grow = g.data() + int64_t(ii) * m;
      for (int64_t j = 0; j < m; ++j) grow[j] = SinkhornKernel(crow[j], rmin, p.eps);
    }
  });

  // Small plans run on the calling thread: 2 x iters thread launches would cost more.
  const int threads = n * m >= (int64_t(1) << 16) ? 0 : 1;
  const double a = 1.0 / double(n), b = 1.0 / double(m);
  std::vector<double> u(static_cast<size_t>(n), 0.0), v(static_cast<size_t>(m), 1.0);
  for (int64_t it = 0; it < p.iters; ++it) {
    ParallelFor(
        static_cast<size_t>(n), 32,
        [&](size_t lo, size_t hi) {
          for (size_t i = lo; i < hi; ++i) {
            const double* grow = g.data() + int64_t(i) * m;
            double s = 0;
            for (int64_t j = 0; j < m; ++j) s += grow[j] * v[static_cast<size_t>(j)];
            u[i] = a / s;
          }
        },
        threads);
    ParallelFor(
        static_cast<size_t>(m), 64,
        [&](size_t lo, size_t hi) {
          const size_t len = hi - lo;
          std::vector<double> s(len, 0.0);
          for (int64_t i = 0; i < n; ++i) {
            const double* grow = g.data() + i * m + lo;
            const double ui = u[static_cast<size_t>(i)];
            for (size_t j = 0; j < len; ++j) s[j] += grow[j] * ui;
          }
          for (size_t j = 0; j < len; ++j) v[lo + j] = b / s[j];
        },
        threads);
  }

  std::vector<double> score(static_cast<size_t>(n));
  ParallelFor(static_cast<size_t>(n), 32, [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) {
      const double* grow = g.data() + int64_t(i) * m;
      const double* crow = cost.data() + int64_t(i) * m;
      double s = 0;
      for (int64_t j = 0; j < m; ++j) s += TransportMassCost(u[i], grow[j], v[static_cast<size_t>(j)], crow[j]);
      score[i] = -double(n) * s;
    }
  });
  CheckTransportScores(score, p.eps);
  return score;
}

void CheckTransportCounts(const TransportParams& p) {
  IZ_CHECK(p.keep >= 0 && p.keep <= p.n, InvalidArgument, "keep must be in [0, N]");
  IZ_CHECK(p.recover >= 0 && p.recover <= p.keep, InvalidArgument, "recover count must be in [0, keep]");
}

ScoredSelection DropAll(int64_t n) {
  ScoredSelection sel;
  for (int64_t i = 0; i < n; ++i) sel.dropped.push_back(static_cast<int32_t>(i));
  return sel;
}

ScoredSelection PruneByTransportCpu(const float* visual, const float* target, const float* text,
                                    const TransportParams& p) {
  CheckTransportCounts(p);
  if (p.keep == 0) {
    // still validate the inputs (a NaN is an error whatever the count)
    CheckFiniteF32(visual, p.n * p.c, "visual");
    return DropAll(p.n);
  }
  return SelectByTransportScores(TransportScores(visual, target, text, p), p);
}

ScoredSelection SelectByTransportScores(const std::vector<double>& score, const TransportParams& p) {
  ScoredSelection sel;
  const int64_t ks = p.keep - p.recover;
  std::vector<uint8_t> mask(static_cast<size_t>(p.n), 0);
  for (int32_t i : RankPrefix(score.data(), p.n, ks, true)) mask[static_cast<size_t>(i)] = 1;
  if (p.recover > 0) {
    std::vector<int32_t> rest;
    for (int64_t i = 0; i < p.n; ++i)
      if (!mask[static_cast<size_t>(i)]) rest.push_back(static_cast<int32_t>(i));
    const int64_t d = static_cast<int64_t>(rest.size());
    for (int64_t i = 0; i < p.recover; ++i)
      mask[static_cast<size_t>(rest[static_cast<size_t>((2 * i + 1) * d / (2 * p.recover))])] = 1;
  }
  for (int64_t i = 0; i < p.n; ++i) {
    if (mask[static_cast<size_t>(i)]) {
      sel.kept.push_back(static_cast<int32_t>(i));
      sel.scores.push_back(static_cast<float>(score[static_cast<size_t>(i)]));
    } else {
      sel.dropped.push_back(static_cast<int32_t>(i));
    }
  }
  return sel;
}

std::vector<float> ReceivedAttention(const float* attention, int64_t heads, int64_t n) {
  IZ_CHECK(heads >= 1 && n >= 0, InvalidArgument, "attention needs at least one head");
  CheckFiniteF32(attention, heads * n * n, "attention");
  std::vector<float> out(static_cast<size_t>(n));
  const double denom = double(heads) * double(n);
  ParallelFor(static_cast<size_t>(n), 64, [&](size_t lo, size_t hi) {
    std::vector<double> acc(hi - lo, 0.0);
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < n; ++i) {
        const float* row = attention + (h * n + i) * n + lo;
        for (size_t j = 0; j < hi - lo; ++j) acc[j] += double(row[j]);
      }
    }
    for (size_t j = 0; j < hi - lo; ++j) out[lo + j] = static_cast<float>(acc[j] / denom);
  });
  return out;
}

}  // namespace iz::tokens
