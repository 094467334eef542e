// ToMe bipartite soft matching on the CPU (and the host side of the CUDA path).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace iz::tokens {

struct TomeInput {
  const float* x = nullptr;       // [batch, n, c]
  const float* metric = nullptr;  // [batch, n, cm] (may equal x with cm == c)
  const float* sizes = nullptr;   // [batch, n] or null (all ones)
  const uint8_t* protect = nullptr;  // [n] or null: 1 = never merged
  size_t batch = 1, n = 0, c = 0, cm = 0;
  size_t r = 0;
  bool keep_order = false;
};

struct TomeOutput {
  std::vector<float> x;        // [batch, n - r, c]
  std::vector<float> sizes;    // [batch, n - r]
  std::vector<int32_t> assign; // [batch, n]: output index of each input token
};

// Largest r possible: A tokens that may merge, limited by B tokens that may receive.
size_t TomeMaxR(size_t n, const uint8_t* protect);

// For each even-index token a (set A), its most similar odd-index token b (set B)
// by cosine of the metric rows: best[a] (index into B), score[a].
// Protected A rows get score -inf; protected B columns are never chosen.
void TomeMatch(const float* metric, size_t n, size_t cm, const uint8_t* protect, int32_t* best, float* score);

// Whole step (match + select + size-weighted merge), validated. Uses all cores.
TomeOutput TomeMerge(const TomeInput& in);

// Given matches, picks the r A-tokens to merge and builds the output layout; then
// scatters x (size-weighted). Shared by the CPU and CUDA paths.
void TomeSelectAndMerge(const float* x, const float* sizes, size_t n, size_t c, size_t r, bool keep_order,
                        const int32_t* best, const float* score, float* out_x, float* out_sizes, int32_t* assign);

// Cosine similarity of row i of a with row i of b, for m rows of c values.
void RowCosine(const float* a, const float* b, size_t m, size_t c, float* out);

}  // namespace iz::tokens
