// DyCoke and HoliTom on the CPU backend. The per-position similarities (the bulk of
// the arithmetic, T x P x C) run on all cores; the group bookkeeping is sequential
// in the reference's order so the f32 sums round identically.
// The sums must round as the reference's: no multiply-add contraction (CMake also
// passes -ffp-contract=off; this covers clang builds without it, e.g. node-gyp).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#include "native/core/tokens/temporal.h"

#include <algorithm>
#include <limits>

#include "native/core/parallel.h"
#include "native/core/tokens/exact.h"
#include "native/core/tokens/groups.h"
#include "native/shared/error.h"

namespace iz::tokens {

namespace {

void CheckVideo(const float* x, const VideoShape& s) {
  IZ_CHECK(s.t >= 1 && s.p >= 1 && s.c >= 1, ShapeMismatch, "frames must be [T, P, C] with T, P, C >= 1");
  IZ_CHECK(s.t * s.p < (int64_t(1) << 31), ShapeMismatch, "frames holds more than 2^31 tokens");
  CheckFiniteF32(x, s.t * s.p * s.c, "frames");
}

// cos(x[a + q], x[b + q]) for q < p, for every (a, b) frame pair, on all cores, four
// positions at a time.
std::vector<double> PairSimilarities(const float* x, int64_t p, int64_t c,
                                     const std::vector<std::pair<int64_t, int64_t>>& pairs) {
  std::vector<double> sims(pairs.size() * static_cast<size_t>(p));
  const int64_t groups = (p + 3) / 4;
  ParallelFor(pairs.size() * static_cast<size_t>(groups), 16, [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) {
      const auto& pr = pairs[i / groups];
      const int64_t q0 = static_cast<int64_t>(i % groups) * 4;
      double* out = sims.data() + (i / groups) * p + q0;
      if (q0 + 4 <= p) {
        const float* a[4];
        const float* b[4];
        for (int l = 0; l < 4; ++l) {
          a[l] = x + (pr.first * p + q0 + l) * c;
          b[l] = x + (pr.second * p + q0 + l) * c;
        }
        Cosine4F64(a, b, c, out);
      } else {
        for (int64_t q = q0; q < p; ++q)
          out[q - q0] = CosineF64(x + (pr.first * p + q) * c, x + (pr.second * p + q) * c, c);
      }
    }
  });
  return sims;
}

// Fraction-of-count rounding used by HoliTom's budgets.
int64_t RoundCount(double v) { return static_cast<int64_t>(JsRound(v)); }

void ClusterGroup(TokenGroups& g, int64_t c, const std::vector<int32_t>& ids, int64_t centres, int64_t knn) {
  const int64_t n = static_cast<int64_t>(ids.size());
  if (centres >= n) return;
  // Bound memory on long segments: cluster consecutive chunks, centres shared out by size.
  const int64_t chunks = (n + kMaxClusterChunk - 1) / kMaxClusterChunk;
  int64_t given = 0;
  for (int64_t ci = 0; ci < chunks; ++ci) {
    const int64_t lo = ci * n / chunks, hi = (ci + 1) * n / chunks;
    const int64_t want = RoundCount(double((ci + 1) * centres) / double(chunks)) - given;
    given += want;
    if (want >= hi - lo) continue;
    const std::vector<int32_t> part(ids.begin() + lo, ids.begin() + hi);
    const Clusters cl = DensityPeakClusters(g.x(), c, part, want, knn);
    for (size_t i = 0; i < part.size(); ++i) {
      const int32_t centre = part[cl.centres[cl.label[i]]];
      if (centre != part[i]) g.Merge(part[i], centre);
    }
  }
}

struct Pooled {
  std::vector<float> owned;  // empty when the features are x itself
  const float* feats = nullptr;
  int64_t cells = 0;
  std::vector<int32_t> cell_of;  // [p]
};

// Per-frame features for segmentation: pool x pool average pooling over the grid.
Pooled PoolFeatures(const float* x, const VideoShape& s, const HoliTomParams& o) {
  Pooled r;
  r.cell_of.resize(static_cast<size_t>(s.p));
  if (o.grid_h == 0 || o.pool == 1) {
    r.feats = x;
    r.cells = s.p;
    for (int64_t q = 0; q < s.p; ++q) r.cell_of[q] = static_cast<int32_t>(q);
    return r;
  }
  const int64_t w = o.grid_w, pool = o.pool;
  const int64_t ph = (o.grid_h + pool - 1) / pool, pw = (w + pool - 1) / pool;
  r.cells = ph * pw;
  std::vector<float> counts(static_cast<size_t>(r.cells), 0.0f);
  for (int64_t q = 0; q < s.p; ++q) {
    r.cell_of[q] = static_cast<int32_t>((q / w) / pool * pw + (q % w) / pool);
    counts[r.cell_of[q]] += 1.0f;
  }
  r.owned.assign(static_cast<size_t>(s.t * r.cells * s.c), 0.0f);
  ParallelFor(static_cast<size_t>(s.t), 1, [&](size_t lo, size_t hi) {
    for (size_t f = lo; f < hi; ++f) {
      for (int64_t q = 0; q < s.p; ++q) {
        const int64_t cell = r.cell_of[q];
        float* dst = r.owned.data() + (int64_t(f) * r.cells + cell) * s.c;
        const float* src = x + (int64_t(f) * s.p + q) * s.c;
        const double cnt = counts[cell];
        for (int64_t k = 0; k < s.c; ++k) dst[k] = static_cast<float>(double(dst[k]) + double(src[k]) / cnt);
      }
    }
  });
  r.feats = r.owned.data();
  return r;
}

// Reduces one segment's non-static tokens: top-attention tokens stay, the rest cluster.
void ReduceRest(TokenGroups& g, const VideoShape& s, const HoliTomParams& o, const std::vector<int32_t>& rest) {
  const int64_t survivors = std::max<int64_t>(1, RoundCount(o.keep_ratio * double(rest.size())));
  if (!o.attention) {
    ClusterGroup(g, s.c, rest, survivors, o.knn);
    return;
  }
  const int64_t by_attention = std::min(survivors, RoundCount(o.attention_share * double(survivors)));
  std::vector<float> values(rest.size());
  for (size_t i = 0; i < rest.size(); ++i) values[i] = o.attention[rest[i]];
  std::vector<uint8_t> kept(rest.size(), 0);
  for (int32_t i : RankPrefix(values.data(), static_cast<int64_t>(values.size()), by_attention, true)) kept[i] = 1;
  std::vector<int32_t> cluster_ids;
  for (size_t i = 0; i < rest.size(); ++i)
    if (!kept[i]) cluster_ids.push_back(rest[i]);
  const int64_t centres = survivors - by_attention;
  if (cluster_ids.empty()) return;
  if (centres == 0) {
    for (int32_t id : cluster_ids) g.Drop(id);
    return;
  }
  ClusterGroup(g, s.c, cluster_ids, centres, o.knn);
}

}  // namespace

TemporalResult DyCokeCpu(const float* x, const VideoShape& s, int64_t keep, bool merge) {
  CheckVideo(x, s);
  IZ_CHECK(0 <= keep && keep <= s.p, InvalidArgument, "keep must be in [0, P]");
  std::vector<std::pair<int64_t, int64_t>> pairs;                         // (reference frame, pruned frame)
  for (int64_t f = 0; f + 1 < s.t; f += 2) pairs.emplace_back(f, f + 1);  // pass 1: frame 2i+1 against 2i
  for (int64_t w = 0; w + 2 < s.t; w += 4) pairs.emplace_back(w, w + 2);  // pass 2: window frame 2 against 0
  // Similarities are taken on the input tokens, so every pair can be measured up front.
  const std::vector<double> sims = PairSimilarities(x, s.p, s.c, pairs);
  TokenGroups g(x, s.t * s.p, s.c);
  std::vector<uint8_t> stays(static_cast<size_t>(s.p));
  for (size_t i = 0; i < pairs.size(); ++i) {
    const auto [ref, cur] = pairs[i];
    std::fill(stays.begin(), stays.end(), 0);
    for (int32_t q : RankPrefix(sims.data() + i * s.p, s.p, keep, false)) stays[q] = 1;  // least similar stay
    for (int64_t q = 0; q < s.p; ++q) {
      if (stays[q]) continue;
      if (merge)
        g.Merge(cur * s.p + q, ref * s.p + q);
      else
        g.Drop(cur * s.p + q);
    }
  }
  return g.Finish(s.p);
}

std::vector<std::pair<int32_t, int32_t>> SegmentFrames(const uint8_t* stable, int64_t t, int64_t p) {
  IZ_CHECK(t >= 1 && p >= 0, InvalidArgument, "segmentation needs at least one frame");
  std::vector<double> best(static_cast<size_t>(t + 1), -std::numeric_limits<double>::infinity());
  std::vector<int32_t> from(static_cast<size_t>(t + 1), 0);
  best[0] = 0;
  std::vector<uint8_t> mask(static_cast<size_t>(p));
  for (int64_t e = 0; e < t; ++e) {
    // walk s downwards so the "static throughout" mask only shrinks
    std::fill(mask.begin(), mask.end(), 1);
    int64_t count = p;
    for (int64_t s = e; s >= 0; --s) {
      if (s < e) {
        const uint8_t* st = stable + s * p;
        for (int64_t q = 0; q < p; ++q) {
          if (mask[q] && !st[q]) {
            mask[q] = 0;
            --count;
          }
        }
      }
      const double v = best[s] + double(count * (e - s));
      if (v > best[e + 1] || (v == best[e + 1] && s > from[e + 1])) {
        best[e + 1] = v;
        from[e + 1] = static_cast<int32_t>(s);
      }
    }
  }
  std::vector<std::pair<int32_t, int32_t>> segs;
  for (int64_t e = t; e > 0; e = from[e]) segs.emplace_back(from[e], static_cast<int32_t>(e - 1));
  std::reverse(segs.begin(), segs.end());
  return segs;
}

TemporalResult HoliTomCpu(const float* x, const VideoShape& s, const HoliTomParams& o) {
  CheckVideo(x, s);
  const bool grid = o.grid_h != 0 || o.grid_w != 0;
  IZ_CHECK(!grid || (o.grid_h >= 1 && o.grid_w >= 1 && o.grid_h * o.grid_w == s.p), ShapeMismatch,
           "grid does not cover the tokens of a frame");
  IZ_CHECK(o.pool >= 1 && (o.pool == 1 || grid), InvalidArgument, "pool needs a grid");
  IZ_CHECK(o.knn >= 1, InvalidArgument, "knn must be >= 1");
  IZ_CHECK(o.keep_ratio >= 0 && o.keep_ratio <= 1 && o.attention_share >= 0 && o.attention_share <= 1, InvalidArgument,
           "keepRatio and attentionShare must be in [0, 1]");
  if (o.attention) CheckFiniteF32(o.attention, s.t * s.p, "attention");
  const int64_t t = s.t, p = s.p;

  const Pooled pooled = PoolFeatures(x, s, o);
  std::vector<std::pair<int64_t, int64_t>> pairs;
  for (int64_t f = 0; f + 1 < t; ++f) pairs.emplace_back(f, f + 1);
  const std::vector<double> cell_sims = PairSimilarities(pooled.feats, pooled.cells, s.c, pairs);
  std::vector<uint8_t> stable(static_cast<size_t>((t - 1) * p));
  for (int64_t f = 0; f + 1 < t; ++f) {
    for (int64_t q = 0; q < p; ++q) stable[f * p + q] = cell_sims[f * pooled.cells + pooled.cell_of[q]] > o.tau;
  }

  TemporalResult res;
  const auto segments = SegmentFrames(stable.data(), t, p);
  TokenGroups g(x, t * p, s.c);
  std::vector<uint8_t> is_static(static_cast<size_t>(p));
  std::vector<int32_t> rest;
  for (const auto& [first, last] : segments) {
    std::fill(is_static.begin(), is_static.end(), last > first ? 1 : 0);
    for (int64_t f = first; f < last; ++f) {
      for (int64_t q = 0; q < p; ++q)
        if (!stable[f * p + q]) is_static[q] = 0;
    }
    rest.clear();
    for (int64_t q = 0; q < p; ++q) {
      if (is_static[q]) {
        for (int64_t f = first + 1; f <= last; ++f) g.Merge(f * p + q, first * p + q);  // temporal mean
      } else {
        for (int64_t f = first; f <= last; ++f) rest.push_back(static_cast<int32_t>(f * p + q));
      }
    }
    if (!rest.empty()) ReduceRest(g, s, o, rest);
  }
  res = g.Finish(p);
  res.segments = segments;
  return res;
}

}  // namespace iz::tokens
