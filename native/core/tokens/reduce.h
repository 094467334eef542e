// Transport, attention-graph and clip-merge token reduction on the CPU backend:
// TopV (Sinkhorn optimal transport), Zero-TPrune (weighted PageRank + similarity
// pruning) and TempMe (ImgMe + ClipMe bipartite merging). The maths follows
// /docs of lib/tokens/reduce.ts; every result equals the plain TypeScript reference
// (test/tokens/reference/reduce.ts) up to the last bit of exp/log (scores) and exactly
// for the kept sets and merge decisions on inputs without near-ties.
#pragma once

#include <cstdint>
#include <vector>

namespace iz::tokens {

// cos(x, y) = x.y / (max(|x|, 1e-12) max(|y|, 1e-12)) from f64 sums in channel order;
// the squared norms are passed in (one per row, computed once).
double GuardedCosine(double dot, double sq_a, double sq_b);

// --- TopV -------------------------------------------------------------------
struct TransportParams {
  int64_t n = 0, c = 0;            // visual [n, c]
  int64_t grid_h = 1, grid_w = 1;  // grid_h * grid_w == n
  int64_t targets_pos = 0;         // rows of `target` (with positions): 0 or n
  int64_t text = 0;                // rows of `text` (no position)
  double alpha = 1, beta = 0.25, gamma = 0.25, eps = 0.1;
  int64_t iters = 10;
  int64_t keep = 0;     // K in [0, n]
  int64_t recover = 0;  // Kr in [0, keep]
};
struct ScoredSelection {
  std::vector<int32_t> kept;     // ascending
  std::vector<int32_t> dropped;  // ascending
  std::vector<float> scores;     // aligned with kept
};
// visual [n, c]; target [targets_pos, c] or null; text [text, c] or null. With neither,
// the targets are the visual tokens themselves (with positions).
ScoredSelection PruneByTransportCpu(const float* visual, const float* target, const float* text,
                                    const TransportParams& p);
// The per-token scores alone (-n x transport cost of the token's mass), [n].
std::vector<double> TransportScores(const float* visual, const float* target, const float* text,
                                    const TransportParams& p);

// --- Zero-TPrune ------------------------------------------------------------
struct GraphParams {
  int64_t n = 0, c = 0, heads = 1;
  int64_t iters = 30;
  double similar_share = 0.5;
  int64_t keep = 0;
};
// tokens [n, c]; attention [heads, n, n] (row i = query i over the keys).
ScoredSelection PruneByAttentionGraphCpu(const float* tokens, const float* attention, const GraphParams& p);
// The I-stage importance alone: mean over heads of the PageRank scores, [n].
std::vector<double> GraphImportance(const float* attention, int64_t heads, int64_t n, int64_t iters);

// --- TempMe -----------------------------------------------------------------
struct ClipParams {
  int64_t t = 0, p = 0, c = 0;
  double img_keep = 0.7, cross_keep = 0.7, intra_keep = 0.9;
  std::vector<int64_t> groups;  // clips joined per ClipMe round
  bool default_groups = true;   // ignore `groups`: [2, 2, ...] until one clip remains
};
struct ClipMergeResult {
  std::vector<float> x;               // [rows, c]
  std::vector<float> sizes;           // [rows]
  std::vector<int32_t> assignment;    // [t * p]
  std::vector<int32_t> clip_lengths;  // rows per remaining clip
};
ClipMergeResult MergeClipsCpu(const float* frames, const ClipParams& p);

// --- FastV, full attention --------------------------------------------------
// [heads, n, n] -> [n]: weight_j = (sum over h, then i, of A[h, i, j]) / (heads * n), f64
// sums in that order: the average attention token j receives from all queries and heads.
std::vector<float> ReceivedAttention(const float* attention, int64_t heads, int64_t n);

}  // namespace iz::tokens
