// Density-peak clustering (DPC-KNN) on all cores. The pairwise squared distances
// (mean over channels, f64) are computed once into an m x m matrix with the lane-packed
// tiles of lanes.h (each pair's sum in the reference's order), blocks of rows handed out
// from both ends so every thread gets the same share of the triangle. k-NN density uses a partial sort
// (the reference sorts whole rows); the answer is the same.
// The sums must round as the reference's: no multiply-add contraction (CMake also
// passes -ffp-contract=off; this covers clang builds without it, e.g. node-gyp).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#include <algorithm>
#include <cmath>
#include <limits>

#include "native/core/parallel.h"
#include "native/core/tokens/exact.h"
#include "native/core/tokens/lanes.h"
#include "native/core/tokens/temporal.h"
#include "native/shared/error.h"

namespace iz::tokens {

namespace {

// d2[i][j] = mean_k (x_i[k] - x_j[k])^2 for j > i, mirrored; returns the largest entry.
// A thread takes a group of kGroupBlocks row blocks and sweeps the lane blocks once for
// the whole group, so each lane tile is reused from cache (the matrix is memory-bound
// otherwise); groups are handed out from both ends of the triangle in turn.
double PairwiseDistances(const float* x, int64_t c, const std::vector<int32_t>& ids, std::vector<double>& d2) {
  const int64_t m = static_cast<int64_t>(ids.size());
  const double cd = static_cast<double>(c);
  const PackedRows packed = PackRows(x, c, ids.data(), m);
  const int64_t row_blocks = (m + 3) / 4;
  const int64_t groups = (row_blocks + kGroupBlocks - 1) / kGroupBlocks;
  std::vector<double> group_max(static_cast<size_t>(groups), 0.0);
  ParallelFor(static_cast<size_t>(groups), 1, [&](size_t lo, size_t hi) {
    double out[4][8];
    for (size_t t = lo; t < hi; ++t) {
      const int64_t g = (t & 1) ? groups - 1 - int64_t(t / 2) : int64_t(t / 2);  // 0, last, 1, last-1, ...
      const int64_t ib0 = g * kGroupBlocks, ib1 = std::min(row_blocks, ib0 + kGroupBlocks);
      double mx = 0;
      for (int64_t jb = ib0 & ~int64_t(1); jb * 4 < m; jb += 2) {
        for (int64_t ib = ib0; ib < ib1; ++ib) {
          if (jb * 4 + 7 <= ib * 4) continue;  // every lane is left of the diagonal
          Tile4x8(packed, ib, packed, jb, PairOp::kSquaredDistance, out);
          for (int64_t r = 0; r < 4 && ib * 4 + r < m; ++r) {
            const int64_t i = ib * 4 + r;
            for (int64_t l = 0; l < 8 && jb * 4 + l < m; ++l) {
              const int64_t j = jb * 4 + l;
              if (j <= i) continue;
              const double v = out[r][l] / cd;
              d2[i * m + j] = v;
              d2[j * m + i] = v;
              mx = std::max(mx, v);
            }
          }
        }
      }
      group_max[g] = mx;
    }
  });
  return *std::max_element(group_max.begin(), group_max.end());
}

}  // namespace

Clusters DensityPeakClusters(const float* x, int64_t c, const std::vector<int32_t>& ids, int64_t centres_wanted,
                             int64_t knn) {
  const int64_t m = static_cast<int64_t>(ids.size());
  IZ_CHECK(m >= 1 && c >= 1, InvalidArgument, "density-peak clustering needs at least one token");
  IZ_CHECK(knn >= 1, InvalidArgument, "knn must be >= 1");
  std::vector<double> d2(static_cast<size_t>(m * m), 0.0);
  const double max_d = PairwiseDistances(x, c, ids, d2);

  const int64_t k = std::min(knn, m - 1);
  std::vector<double> density(static_cast<size_t>(m), 1.0);
  if (k > 0) {
    ParallelFor(static_cast<size_t>(m), 16, [&](size_t lo, size_t hi) {
      std::vector<double> row(static_cast<size_t>(m));
      for (size_t i = lo; i < hi; ++i) {
        std::copy(d2.begin() + i * m, d2.begin() + (i + 1) * m, row.begin());
        row[i] = std::numeric_limits<double>::infinity();
        std::partial_sort(row.begin(), row.begin() + k, row.end());
        double s = 0;
        for (int64_t t = 0; t < k; ++t) s += row[t];  // ascending, as the reference sums them
        density[i] = std::exp(-s / double(k));
      }
    });
  }

  // distance to the nearest denser token (equal density: the lower index is denser)
  std::vector<double> score(static_cast<size_t>(m));
  ParallelFor(static_cast<size_t>(m), 16, [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) {
      const double di = density[i];
      const double* row = d2.data() + i * m;
      double delta = std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < m; ++j) {
        const double dj = density[j];
        if (j != int64_t(i) && (dj > di || (dj == di && j < int64_t(i)))) delta = std::min(delta, row[j]);
      }
      if (std::isinf(delta)) delta = max_d;
      score[i] = std::sqrt(delta) * di;
    }
  });

  Clusters out;
  out.centres = RankPrefix(score.data(), m, std::max<int64_t>(1, std::min(centres_wanted, m)), true);
  out.label.assign(static_cast<size_t>(m), 0);
  const int64_t nc = static_cast<int64_t>(out.centres.size());
  ParallelFor(static_cast<size_t>(m), 64, [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) {
      const double* row = d2.data() + i * m;
      int64_t best = 0;
      for (int64_t ci = 1; ci < nc; ++ci)
        if (row[out.centres[ci]] < row[out.centres[best]]) best = ci;
      out.label[i] = static_cast<int32_t>(best);
    }
  });
  for (int64_t idx = 0; idx < nc; ++idx) out.label[out.centres[idx]] = static_cast<int32_t>(idx);
  return out;
}

}  // namespace iz::tokens
