// Lane-packed f64 kernels for the quadratic parts of the pruning and temporal passes
// (HoliTom's pairwise distances, the inner-LLM merge's similarity search). Rows are
// packed 4 to a block, channel-major inside the block, so one SIMD register holds one
// channel of 4 rows. Each lane carries one pair's sum, accumulated in channel order
// with separate multiply and add: the result equals the scalar reference bit for bit.
#pragma once

#include <cstdint>
#include <vector>

namespace iz::tokens {

struct PackedRows {
  std::vector<double> data;              // [blocks][c][4], zero rows past `count`
  int64_t count = 0, blocks = 0, c = 0;  // blocks is even, so tiles may read two at once
  const double* Block(int64_t b) const { return data.data() + b * c * 4; }
};

// Packs rows ids[0..count) of x [*, c] (f32 -> f64) on all cores.
// Zeroed lane storage for `count` rows of width c: blocks of 4 rows, an even number of them.
PackedRows EmptyPackedRows(int64_t count, int64_t c);
PackedRows PackRows(const float* x, int64_t c, const int32_t* ids, int64_t count);

// Row blocks a thread sweeps the lane blocks with at once: 8 x 4 rows of C f64 stay in
// L2 (256 KiB at C = 1024) while each lane tile is reused 8 times.
constexpr int64_t kGroupBlocks = 8;

enum class PairOp { kDot, kSquaredDistance };

// out[r][l] = sum over k of op(rows block ib row r, lanes of blocks jb, jb + 1) for r < 4,
// l < 8 (lanes 0-3 from block jb, 4-7 from jb + 1). jb + 1 < blocks.
void Tile4x8(const PackedRows& rows, int64_t ib, const PackedRows& lanes, int64_t jb, PairOp op, double out[4][8]);

}  // namespace iz::tokens
