// Structural validation of a DFloat11 unit before anything is decoded.
#include <string>

#include "native/core/df11/codec.h"
#include "native/shared/df11/format.h"
#include "native/shared/error.h"

namespace iz {
namespace df11 {

namespace {
uint32_t ReadU32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
[[noreturn]] void Corrupt(const std::string& msg) { Fail(ErrorCode::CorruptData, "DFloat11 unit: " + msg); }
}  // namespace

UnitLayout ValidateUnit(const UnitView& u) {
  UnitLayout layout;
  auto present = [](const uint8_t* p, size_t bytes) { return p != nullptr || bytes == 0; };
  if (!present(u.luts, u.luts_bytes) || !present(u.encoded_exponent, u.encoded_bytes) ||
      !present(u.sign_mantissa, u.sign_mantissa_bytes) || !present(u.output_positions, u.output_positions_bytes) ||
      !present(u.gaps, u.gaps_bytes)) {
    Fail(ErrorCode::InvalidArgument, "DFloat11 unit: a buffer is missing");
  }

  // luts: k decode tables of 256 entries plus the code-length row, k <= 17.
  if (u.luts_bytes % 256 != 0 || u.luts_bytes < 2 * 256 || u.luts_bytes > (kMaxDecodeTables + 1) * 256) {
    Corrupt("luts has " + std::to_string(u.luts_bytes) + " bytes; it must be 2 to " +
            std::to_string(kMaxDecodeTables + 1) + " rows of 256 (decode tables then the code-length row)");
  }
  layout.n_tables = static_cast<uint32_t>(u.luts_bytes / 256 - 1);
  // Every table reachable from table 0 must sit at level <= 3 and point only to tables
  // that exist, so a lookup never leaves luts and ends within 4 steps (no cycles).
  bool at_level[kMaxLevels + 1][kMaxDecodeTables] = {};
  at_level[0][0] = true;
  for (unsigned level = 0; level < kMaxLevels; ++level) {
    for (uint32_t t = 0; t < layout.n_tables; ++t) {
      if (!at_level[level][t]) continue;
      for (uint32_t i = 0; i < 256; ++i) {
        uint32_t v = u.luts[t * 256 + i];
        if (v < kFirstPointer) continue;
        uint32_t child = 256 - v;
        if (child >= layout.n_tables) {
          Corrupt("luts table " + std::to_string(t) + " entry " + std::to_string(i) + " points to table " +
                  std::to_string(child) + " but there are only " + std::to_string(layout.n_tables));
        }
        if (level + 1 >= kMaxLevels) {
          Corrupt("luts table " + std::to_string(t) + " entry " + std::to_string(i) +
                  " points deeper than 4 levels (a cycle, or a code longer than 32 bits)");
        }
        at_level[level + 1][child] = true;
      }
    }
  }

  // output_positions: u32 LE, blocks + 1 values, 0 .. n, non-decreasing.
  layout.n_elements = u.sign_mantissa_bytes;
  if (u.output_positions_bytes % 4 != 0 || u.output_positions_bytes < 4) {
    Corrupt("output_positions has " + std::to_string(u.output_positions_bytes) +
            " bytes; it must hold blocks + 1 u32 values");
  }
  layout.n_blocks = u.output_positions_bytes / 4 - 1;
  const uint64_t want_blocks = (uint64_t(u.encoded_bytes) + kBytesPerBlock - 1) / kBytesPerBlock;
  if (layout.n_blocks != want_blocks) {
    Corrupt("output_positions describes " + std::to_string(layout.n_blocks) + " blocks but encoded_exponent (" +
            std::to_string(u.encoded_bytes) + " bytes) needs " + std::to_string(want_blocks));
  }
  if (layout.n_elements > 0xFFFFFFFFull) Corrupt("more than 2^32 - 1 elements in one unit");
  if (ReadU32(u.output_positions) != 0) Corrupt("output_positions[0] must be 0");
  uint32_t prev = 0;
  for (uint64_t b = 1; b <= layout.n_blocks; ++b) {
    uint32_t v = ReadU32(u.output_positions + 4 * b);
    if (v < prev) Corrupt("output_positions decreases at block " + std::to_string(b));
    if (v - prev > kMaxCodesPerBlock) {
      Corrupt("output_positions gives block " + std::to_string(b - 1) + " " + std::to_string(v - prev) +
              " elements; a block can hold at most " + std::to_string(kMaxCodesPerBlock));
    }
    prev = v;
  }
  if (prev != layout.n_elements) {
    Corrupt("output_positions ends at " + std::to_string(prev) + " but sign_mantissa holds " +
            std::to_string(layout.n_elements) + " elements");
  }
  if (layout.n_elements > 0 && u.encoded_bytes == 0) Corrupt("encoded_exponent is empty");

  // gaps: 5 bits per thread, threads_per_block per block.
  const uint64_t want_gaps = GapBytes(layout.n_blocks * kThreadsPerBlock);
  if (u.gaps_bytes != want_gaps) {
    Corrupt("gaps has " + std::to_string(u.gaps_bytes) + " bytes but " + std::to_string(layout.n_blocks) +
            " blocks need " + std::to_string(want_gaps));
  }
  return layout;
}

}  // namespace df11
}  // namespace iz
