// Placement of one TempMe merge step, shared by the CPU backend (native/core/tokens/clips.cpp)
// and the CUDA cross-clip kernels (cuda/tokens/clips.cu): every TempMe step keeps the order
// of the surviving tokens, and a merged token joins the row of the token it merged into.
#pragma once

#include <cstdint>

#include "native/shared/hd.h"
#include "native/shared/tokens/tome_hd.h"

namespace iz::tokens {

// into[i]: the position token i merges into, or -1 when it survives (targets never merge
// themselves). Writes dest[n] (output row of every input), and the CSR of each output's
// sources: offsets [n_out + 1], sources [n] (ascending within an output).
IZ_HD inline void BuildKeepOrderPlacement(int64_t n, const int32_t* into, int32_t* dest, int32_t* offsets,
                                          int32_t* sources, int64_t n_out) {
  int32_t next = 0;
  for (int64_t i = 0; i < n; ++i)
    if (into[i] < 0) dest[i] = next++;
  for (int64_t i = 0; i < n; ++i)
    if (into[i] >= 0) dest[i] = dest[into[i]];
  GroupSourcesByDest(n, dest, n_out, offsets, sources);
}

}  // namespace iz::tokens
