// TempMe (Shen et al., ICLR 2025) without its trained parts, on the CPU backend: ImgMe
// merges redundant tokens inside each frame, then ClipMe repeatedly joins neighbouring
// clips and merges across them (cross-clip) and inside the joined clip (intra-clip). Every
// step is ToMe's bipartite soft matching, order-preserving, with size-weighted averages
// kept in f64. Frames run on all cores in ImgMe; the similarity search of each ClipMe step
// runs on all cores over the A set.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "native/core/parallel.h"
#include "native/core/tokens/clips.h"
#include "native/core/tokens/exact.h"
#include "native/core/tokens/pair_dots.h"
#include "native/core/tokens/reduce.h"
#include "native/shared/error.h"
#include "native/shared/tokens/clips_hd.h"

namespace iz::tokens {

namespace {

struct Clip {
  std::vector<double> x;  // [rows, c]
  std::vector<double> s;  // [rows]
  int64_t Rows() const { return static_cast<int64_t>(s.size()); }
};

// One bipartite step on `in` (n rows): A, B are ascending positions, r <= |A|. Returns the
// merged clip and writes dest[n] (old position -> new row).
Clip MergeStep(const Clip& in, int64_t c, const std::vector<int64_t>& a_set, const std::vector<int64_t>& b_set,
               int64_t r, std::vector<int32_t>& dest, bool parallel) {
  const int64_t n = in.Rows();
  dest.assign(static_cast<size_t>(n), 0);
  if (r <= 0 || b_set.empty()) {
    for (int64_t i = 0; i < n; ++i) dest[static_cast<size_t>(i)] = static_cast<int32_t>(i);
    return in;
  }
  std::vector<double> norm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    const double* xi = in.x.data() + i * c;
    for (int64_t k = 0; k < c; ++k) s += xi[k] * xi[k];
    norm[static_cast<size_t>(i)] = s;
  }
  const size_t na = a_set.size();
  std::vector<int64_t> best(na, -1);
  std::vector<double> best_sim(na, -std::numeric_limits<double>::infinity());
  const PackedRows arows = PackRowsF64(in.x.data(), c, a_set.data(), static_cast<int64_t>(na));
  const PackedRows brows = PackRowsF64(in.x.data(), c, b_set.data(), static_cast<int64_t>(b_set.size()));
  ForEachDot(
      arows, brows,
      [&](int64_t k, int64_t q, double dot) {
        const int64_t ai = a_set[static_cast<size_t>(k)], bi = b_set[static_cast<size_t>(q)];
        const double sim = GuardedCosine(dot, norm[static_cast<size_t>(ai)], norm[static_cast<size_t>(bi)]);
        if (sim > best_sim[static_cast<size_t>(k)]) {  // q ascending: equal similarity keeps the lower position
          best_sim[static_cast<size_t>(k)] = sim;
          best[static_cast<size_t>(k)] = bi;
        }
      },
      parallel);

  std::vector<size_t> order(na);
  for (size_t k = 0; k < na; ++k) order[k] = k;
  std::sort(order.begin(), order.end(), [&](size_t p, size_t q) {
    if (best_sim[p] != best_sim[q]) return best_sim[p] > best_sim[q];
    return a_set[p] < a_set[q];
  });
  std::vector<int64_t> into(static_cast<size_t>(n), -1);  // merged position -> its b
  for (int64_t k = 0; k < r; ++k)
    into[static_cast<size_t>(a_set[order[static_cast<size_t>(k)]])] = best[order[static_cast<size_t>(k)]];

  // accumulate s_b x_b, then the merged a's in ascending position order
  std::vector<double> acc(in.x), size(in.s);
  for (int64_t i = 0; i < n; ++i) {
    const double si = in.s[static_cast<size_t>(i)];
    for (int64_t k = 0; k < c; ++k) acc[static_cast<size_t>(i * c + k)] = si * in.x[static_cast<size_t>(i * c + k)];
  }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t b = into[static_cast<size_t>(i)];
    if (b < 0) continue;
    const double si = in.s[static_cast<size_t>(i)];
    for (int64_t k = 0; k < c; ++k) acc[static_cast<size_t>(b * c + k)] += si * in.x[static_cast<size_t>(i * c + k)];
    size[static_cast<size_t>(b)] += si;
  }
  // survivors in order, merged tokens on their target's row: the placement the CUDA
  // cross-clip kernels run too (native/shared/tokens/clips_hd.h)
  std::vector<int32_t> into32(static_cast<size_t>(n)), offsets(static_cast<size_t>(n - r + 1)),
      sources(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) into32[static_cast<size_t>(i)] = static_cast<int32_t>(into[static_cast<size_t>(i)]);
  BuildKeepOrderPlacement(n, into32.data(), dest.data(), offsets.data(), sources.data(), n - r);
  Clip out;
  out.x.reserve(static_cast<size_t>((n - r) * c));
  for (int64_t i = 0; i < n; ++i) {
    if (into[static_cast<size_t>(i)] >= 0) continue;
    const double s = size[static_cast<size_t>(i)];
    for (int64_t k = 0; k < c; ++k) out.x.push_back(acc[static_cast<size_t>(i * c + k)] / s);
    out.s.push_back(s);
  }
  return out;
}

int64_t MergeCount(int64_t n, double keep) { return ClipMergeCount(n, keep); }

// Alternate split: A = even positions, B = odd.
void EvenOdd(int64_t n, std::vector<int64_t>& a_set, std::vector<int64_t>& b_set) {
  a_set.clear();
  b_set.clear();
  for (int64_t i = 0; i < n; ++i) (i % 2 == 0 ? a_set : b_set).push_back(i);
}

}  // namespace

int64_t ClipMergeCount(int64_t n, double keep) {
  return static_cast<int64_t>(std::floor(double(n) * (1.0 - keep) + 1e-9));
}

void ValidateClipParams(const ClipParams& p) {
  IZ_CHECK(p.t >= 1 && p.p >= 1 && p.c >= 1, ShapeMismatch, "frames must be [T, P, C] with T, P, C >= 1");
  for (double k : {p.img_keep, p.cross_keep, p.intra_keep}) {
    IZ_CHECK(std::isfinite(k) && k >= 0 && k <= 1, InvalidArgument, "keep fractions must be in [0, 1]");
  }
  for (int64_t g : p.groups) IZ_CHECK(g >= 1, InvalidArgument, "groups must be integers >= 1");
}

ClipMergeResult MergeClipsCpu(const float* frames, const ClipParams& p) {
  const int64_t t = p.t, np = p.p, c = p.c;
  ValidateClipParams(p);
  CheckFiniteF32(frames, t * np * c, "frames");

  // ImgMe, one frame per task
  std::vector<Clip> clips(static_cast<size_t>(t));
  std::vector<int32_t> orig_clip(static_cast<size_t>(t * np)), orig_row(static_cast<size_t>(t * np));
  const int64_t r_img = std::min(MergeCount(np, p.img_keep), np / 2);
  ParallelFor(static_cast<size_t>(t), 1, [&](size_t lo, size_t hi) {
    std::vector<int64_t> a_set, b_set;
    std::vector<int32_t> dest;
    EvenOdd(np, a_set, b_set);
    for (size_t f = lo; f < hi; ++f) {
      Clip in;
      in.x.assign(frames + int64_t(f) * np * c, frames + (int64_t(f) + 1) * np * c);
      in.s.assign(static_cast<size_t>(np), 1.0);
      clips[f] = MergeStep(in, c, a_set, b_set, r_img, dest, false);
      for (int64_t q = 0; q < np; ++q) {
        orig_clip[f * np + q] = static_cast<int32_t>(f);
        orig_row[f * np + q] = dest[static_cast<size_t>(q)];
      }
    }
  });

  // ClipMe rounds
  size_t round = 0;
  while (true) {
    int64_t g;
    if (p.default_groups) {
      if (clips.size() <= 1) break;
      g = 2;
    } else {
      if (round >= p.groups.size()) break;
      g = p.groups[round];
    }
    ++round;
    const int64_t nclips = static_cast<int64_t>(clips.size());
    const int64_t ngroups = (nclips + g - 1) / g;
    std::vector<Clip> next(static_cast<size_t>(ngroups));
    // new (clip, row) of each old (clip, row)
    std::vector<std::vector<int32_t>> remap(static_cast<size_t>(nclips));
    for (int64_t gi = 0; gi < ngroups; ++gi) {
      const int64_t c0 = gi * g, c1 = std::min(nclips, c0 + g);
      if (c1 - c0 == 1) {
        next[static_cast<size_t>(gi)] = std::move(clips[static_cast<size_t>(c0)]);
        auto& m = remap[static_cast<size_t>(c0)];
        m.resize(static_cast<size_t>(next[static_cast<size_t>(gi)].Rows()));
        for (size_t k = 0; k < m.size(); ++k) m[k] = static_cast<int32_t>(k);
        continue;
      }
      Clip joined;
      std::vector<int64_t> a_set, b_set, offset;
      for (int64_t ci = c0; ci < c1; ++ci) {
        const Clip& cl = clips[static_cast<size_t>(ci)];
        offset.push_back(joined.Rows());
        for (int64_t q = 0; q < cl.Rows(); ++q) (((ci - c0) % 2 == 1) ? a_set : b_set).push_back(joined.Rows() + q);
        joined.x.insert(joined.x.end(), cl.x.begin(), cl.x.end());
        joined.s.insert(joined.s.end(), cl.s.begin(), cl.s.end());
      }
      const int64_t n = joined.Rows();
      std::vector<int32_t> d_cross, d_intra;
      const int64_t r_cross = std::min<int64_t>(MergeCount(n, p.cross_keep), static_cast<int64_t>(a_set.size()));
      Clip crossed = MergeStep(joined, c, a_set, b_set, r_cross, d_cross, true);
      const int64_t n2 = crossed.Rows();
      EvenOdd(n2, a_set, b_set);
      const int64_t r_intra = std::min(MergeCount(n2, p.intra_keep), n2 / 2);
      next[static_cast<size_t>(gi)] = MergeStep(crossed, c, a_set, b_set, r_intra, d_intra, true);
      for (int64_t ci = c0; ci < c1; ++ci) {
        auto& m = remap[static_cast<size_t>(ci)];
        const int64_t rows = clips[static_cast<size_t>(ci)].Rows();
        m.resize(static_cast<size_t>(rows));
        for (int64_t q = 0; q < rows; ++q) {
          m[static_cast<size_t>(q)] =
              d_intra[static_cast<size_t>(d_cross[static_cast<size_t>(offset[static_cast<size_t>(ci - c0)] + q)])];
        }
      }
    }
    for (size_t k = 0; k < orig_clip.size(); ++k) {
      const int32_t ci = orig_clip[k];
      orig_row[k] = remap[static_cast<size_t>(ci)][static_cast<size_t>(orig_row[k])];
      orig_clip[k] = static_cast<int32_t>(ci / g);
    }
    clips = std::move(next);
  }

  ClipMergeResult res;
  std::vector<int32_t> start;
  for (const Clip& cl : clips) {
    start.push_back(static_cast<int32_t>(res.sizes.size()));
    res.clip_lengths.push_back(static_cast<int32_t>(cl.Rows()));
    for (double v : cl.x) res.x.push_back(static_cast<float>(v));
    for (double s : cl.s) res.sizes.push_back(static_cast<float>(s));
  }
  res.assignment.resize(orig_clip.size());
  for (size_t k = 0; k < orig_clip.size(); ++k)
    res.assignment[k] = start[static_cast<size_t>(orig_clip[k])] + orig_row[k];
  return res;
}

}  // namespace iz::tokens
