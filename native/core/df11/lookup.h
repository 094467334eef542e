// Lookup tables the fast CPU decoder derives from a unit's own decode tables (which
// may be non-canonical, from any encoder). They only shortcut DecodeSymbol: an entry
// exists only where the unit's tables give the same answer for every completion of
// the unknown bits, and everything else falls back to the unit's tables.
#pragma once

#include <cstdint>
#include <memory>

#include "native/shared/df11/format.h"

namespace iz {
namespace df11 {

constexpr unsigned kFastBits = 12;
constexpr unsigned kFastMaxLength = 14;  // a fast code is at most 14 bits (4 fit in one 57-bit refill)
constexpr unsigned kQuadBits = 11;       // 16 KiB of entries: stays in L1 beside the output
constexpr unsigned kQuadMaxBits = 14;    // an entry consumes at most this many bits
constexpr unsigned kQuadMaxCodes = 5;

// A quad entry: up to 5 whole codes fixed by the next kQuadBits bits.
//   bits  0..5   bits consumed (so `e & 63` is the shift)
//   bits  8..47  the exponents, one byte each (bytes past the count are 0)
//   bits 48..61  code starts: bit s = a code starts s bits into the entry; their number
//                is the entry's count (0 for the whole entry = resolve the next code
//                another way)
// The fields above bit 5 are zero in bits 6..7 so that sums of entries keep the sum
// of the consumed bits in their low 6 bits (at most 4 x 14 < 64). The decoder stores
// the 8 bytes above bit 8 at once and moves on by the count.
inline uint64_t QuadSymbols(uint64_t e) { return (e >> 8) & 0xFFFFFFFFFFull; }
inline uint64_t QuadStarts(uint64_t e) { return e >> 48; }
inline uint32_t QuadCount(uint64_t e) { return static_cast<uint32_t>(__builtin_popcountll(QuadStarts(e))); }

struct FastTables {
  uint16_t fast[1u << kFastBits];  // one code per 12-bit prefix: exponent | length << 8; 0 = not fixed
  uint64_t quad[1u << kQuadBits];  // several codes per 11-bit prefix (layout above)
};

// Fills both tables. The unit's tables must have passed ValidateUnit.
void BuildFastTables(const Tables& tables, FastTables& out);

// The same, shared from a small cache keyed by the unit's table bytes: building costs about as
// much as decoding a 30k-weight unit, and a model decoded block by block (every block of a
// model usually shares one code) would otherwise rebuild them on every call. Thread-safe.
std::shared_ptr<const FastTables> CachedFastTables(const Tables& tables);

}  // namespace df11
}  // namespace iz
