// All-pairs dot products through the lane-packed tiles of lanes.h: every sum runs in
// channel order with separate multiply and add, so each dot equals the scalar reference's
// bit for bit, while 32 pairs advance at once (AVX2 when the CPU has it).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "native/core/parallel.h"
#include "native/core/tokens/lanes.h"

namespace iz::tokens {

// Packs rows ids[0..count) of the f64 matrix x [*, c] (serially: callers may already run
// on a worker of ParallelFor).
inline PackedRows PackRowsF64(const double* x, int64_t c, const int64_t* ids, int64_t count) {
  PackedRows p = EmptyPackedRows(count, c);
  for (int64_t i = 0; i < count; ++i) {
    const double* src = x + ids[i] * c;
    double* dst = p.data.data() + (i / 4) * c * 4 + i % 4;
    for (int64_t k = 0; k < c; ++k) dst[k * 4] = src[k];
  }
  return p;
}

// Calls fn(i, j, dot) for every row i < rows.count and lane j < lanes.count. For one i,
// all calls come from one thread with j ascending. `parallel`: split the rows across cores.
template <typename Fn>
void ForEachDot(const PackedRows& rows, const PackedRows& lanes, Fn&& fn, bool parallel = true) {
  const int64_t row_blocks = (rows.count + 3) / 4;
  const int64_t groups = (row_blocks + kGroupBlocks - 1) / kGroupBlocks;
  auto body = [&](size_t lo, size_t hi) {
    double out[4][8];
    for (size_t g = lo; g < hi; ++g) {
      const int64_t b0 = int64_t(g) * kGroupBlocks, b1 = std::min(row_blocks, b0 + kGroupBlocks);
      for (int64_t jb = 0; jb * 4 < lanes.count; jb += 2) {
        for (int64_t ib = b0; ib < b1; ++ib) {
          Tile4x8(rows, ib, lanes, jb, PairOp::kDot, out);
          for (int64_t r = 0; r < 4 && ib * 4 + r < rows.count; ++r) {
            for (int64_t l = 0; l < 8 && jb * 4 + l < lanes.count; ++l) fn(ib * 4 + r, jb * 4 + l, out[r][l]);
          }
        }
      }
    }
  };
  if (parallel)
    ParallelFor(static_cast<size_t>(groups), 1, body);
  else
    body(0, static_cast<size_t>(groups));
}

}  // namespace iz::tokens
