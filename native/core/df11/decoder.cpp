// The fast CPU decoder for DFloat11 units.
//
// DecodeCpu is the fast one: blocks are independent (output_positions gives each its
// first output), so they are spread over all cores, four blocks interleaved per core,
// through a 12-bit table that resolves one or two codes per lookup and falls back to
// the unit's own tables for the rest.
// It follows the rules of cuda/df11/format.h, like the kernel and its serial replay
// (simulate.cpp), so all of them accept and reject the same units.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../../../cuda/df11/format.h"
#include "../error.h"
#include "../parallel.h"
#include "codec.h"
#include "internal.h"

namespace iz {
namespace df11 {

namespace {

constexpr unsigned kFastBits = 12;
constexpr unsigned kFastMaxLength = 14;  // 4 codes x 14 bits fit the 57 bits one refill guarantees

struct Context {
  UnitView u;
  UnitLayout layout;
  Tables tables;
  uint64_t n_threads;
  uint16_t fast[1u << kFastBits];  // exponent | code length << 8; length 0 = walk the unit's tables
  // One or two codes per 12-bit lookup: sym0 | sym1 << 8 | total bits << 16 | start mask << 20
  // (bit 0 = first code, bit len0 = second code); 0 = take the slow path.
  uint32_t pairs[1u << kFastBits];
};

// For each 12-bit prefix: the exponent the tables give when it is fixed by those bits alone.
void BuildFastTable(Context& c) {
  const uint8_t* luts = c.tables.luts;
  const uint8_t* lengths = luts + c.tables.n_tables * 256;
  for (uint32_t p = 0; p < (1u << kFastBits); ++p) {
    uint32_t v = luts[p >> 4];
    uint32_t sym = 256;
    if (v < kFirstPointer) {
      sym = v;
    } else {
      const uint8_t* row = luts + (256 - v) * 256 + ((p & 15) << 4);  // child index checked by ValidateUnit
      bool same = row[0] < kFirstPointer;
      for (int k = 1; k < 16 && same; ++k) same = row[k] == row[0];
      if (same) sym = row[0];
    }
    uint32_t len = sym < 256 ? lengths[sym] : 0;
    c.fast[p] = (len >= 1 && len <= kFastMaxLength) ? static_cast<uint16_t>(sym | (len << 8)) : 0;
  }
}

// Pairs: when the first code leaves enough known bits and those bits alone fix the
// second code (every completion of the unknown low bits gives the same table entry), one
// lookup yields both. `same` is a binary tree over 12-bit prefixes.
void BuildPairTable(Context& c) {
  constexpr uint32_t kLeaves = 1u << kFastBits;
  std::vector<uint8_t> same(2 * kLeaves, 0);
  for (uint32_t p = 0; p < kLeaves; ++p) same[kLeaves + p] = c.fast[p] != 0;
  for (uint32_t node = kLeaves - 1; node >= 1; --node) {
    uint32_t depth = 31 - __builtin_clz(node);
    uint32_t l = 2 * node, r = 2 * node + 1;
    uint32_t leaf_l = (l << (kFastBits - depth - 1)) - kLeaves, leaf_r = (r << (kFastBits - depth - 1)) - kLeaves;
    same[node] = same[l] && same[r] && c.fast[leaf_l] == c.fast[leaf_r];
  }
  for (uint32_t p = 0; p < kLeaves; ++p) {
    const uint32_t e0 = c.fast[p];
    if (!e0) {
      c.pairs[p] = 0;
      continue;
    }
    const uint32_t len0 = e0 >> 8;
    uint32_t entry = (e0 & 0xFF) | (len0 << 16) | (1u << 20);
    if (len0 < kFastBits) {
      const uint32_t known = kFastBits - len0;
      const uint32_t q = (p << len0) & (kLeaves - 1);
      const uint32_t node = (1u << known) + (q >> len0);
      const uint32_t e1 = c.fast[q];
      if (same[node] && e1 && (e1 >> 8) <= known) {
        entry = (e0 & 0xFF) | ((e1 & 0xFF) << 8) | ((len0 + (e1 >> 8)) << 16) | ((1u | (1u << len0)) << 20);
      }
    }
    c.pairs[p] = entry;
  }
}

inline uint64_t LoadBE64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return __builtin_bswap64(v);
}
inline uint32_t LoadBE32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return __builtin_bswap32(v);
}

inline Window LoadWindowFast(const Context& c, uint64_t thread) {
  uint64_t base = thread * kBytesPerThread;
  if (base + kBytesPerThread + kLookAheadBytes <= c.u.encoded_bytes) {
    return Window{LoadBE64(c.u.encoded_exponent + base), LoadBE32(c.u.encoded_exponent + base + 8)};
  }
  return LoadWindow(c.u.encoded_exponent, c.u.encoded_bytes, thread);
}

inline void CheckGap(const Context& c, uint64_t thread, uint32_t end_pos, uint64_t next_index, uint64_t block) {
  if (next_index >= c.layout.n_elements) return;
  unsigned st = CheckContinuity(c.u.gaps, c.u.gaps_bytes, c.u.encoded_bytes, thread, c.n_threads, end_pos);
  if (st != kOk) Corrupt(st, block, thread);
}

// Blocks other than the unit's last are decoded in two passes. Pass 1 reads the block
// as one continuous stream from its first code (block start + gap), exactly as many
// codes as output_positions says, one or two codes per 12-bit lookup, four blocks
// interleaved so their dependency chains overlap, and marks every code start in a
// bitmap. Pass 2 checks, from the bitmap, that each chunk's first code sits at its gap
// and that exactly that many codes start inside the block (what the GPU kernel
// counts), then rebuilds the BF16 words.

// 57+ valid bits starting at absolute stream bit `bit` (zeros past the end).
inline uint64_t Refill(const Context& c, uint64_t bit) {
  const uint64_t byte = bit >> 3;
  if (__builtin_expect(byte + 8 <= c.u.encoded_bytes, 1)) return LoadBE64(c.u.encoded_exponent + byte) << (bit & 7);
  uint64_t v = 0;
  for (unsigned i = 0; i < 8; ++i) v |= uint64_t(byte + i < c.u.encoded_bytes ? c.u.encoded_exponent[byte + i] : 0) << (56 - 8 * i);
  return v << (bit & 7);
}

// One code through the unit's own tables (codes the 12-bit table does not resolve).
__attribute__((noinline)) uint32_t SlowCode(const Context& c, uint64_t bit, uint32_t* len, uint64_t block) {
  uint32_t sym = 0;
  unsigned st = DecodeSymbol(c.tables, static_cast<uint32_t>(Refill(c, bit) >> 32), &sym, len);
  if (st != kOk) Corrupt(st, block, bit / kBitsPerThread);
  return sym;
}

constexpr unsigned kBitmapWords = kThreadsPerBlock + 2;  // the block's chunks + the next block's first

struct Stream {
  uint64_t bit;        // absolute position of the next code
  uint64_t block_bit;  // first bit of the block
  uint8_t* exps;       // next decoded exponent goes here
  uint64_t* starts;    // bitmap of code starts, bit j of word t = block bit t * 64 + j
  uint64_t remaining;  // codes still to decode
  uint64_t block;
  bool overflow;       // a code started far past the block (corrupt)
};

// ORs the code starts of a group (bits of `mask`, relative to `base`) into the bitmap.
inline void MarkStarts(Stream& s, uint64_t base, uint64_t mask) {
  const uint64_t rel = base - s.block_bit;
  const uint64_t word = rel >> 6;
  const unsigned shift = static_cast<unsigned>(rel & 63);
  if (__builtin_expect(word + 1 < kBitmapWords, 1)) {
    s.starts[word] |= mask << shift;
    s.starts[word + 1] |= (mask >> 1) >> (63 - shift);
  } else {
    s.overflow = true;
  }
}

// Decodes `k` (<= 4) codes of one stream: one refill covers four codes of <= 14 bits.
inline void DecodeGroup(const Context& c, Stream& s, unsigned k) {
  uint64_t base = s.bit;
  uint64_t win = Refill(c, base);
  uint32_t used = 0;
  uint64_t mask = 0;
  for (unsigned i = 0; i < k; ++i) {
    const uint32_t e = c.fast[win >> (64 - kFastBits)];
    mask |= uint64_t(1) << used;
    uint32_t sym;
    if (__builtin_expect(e != 0, 1)) {
      sym = e & 0xFF;
      const uint32_t len = e >> 8;
      win <<= len;
      used += len;
    } else {
      uint32_t len = 0;
      sym = SlowCode(c, base + used, &len, s.block);
      MarkStarts(s, base, mask);
      base += used + len;
      used = 0;
      mask = 0;
      win = Refill(c, base);
    }
    s.exps[i] = static_cast<uint8_t>(sym);
  }
  MarkStarts(s, base, mask);
  s.bit = base + used;
  s.exps += k;
  s.remaining -= k;
}

// W streams, four lookups each (4 to 8 codes), interleaved lookup by lookup. Needs
// remaining >= 8 in every stream; pair lookups consume <= 12 bits, singles <= 14.
template <int W>
inline void DecodePairsN(const Context& c, Stream* s) {
  uint64_t base[W], win[W], mask[W] = {};
  uint32_t used[W] = {};
  uint8_t* out[W];
  for (int k = 0; k < W; ++k) {
    base[k] = s[k].bit;
    win[k] = Refill(c, base[k]);
    out[k] = s[k].exps;
  }
#pragma GCC unroll 4
  for (unsigned i = 0; i < 4; ++i) {
#pragma GCC unroll 4
    for (int k = 0; k < W; ++k) {
      const uint32_t e = c.pairs[win[k] >> (64 - kFastBits)];
      if (__builtin_expect(e != 0, 1)) {
        const uint32_t total = (e >> 16) & 15;
        const uint32_t starts = e >> 20;
        mask[k] |= uint64_t(starts) << used[k];
        std::memcpy(out[k], &e, 2);
        out[k] += 1 + (starts > 1);
        win[k] <<= total;
        used[k] += total;
      } else {
        uint32_t len = 0;
        mask[k] |= uint64_t(1) << used[k];
        *out[k]++ = static_cast<uint8_t>(SlowCode(c, base[k] + used[k], &len, s[k].block));
        MarkStarts(s[k], base[k], mask[k]);
        base[k] += used[k] + len;
        used[k] = 0;
        mask[k] = 0;
        win[k] = Refill(c, base[k]);
      }
    }
  }
  for (int k = 0; k < W; ++k) {
    MarkStarts(s[k], base[k], mask[k]);
    s[k].bit = base[k] + used[k];
    s[k].remaining -= out[k] - s[k].exps;
    s[k].exps = out[k];
  }
}

// Pass 2 of one block: the GPU's view of it must match (every chunk's first code at its
// gap, exactly `expected` codes starting inside the block), then the BF16 words.
void FinishBlock(const Context& c, const Stream& s, const uint8_t* exps, uint16_t* out) {
  const uint64_t b = s.block;
  const uint64_t first = Position(c.u, b), expected = Position(c.u, b + 1) - first;
  const uint64_t t0 = b * kThreadsPerBlock;
  const uint64_t block_end = s.block_bit + uint64_t(kBytesPerBlock) * 8;
  if (expected == 0) {
    // a block holding stream bytes holds at least one code start
    if (ChunkLimit(c.u.encoded_bytes, t0) > 0) Corrupt(kCountMismatch, b, t0);
    return;
  }
  // The last code must start inside the block and the next one at or after its end.
  if (s.overflow || s.starts[kThreadsPerBlock] != 0 || s.starts[kThreadsPerBlock + 1] != 0 || s.bit < block_end) {
    Corrupt(kCountMismatch, b, t0);
  }
  for (uint32_t t = 1; t < kThreadsPerBlock; ++t) {
    const uint64_t w = s.starts[t];
    if (w == 0 || static_cast<uint32_t>(__builtin_ctzll(w)) != ReadGap(c.u.gaps, c.u.gaps_bytes, t0 + t)) {
      Corrupt(kGapMismatch, b, t0 + t - 1);
    }
  }
  if (first + expected < c.layout.n_elements) {
    const uint64_t next = t0 + kThreadsPerBlock;
    if (next >= c.n_threads || s.bit - block_end != ReadGap(c.u.gaps, c.u.gaps_bytes, next)) {
      Corrupt(kGapMismatch, b, next - 1);
    }
  }
  const uint8_t* sm = c.u.sign_mantissa + first;
  uint16_t* dst = out + first;
  for (uint64_t i = 0; i < expected; ++i) dst[i] = RebuildBf16(exps[i], sm[i]);
}

// Inner blocks [b0, b0 + m), m <= 4, decoded together.
void DecodeInnerBlocks(const Context& c, uint64_t b0, unsigned m, uint16_t* out, uint8_t* const* exps, uint64_t* starts) {
  Stream s[4];
  for (unsigned k = 0; k < m; ++k) {
    const uint64_t b = b0 + k, t0 = b * kThreadsPerBlock;
    uint64_t* bitmap = starts + k * kBitmapWords;
    std::memset(bitmap, 0, kBitmapWords * sizeof(uint64_t));
    s[k] = Stream{t0 * kBitsPerThread + ReadGap(c.u.gaps, c.u.gaps_bytes, t0), t0 * kBitsPerThread, exps[k], bitmap,
                  uint64_t(Position(c.u, b + 1)) - Position(c.u, b), b, false};
  }
  if (m == 4) {
    while (s[0].remaining >= 8 && s[1].remaining >= 8 && s[2].remaining >= 8 && s[3].remaining >= 8) {
      DecodePairsN<2>(c, s);
      DecodePairsN<2>(c, s + 2);
    }
  }
  for (unsigned k = 0; k < m; ++k) {
    while (s[k].remaining >= 8) DecodePairsN<1>(c, s + k);
    while (s[k].remaining >= 4) DecodeGroup(c, s[k], 4);
    if (s[k].remaining) DecodeGroup(c, s[k], static_cast<unsigned>(s[k].remaining));
  }
  for (unsigned k = 0; k < m; ++k) FinishBlock(c, s[k], exps[k], out);
}

// Writes straight into the output and stops at the unit's last element.
struct DirectSink {
  uint16_t* out;
  const uint8_t* sm;
  uint64_t* index;
  uint64_t stop;
  bool operator()(uint32_t, uint32_t sym) {
    if (*index >= stop) return false;
    out[*index] = RebuildBf16(sym, sm[*index]);
    ++*index;
    return true;
  }
};

// The unit's last block: chunks may be partial, and codes past the last element are padding.
void DecodeLastBlock(const Context& c, uint64_t b, uint16_t* out) {
  const uint64_t end = Position(c.u, b + 1);
  uint64_t index = Position(c.u, b);
  const uint64_t t0 = b * kThreadsPerBlock;
  for (uint32_t i = 0; i < kThreadsPerBlock && index < end; ++i) {
    const uint64_t thread = t0 + i;
    const uint32_t limit = ChunkLimit(c.u.encoded_bytes, thread);
    if (limit == 0) break;
    Window w = LoadWindowFast(c, thread);
    DirectSink sink{out, c.u.sign_mantissa, &index, end};
    uint32_t count = 0, end_pos = 0;
    unsigned st = DecodeChunk(c.tables, w, ReadGap(c.u.gaps, c.u.gaps_bytes, thread), limit, sink, &count, &end_pos);
    if (st != kOk) {
      if (index < end) Corrupt(st, b, thread);
      break;
    }
    CheckGap(c, thread, end_pos, index, b);
  }
  if (index != end) Corrupt(kCountMismatch, b, t0);
}


}  // namespace

void DecodeCpu(const UnitView& unit, uint16_t* out, size_t out_elements, int threads) {
  auto ctx = std::make_unique<Context>();
  Context& c = *ctx;
  c.u = unit;
  c.layout = ValidateUnit(unit);
  CheckOutput(c.layout, out_elements);
  if (c.layout.n_blocks == 0) return;
  IZ_CHECK(out != nullptr, InvalidArgument, "no output buffer");
  c.tables = Tables{unit.luts, c.layout.n_tables};
  c.n_threads = c.layout.n_blocks * kThreadsPerBlock;
  BuildFastTable(c);
  BuildPairTable(c);
  // Inner blocks in groups of four per task; the last block (partial chunks, padding) alone.
  const uint64_t inner = c.layout.n_blocks - 1;
  const uint64_t groups = (inner + 3) / 4;
  ParallelFor(
      groups + 1, 8,  // >= 32 blocks (~400k weights) per thread: small units stay on one core
      [&](size_t g0, size_t g1) {
        std::vector<uint8_t> scratch(4 * (kMaxCodesPerBlock + 8));
        std::vector<uint64_t> starts(4 * kBitmapWords);
        uint8_t* exps[4] = {scratch.data(), scratch.data() + (kMaxCodesPerBlock + 8),
                            scratch.data() + 2 * (kMaxCodesPerBlock + 8), scratch.data() + 3 * (kMaxCodesPerBlock + 8)};
        for (size_t g = g0; g < g1; ++g) {
          if (g == groups) {
            DecodeLastBlock(c, inner, out);
          } else {
            const uint64_t b = g * 4;
            DecodeInnerBlocks(c, b, static_cast<unsigned>(std::min<uint64_t>(4, inner - b)), out, exps, starts.data());
          }
        }
      },
      threads);
}

}  // namespace df11
}  // namespace iz
