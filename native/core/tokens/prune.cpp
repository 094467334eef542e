// CPU backend of FastV / DyCoke KV / HoliTom inner-LLM pruning. The ranking is a
// partial sort under a strict total order; the merge's similarity search runs on all
// cores with the lane-packed f64 tiles of lanes.h (each sum in the reference's order),
// and the size-weighted reduction stays sequential in token order.
// The sums must round as the reference's: no multiply-add contraction (CMake also
// passes -ffp-contract=off; this covers clang builds without it, e.g. node-gyp).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#include "native/core/tokens/prune.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "native/core/parallel.h"
#include "native/core/tokens/exact.h"
#include "native/core/tokens/lanes.h"
#include "native/shared/error.h"

namespace iz::tokens {

std::vector<float> MeanAttention(const float* attention, int64_t heads, int64_t n) {
  IZ_CHECK(heads >= 1 && n >= 0, InvalidArgument, "attention needs at least one head");
  CheckFiniteF32(attention, heads * n, "attention");
  std::vector<float> out(static_cast<size_t>(n), 0.0f);
  if (heads == 1) {
    if (n > 0)
      std::memcpy(out.data(), attention, static_cast<size_t>(n) * sizeof(float));  // n == 0: data() may be null
    return out;
  }
  const double h = static_cast<double>(heads);
  for (int64_t i = 0; i < heads; ++i) {
    const float* row = attention + i * n;
    for (int64_t j = 0; j < n; ++j) out[j] = static_cast<float>(double(out[j]) + double(row[j]) / h);
  }
  return out;
}

PruneSelection SelectTopAttention(const float* weight, int64_t n, int64_t start, int64_t end, int64_t keep) {
  IZ_CHECK(0 <= start && start <= end && end <= n, InvalidArgument, "span must satisfy 0 <= start <= end <= n");
  IZ_CHECK(0 <= keep && keep <= end - start, InvalidArgument, "keep must be in [0, span length]");
  std::vector<uint8_t> keep_mask(static_cast<size_t>(n), 1);
  std::fill(keep_mask.begin() + start, keep_mask.begin() + end, 0);
  for (int32_t i : RankPrefix(weight + start, end - start, keep, true)) keep_mask[static_cast<size_t>(start + i)] = 1;
  PruneSelection sel;
  sel.kept.reserve(static_cast<size_t>(n - (end - start) + keep));
  for (int64_t i = 0; i < n; ++i) (keep_mask[i] ? sel.kept : sel.dropped).push_back(static_cast<int32_t>(i));
  return sel;
}

void GatherRows(const uint8_t* src, int64_t batch, int64_t n, int64_t row_bytes, const std::vector<int32_t>& kept,
                uint8_t* out) {
  const int64_t m = static_cast<int64_t>(kept.size());
  ParallelFor(static_cast<size_t>(batch * m), 256, [&](size_t lo, size_t hi) {
    for (size_t r = lo; r < hi; ++r) {
      const int64_t b = static_cast<int64_t>(r) / m, j = static_cast<int64_t>(r) % m;
      std::memcpy(out + static_cast<int64_t>(r) * row_bytes, src + (b * n + kept[j]) * row_bytes,
                  static_cast<size_t>(row_bytes));
    }
  });
}

KVStepResult KVPruneStep(const float* weight, int64_t start, int64_t end, const float* previous, bool has_kept,
                         int64_t keep, double threshold) {
  IZ_CHECK(0 <= start && start < end, InvalidArgument, "the image span must be non-empty");
  const int64_t len = end - start;
  IZ_CHECK(1 <= keep && keep <= len, InvalidArgument, "keep must be in [1, span length]");
  KVStepResult res;
  res.image.assign(weight + start, weight + end);
  res.similarity = previous ? CosineF64(res.image.data(), previous, len) : std::numeric_limits<double>::quiet_NaN();
  res.recomputed = !has_kept || !(res.similarity >= threshold);
  if (res.recomputed) {
    res.kept = RankPrefix(res.image.data(), len, keep, true);
    std::sort(res.kept.begin(), res.kept.end());
    for (int32_t& i : res.kept) i += static_cast<int32_t>(start);
  }
  return res;
}

namespace {

double CosineFromDot(double dot, double na, double nb) { return na > 0 && nb > 0 ? dot / std::sqrt(na * nb) : 0; }

// For every dropped token, the candidate it is most similar to (cosine; the first of
// equals wins). A thread takes kGroupBlocks blocks of 4 dropped tokens and sweeps the
// candidates once for the group (cache reuse); the dot products come from the
// lane-packed tiles of lanes.h, in the reference's summation order.
std::vector<int32_t> BestCandidates(const float* x, int64_t c, const std::vector<int32_t>& dropped,
                                    const std::vector<int32_t>& cands, const std::vector<double>& norm) {
  const int64_t nd = static_cast<int64_t>(dropped.size()), nc = static_cast<int64_t>(cands.size());
  std::vector<int32_t> target(dropped.size());
  if (nd == 0) return target;
  const PackedRows rows = PackRows(x, c, dropped.data(), nd);
  const PackedRows lanes = PackRows(x, c, cands.data(), nc);
  const int64_t row_blocks = (nd + 3) / 4;
  const int64_t groups = (row_blocks + kGroupBlocks - 1) / kGroupBlocks;
  ParallelFor(static_cast<size_t>(groups), 1, [&](size_t lo, size_t hi) {
    double out[4][8];
    std::vector<int64_t> best(static_cast<size_t>(kGroupBlocks * 4));
    std::vector<double> best_sim(best.size());
    for (size_t g = lo; g < hi; ++g) {
      const int64_t t0 = int64_t(g) * kGroupBlocks * 4, t1 = std::min(nd, t0 + kGroupBlocks * 4);
      std::fill(best.begin(), best.end(), -1);
      std::fill(best_sim.begin(), best_sim.end(), -std::numeric_limits<double>::infinity());
      for (int64_t jb = 0; jb * 4 < nc; jb += 2) {
        for (int64_t ib = t0 / 4; ib * 4 < t1; ++ib) {
          Tile4x8(rows, ib, lanes, jb, PairOp::kDot, out);
          for (int64_t r = 0; r < 4 && ib * 4 + r < t1; ++r) {
            const int64_t t = ib * 4 + r;
            const double na = norm[static_cast<size_t>(dropped[t])];
            for (int64_t l = 0; l < 8 && jb * 4 + l < nc; ++l) {
              const double sim = CosineFromDot(out[r][l], na, norm[static_cast<size_t>(cands[jb * 4 + l])]);
              if (sim > best_sim[t - t0]) {
                best_sim[t - t0] = sim;
                best[t - t0] = jb * 4 + l;
              }
            }
          }
        }
      }
      for (int64_t t = t0; t < t1; ++t) target[t] = cands[static_cast<size_t>(best[t - t0])];
    }
  });
  return target;
}

}  // namespace

AttentionMergeResult MergeByAttentionCpu(const float* x, int64_t n, int64_t c, const float* sizes, const float* weight,
                                         int64_t start, int64_t end, int64_t keep) {
  IZ_CHECK(n >= 1 && c >= 1, ShapeMismatch, "tokens must be [N, C] with N, C >= 1");
  CheckFiniteF32(x, n * c, "tokens");
  if (sizes) {
    for (int64_t i = 0; i < n; ++i) {
      IZ_CHECK(std::isfinite(sizes[i]) && sizes[i] > 0, InvalidArgument,
               "sizes[" + std::to_string(i) + "] = " + std::to_string(sizes[i]) + " must be finite and > 0");
    }
  }
  AttentionMergeResult res;
  res.selection = SelectTopAttention(weight, n, start, end, keep);
  const auto& kept = res.selection.kept;
  const auto& dropped = res.selection.dropped;
  std::vector<int32_t> span_kept;
  for (int32_t i : kept)
    if (i >= start && i < end) span_kept.push_back(i);
  IZ_CHECK(dropped.empty() || !span_kept.empty(), InvalidArgument,
           "mergeByAttention needs at least one kept token in the span (keep >= 1)");

  std::vector<double> norm(static_cast<size_t>(n));
  ParallelFor(static_cast<size_t>(n), 64, [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) norm[i] = SquaredNormF64(x + int64_t(i) * c, c);
  });
  const std::vector<int32_t> target = BestCandidates(x, c, dropped, span_kept, norm);

  const size_t m = kept.size();
  std::vector<int32_t> slot(static_cast<size_t>(n), -1);
  res.assignment.assign(static_cast<size_t>(n), 0);
  res.sizes.resize(m);
  std::vector<double> acc(m * static_cast<size_t>(c));
  for (size_t j = 0; j < m; ++j) {
    const int32_t i = kept[j];
    const float s = sizes ? sizes[i] : 1.0f;
    slot[i] = static_cast<int32_t>(j);
    res.assignment[i] = static_cast<int32_t>(j);
    res.sizes[j] = s;
    for (int64_t k = 0; k < c; ++k) acc[j * c + k] = double(x[int64_t(i) * c + k]) * s;
  }
  // Sequential in dropped order: the f32 sizes and f64 sums round exactly as the reference's.
  for (size_t t = 0; t < dropped.size(); ++t) {
    const int32_t d = dropped[t];
    const int32_t j = slot[target[t]];
    const float s = sizes ? sizes[d] : 1.0f;
    res.assignment[d] = j;
    res.sizes[j] += s;
    for (int64_t k = 0; k < c; ++k) acc[j * c + k] += double(x[int64_t(d) * c + k]) * s;
  }
  res.x.resize(m * static_cast<size_t>(c));
  for (size_t j = 0; j < m; ++j) {
    for (int64_t k = 0; k < c; ++k) res.x[j * c + k] = static_cast<float>(acc[j * c + k] / double(res.sizes[j]));
  }
  return res;
}

}  // namespace iz::tokens
