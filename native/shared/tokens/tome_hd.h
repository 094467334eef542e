// Per-element ToMe math shared by the CUDA kernels (cuda/tokens/tome.cu) and the
// C++ CPU backend (native/core/tokens/tome.cpp), so CPU tests cover the kernels'
// decisions: tie-breaking, ranking, output placement, weighted averaging, dtype I/O.
#pragma once

#include <cmath>
#include <cstdint>

#include "native/shared/float16.h"
#include "native/shared/hd.h"

namespace iz::tokens {

// Element types the token kernels read and write.
enum class TokDType : int { F32 = 0, F16 = 1, BF16 = 2 };

// Bipartite split: A = even indices, B = odd indices.
IZ_HD_INLINE int64_t SideCountA(int64_t n) { return (n + 1) / 2; }
IZ_HD_INLINE int64_t SideCountB(int64_t n) { return n / 2; }

// 1/||v|| with zero vectors mapped to 0 so their cosine with anything is 0 (never NaN).
IZ_HD_INLINE float InvNorm(float sum_squares) { return sum_squares > 0.0f ? 1.0f / sqrtf(sum_squares) : 0.0f; }

// Row-wise argmax with a deterministic tie rule: the higher score wins, and on equal
// scores the lower index wins. Combine order does not matter, so a parallel tree
// reduction and a sequential scan agree.
IZ_HD_INLINE bool ArgmaxBetter(float score, int64_t index, float best_score, int64_t best_index) {
  return score > best_score || (score == best_score && index < best_index);
}

// Order of A tokens when choosing which r merge: score descending, then index ascending.
IZ_HD_INLINE bool RankBefore(float score_a, int64_t index_a, float score_b, int64_t index_b) {
  return score_a > score_b || (score_a == score_b && index_a < index_b);
}

// Score given to protected A tokens: they sort after every real score and are never merged.
constexpr float kProtectedScore = -3.0e38f;

// Size-weighted mean of a merged group; sum_weights > 0 by validation.
IZ_HD_INLINE float WeightedMean(float sum_weighted, float sum_weights) { return sum_weighted / sum_weights; }

// ---- dtype conversion (round to nearest even, NaN kept) --------------------------

using iz::Bf16ToF32;
using iz::F16ToF32;
using iz::F32ToBf16;
using iz::F32ToF16;

IZ_HD_INLINE float LoadAsF32(const void* base, int64_t i, TokDType t) {
  if (t == TokDType::F32) return static_cast<const float*>(base)[i];
  uint16_t bits = static_cast<const uint16_t*>(base)[i];
  return t == TokDType::F16 ? F16ToF32(bits) : Bf16ToF32(bits);
}

IZ_HD_INLINE void StoreFromF32(void* base, int64_t i, float v, TokDType t) {
  if (t == TokDType::F32)
    static_cast<float*>(base)[i] = v;
  else if (t == TokDType::F16)
    static_cast<uint16_t*>(base)[i] = F32ToF16(v);
  else
    static_cast<uint16_t*>(base)[i] = F32ToBf16(v);
}

IZ_HD_INLINE int64_t DTypeBytes(TokDType t) { return t == TokDType::F32 ? 4 : 2; }

}  // namespace iz::tokens

namespace iz::tokens {

// offsets [n_out + 1] / sources [n]: the inputs of each output j, ascending, are
// sources[offsets[j] .. offsets[j + 1]) (a counting sort of 0 .. n-1 by dest[i] < n_out).
IZ_HD inline void GroupSourcesByDest(int64_t n, const int32_t* dest, int64_t n_out, int32_t* offsets,
                                     int32_t* sources) {
  for (int64_t j = 0; j <= n_out; ++j) offsets[j] = 0;
  for (int64_t i = 0; i < n; ++i) offsets[dest[i] + 1] += 1;
  for (int64_t j = 0; j < n_out; ++j) offsets[j + 1] += offsets[j];
  // Fill with offsets[j] as the cursor, then shift back: no scratch needed.
  for (int64_t i = 0; i < n; ++i) sources[offsets[dest[i]]++] = static_cast<int32_t>(i);
  for (int64_t j = n_out; j > 0; --j) offsets[j] = offsets[j - 1];
  offsets[0] = 0;
}

// Where every input token goes after one merge step, and which inputs each output
// holds (CSR, sources ascending). Sequential and O(n): the CPU calls it per batch
// row and the CUDA backend runs it in one thread per batch row, so both agree.
//   merged_a[a]  1 when A token a (index 2a) merges into B token best_b[a] (index 2b+1)
//   dest[n]      output index of input token n
//   offsets      [n_out + 1], sources [n]
// Order: unmerged A ascending, then B ascending; keep_order: surviving tokens in
// their original order (a merged group sits where its B token was).
IZ_HD inline void BuildPlacement(int64_t n, const uint8_t* merged_a, const int32_t* best_b, bool keep_order,
                                 int32_t* dest, int32_t* offsets, int32_t* sources, int64_t n_out) {
  const int64_t na = SideCountA(n);
  int32_t next = 0;
  if (keep_order) {
    for (int64_t i = 0; i < n; ++i) {
      if ((i & 1) == 0 && merged_a[i / 2]) continue;
      dest[i] = next++;
    }
  } else {
    for (int64_t a = 0; a < na; ++a)
      if (!merged_a[a]) dest[2 * a] = next++;
    for (int64_t i = 1; i < n; i += 2) dest[i] = next++;
  }
  for (int64_t a = 0; a < na; ++a)
    if (merged_a[a]) dest[2 * a] = dest[2 * static_cast<int64_t>(best_b[a]) + 1];
  GroupSourcesByDest(n, dest, n_out, offsets, sources);
}

}  // namespace iz::tokens
