// Density-peak clustering (DPC-KNN) on all cores. The pairwise squared distances
// (mean over channels, f64) are computed once into an m x m matrix, rows handed out
// from both ends so every thread gets the same share of the triangle; four f64 chains
// at a time keep the sums in the reference's order. k-NN density uses a partial sort
// (the reference sorts whole rows); the answer is the same.
#include <algorithm>
#include <cmath>
#include <limits>

#include "../error.h"
#include "../parallel.h"
#include "exact.h"
#include "temporal.h"

namespace iz::tokens {

namespace {

// d2[i][j] = mean_k (x_i[k] - x_j[k])^2 for j > i, mirrored; returns the largest entry.
double PairwiseDistances(const float* x, int64_t c, const std::vector<int32_t>& ids, std::vector<double>& d2) {
  const int64_t m = static_cast<int64_t>(ids.size());
  const double cd = static_cast<double>(c);
  std::vector<double> row_max(static_cast<size_t>(m), 0.0);
  ParallelFor(static_cast<size_t>(m), 4, [&](size_t lo, size_t hi) {
    for (size_t t = lo; t < hi; ++t) {
      const int64_t i = (t & 1) ? m - 1 - int64_t(t / 2) : int64_t(t / 2);  // 0, m-1, 1, m-2, ...
      const float* xi = x + int64_t(ids[i]) * c;
      double mx = 0;
      auto store = [&](int64_t j, double s) {
        const double v = s / cd;
        d2[i * m + j] = v;
        d2[j * m + i] = v;
        mx = std::max(mx, v);
      };
      int64_t j = i + 1;
      for (; j + 4 <= m; j += 4) {
        const float* y0 = x + int64_t(ids[j]) * c;
        const float* y1 = x + int64_t(ids[j + 1]) * c;
        const float* y2 = x + int64_t(ids[j + 2]) * c;
        const float* y3 = x + int64_t(ids[j + 3]) * c;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (int64_t k = 0; k < c; ++k) {
          const double a = xi[k];
          const double v0 = a - double(y0[k]), v1 = a - double(y1[k]), v2 = a - double(y2[k]), v3 = a - double(y3[k]);
          s0 += v0 * v0;
          s1 += v1 * v1;
          s2 += v2 * v2;
          s3 += v3 * v3;
        }
        store(j, s0);
        store(j + 1, s1);
        store(j + 2, s2);
        store(j + 3, s3);
      }
      for (; j < m; ++j) {
        const float* y = x + int64_t(ids[j]) * c;
        double s = 0;
        for (int64_t k = 0; k < c; ++k) {
          const double v = double(xi[k]) - double(y[k]);
          s += v * v;
        }
        store(j, s);
      }
      row_max[i] = mx;
    }
  });
  return *std::max_element(row_max.begin(), row_max.end());
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
      for (int64_t ci = 1; ci < nc; ++ci) if (row[out.centres[ci]] < row[out.centres[best]]) best = ci;
      out.label[i] = static_cast<int32_t>(best);
    }
  });
  for (int64_t idx = 0; idx < nc; ++idx) out.label[out.centres[idx]] = static_cast<int32_t>(idx);
  return out;
}

}  // namespace iz::tokens
