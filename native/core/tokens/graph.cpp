// Zero-TPrune (Wang et al., CVPR 2024) on the CPU backend: token importance by a weighted
// PageRank on the attention graph (I-stage), then pruning of near-duplicate tokens by
// similarity (S-stage). Heads run on all cores; the PageRank update scatters each
// attention row j (s'_i += A_ji (s_j / r_j) for j ascending, r_j the row sum), which
// streams the f32 matrix row by row and still sums every s'_i in the reference's order.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif

#include "native/core/parallel.h"
#include "native/core/simd.h"
#include "native/core/tokens/exact.h"
#include "native/core/tokens/pair_dots.h"
#include "native/core/tokens/reduce.h"
#include "native/core/tokens/reduce_stages.h"
#include "native/shared/error.h"
#include "native/shared/tokens/reduce_hd.h"

namespace iz::tokens {

namespace {

// next[i] += double(row[i]) * w for i < n: the PageRank scatter. The AVX2 variant does the
// same multiply and add per element (no FMA), so both give identical bits.
void ScatterPortable(double* next, const float* row, double w, int64_t n) {
  for (int64_t i = 0; i < n; ++i) next[i] += double(row[i]) * w;
}
#if IZ_X86_SIMD
__attribute__((target("avx2"))) void ScatterAvx2(double* next, const float* row, double w, int64_t n) {
  const __m256d wv = _mm256_set1_pd(w);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d a = _mm256_cvtps_pd(_mm_loadu_ps(row + i));
    _mm256_storeu_pd(next + i, _mm256_add_pd(_mm256_loadu_pd(next + i), _mm256_mul_pd(a, wv)));
  }
  for (; i < n; ++i) next[i] += double(row[i]) * w;
}
#endif
using ScatterFn = void (*)(double*, const float*, double, int64_t);
ScatterFn PickScatter() {
#if IZ_X86_SIMD
  if (SimdAllowed() && __builtin_cpu_supports("avx2")) return ScatterAvx2;
#endif
  return ScatterPortable;
}

}  // namespace

void CheckGraphShape(int64_t heads, int64_t n, int64_t iters) {
  IZ_CHECK(heads >= 1 && n >= 1, ShapeMismatch, "attention must be [heads, N, N] with heads, N >= 1");
  IZ_CHECK(iters >= 0, InvalidArgument, "iters must be >= 0");
}

void FailBadAttention(float x, int64_t k) {
  if (!std::isfinite(x)) CheckFiniteF32(&x, 1, "attention[" + std::to_string(k) + "]");
  IZ_CHECK(x >= 0, InvalidArgument,
           "attention holds a negative value (" + std::to_string(x) + ") at element " + std::to_string(k) +
               "; pass softmax probabilities");
  Fail(ErrorCode::Internal, "attention element " + std::to_string(k) + " was reported bad but is not");
}

std::vector<double> GraphImportance(const float* attention, int64_t heads, int64_t n, int64_t iters) {
  CheckGraphShape(heads, n, iters);
  const int64_t total = heads * n * n;
  for (int64_t k = 0; k < total; ++k) {
    const float x = attention[k];
    if (!std::isfinite(x) || x < 0) FailBadAttention(x, k);
  }
  static const ScatterFn scatter = PickScatter();
  std::vector<double> per_head(static_cast<size_t>(heads * n));
  ParallelFor(static_cast<size_t>(heads), 1, [&](size_t lo, size_t hi) {
    std::vector<double> rowsum(static_cast<size_t>(n)), s(static_cast<size_t>(n)), next(static_cast<size_t>(n));
    for (size_t h = lo; h < hi; ++h) {
      const float* src = attention + int64_t(h) * n * n;
      for (int64_t j = 0; j < n; ++j) {
        double sum = 0;
        for (int64_t i = 0; i < n; ++i) sum += double(src[j * n + i]);
        rowsum[static_cast<size_t>(j)] = sum;
      }
      std::fill(s.begin(), s.end(), 1.0 / double(n));
      for (int64_t it = 0; it < iters; ++it) {
        std::fill(next.begin(), next.end(), 0.0);
        for (int64_t j = 0; j < n; ++j) {
          const double r = rowsum[static_cast<size_t>(j)];
          const float* row = src + j * n;
          const double w = PageRankWeight(s[static_cast<size_t>(j)], r, n);
          if (r > 0) {
            scatter(next.data(), row, w, n);  // next[i] += PageRankTerm(row[i], w, r), vectorized
          } else {                            // a zero row attends uniformly: A_ji = 1, r_j = n
            for (int64_t i = 0; i < n; ++i) next[static_cast<size_t>(i)] += w;
          }
        }
        s.swap(next);
      }
      std::copy(s.begin(), s.end(), per_head.begin() + int64_t(h) * n);
    }
  });
  std::vector<double> imp(static_cast<size_t>(n), 0.0);
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t i = 0; i < n; ++i) imp[static_cast<size_t>(i)] += per_head[static_cast<size_t>(h * n + i)];
  }
  for (double& x : imp) x /= double(heads);
  return imp;
}

void CheckGraphParams(const GraphParams& p) {
  IZ_CHECK(p.n >= 1 && p.c >= 1, ShapeMismatch, "tokens must be [N, C] with N, C >= 1");
  IZ_CHECK(p.keep >= 0 && p.keep <= p.n, InvalidArgument, "keep must be in [0, N]");
  IZ_CHECK(std::isfinite(p.similar_share) && p.similar_share >= 0 && p.similar_share <= 1, InvalidArgument,
           "similarShare must be in [0, 1]");
}

GraphStages PlanGraphStages(const std::vector<double>& imp, const GraphParams& p) {
  GraphStages st;
  const int64_t n = p.n;
  const int64_t r = n - p.keep;
  st.rs = std::min<int64_t>(static_cast<int64_t>(std::floor(double(r) * p.similar_share + 1e-9)), p.keep);
  const int64_t ri = r - st.rs;
  st.list = RankPrefix(imp.data(), n, n - ri, true);  // L, most important first
  if (st.rs > 0) {
    st.nb = (static_cast<int64_t>(st.list.size()) + 1) / 2;
    st.na = static_cast<int64_t>(st.list.size()) - st.nb;
  }
  return st;
}

ScoredSelection FinishGraphStages(const GraphStages& st, const std::vector<double>& sim, const std::vector<double>& imp,
                                  const GraphParams& p) {
  const int64_t n = p.n;
  std::vector<uint8_t> mask(static_cast<size_t>(n), 0);
  for (int32_t i : st.list) mask[static_cast<size_t>(i)] = 1;
  if (st.rs > 0) {
    IZ_CHECK(static_cast<int64_t>(sim.size()) == st.na, Internal, "one similarity per A token expected");
    // drop the rs most similar of A (equal similarity: lower token index first)
    const std::vector<int32_t>& list = st.list;
    const int64_t nb = st.nb;
    std::vector<int32_t> order(static_cast<size_t>(st.na));
    for (int64_t k = 0; k < st.na; ++k) order[static_cast<size_t>(k)] = static_cast<int32_t>(k);
    std::sort(order.begin(), order.end(), [&](int32_t x, int32_t y) {
      if (sim[static_cast<size_t>(x)] != sim[static_cast<size_t>(y)])
        return sim[static_cast<size_t>(x)] > sim[static_cast<size_t>(y)];
      return list[static_cast<size_t>(nb + x)] < list[static_cast<size_t>(nb + y)];
    });
    for (int64_t k = 0; k < st.rs; ++k)
      mask[static_cast<size_t>(list[static_cast<size_t>(nb + order[static_cast<size_t>(k)])])] = 0;
  }
  ScoredSelection sel;
  for (int64_t i = 0; i < n; ++i) {
    if (mask[static_cast<size_t>(i)]) {
      sel.kept.push_back(static_cast<int32_t>(i));
      sel.scores.push_back(static_cast<float>(imp[static_cast<size_t>(i)]));
    } else {
      sel.dropped.push_back(static_cast<int32_t>(i));
    }
  }
  return sel;
}

ScoredSelection PruneByAttentionGraphCpu(const float* tokens, const float* attention, const GraphParams& p) {
  const int64_t c = p.c;
  CheckGraphParams(p);
  CheckFiniteF32(tokens, p.n * c, "tokens");
  const std::vector<double> imp = GraphImportance(attention, p.heads, p.n, p.iters);
  const GraphStages st = PlanGraphStages(imp, p);
  std::vector<double> sim;
  if (st.rs > 0) {
    // S stage: each A token's highest cosine with a B token
    const std::vector<int32_t>& list = st.list;
    const int64_t nb = st.nb, na = st.na;
    std::vector<double> norm(static_cast<size_t>(p.n));
    for (int32_t i : list) norm[static_cast<size_t>(i)] = SquaredNormF64(tokens + int64_t(i) * c, c);
    sim.assign(static_cast<size_t>(na), -std::numeric_limits<double>::infinity());
    const PackedRows arows = PackRows(tokens, c, list.data() + nb, na);
    const PackedRows brows = PackRows(tokens, c, list.data(), nb);
    ForEachDot(arows, brows, [&](int64_t k, int64_t q, double dot) {
      const double cs = GuardedCosineHd(dot, norm[static_cast<size_t>(list[static_cast<size_t>(nb + k)])],
                                        norm[static_cast<size_t>(list[static_cast<size_t>(q)])]);
      sim[static_cast<size_t>(k)] = std::max(sim[static_cast<size_t>(k)], cs);
    });
  }
  return FinishGraphStages(st, sim, imp, p);
}

}  // namespace iz::tokens
