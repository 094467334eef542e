// Attention-ranked pruning inside the LLM on the CPU backend: FastV's one-shot
// selection, DyCoke's decode-time KV step and HoliTom's inner-LLM merge. Results
// match the TypeScript reference (test/tokens/reference/) bit for bit.
#pragma once

#include <cstdint>
#include <vector>

namespace iz::tokens {

// Last-token attention [heads, n] -> [n]: mean over heads, accumulated in f32 one head
// at a time (each term att / heads in f64). heads == 1 copies. Rejects NaN/Inf.
std::vector<float> MeanAttention(const float* attention, int64_t heads, int64_t n);

struct PruneSelection {
  std::vector<int32_t> kept;     // ascending; everything outside [start, end) plus the top `keep` of the span
  std::vector<int32_t> dropped;  // ascending
};

// Keeps the `keep` span tokens with the highest weight (ties: lower index).
PruneSelection SelectTopAttention(const float* weight, int64_t n, int64_t start, int64_t end, int64_t keep);

// out[b, j] = src[b, kept[j]] for rows of `row_bytes` bytes; src is [batch, n, row].
void GatherRows(const uint8_t* src, int64_t batch, int64_t n, int64_t row_bytes, const std::vector<int32_t>& kept,
                uint8_t* out);

// One DyCoke decode step on the image part of the mean attention.
struct KVStepResult {
  std::vector<float> image;  // weight[start, end), the next step's `previous`
  double similarity = 0;     // cosine with `previous` (NaN without one)
  bool recomputed = false;
  std::vector<int32_t> kept;  // absolute, ascending; empty unless recomputed
};
KVStepResult KVPruneStep(const float* weight, int64_t start, int64_t end,
                         const float* previous /* [end-start] or null */, bool has_kept, int64_t keep,
                         double threshold);

// HoliTom inner-LLM merge: every dropped token joins its most similar (cosine) kept span
// token (ties: lower index), size-weighted. x [n, c] f32, sizes [n] (null = all 1).
struct AttentionMergeResult {
  PruneSelection selection;
  std::vector<float> x;             // [kept, c]
  std::vector<float> sizes;         // [kept]
  std::vector<int32_t> assignment;  // [n]
};
AttentionMergeResult MergeByAttentionCpu(const float* x, int64_t n, int64_t c, const float* sizes, const float* weight,
                                         int64_t start, int64_t end, int64_t keep);

}  // namespace iz::tokens
