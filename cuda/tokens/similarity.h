// Math shared by the CPU backend and the CUDA kernels of token merging, so CPU tests
// exercise exactly what the kernels compute.
#pragma once

#include <cmath>

#include "../common/hd.h"

namespace iz::tokens {

// Rows are scaled to unit L2 norm; an all-zero row stays zero (cosine 0 with anything)
// instead of becoming NaN.
IZ_HD_INLINE float InverseNorm(float sum_of_squares) {
  return sum_of_squares > 0.f ? 1.f / sqrtf(sum_of_squares) : 0.f;
}

// Deterministic arg-max order: higher score wins, ties go to the lower index. Both
// backends use it so they pick the same partner.
IZ_HD_INLINE bool Better(float score, int index, float best_score, int best_index) {
  return score > best_score || (score == best_score && index < best_index);
}

// The ordering of A tokens for selection: best score first, ties by lower index.
IZ_HD_INLINE bool RanksBefore(float score_a, int a, float score_b, int b) {
  return score_a > score_b || (score_a == score_b && a < b);
}

// Size-weighted average accumulation: acc += x * s.
IZ_HD_INLINE float WeightedAdd(float acc, float x, float s) { return acc + x * s; }

}  // namespace iz::tokens
