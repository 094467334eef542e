// The fast CPU decoder for DFloat11 units.
//
// DecodeCpu is the fast one: blocks are independent (output_positions gives each its
// first output), so they are spread over all cores, four blocks interleaved per core,
// through an 11-bit table that resolves up to five codes per lookup (lookup.h) and
// falls back to a 12-bit table and then the unit's own tables for the rest.
// It follows the rules of native/shared/df11/format.h, like the kernel and its serial replay
// (simulate.cpp), so all of them accept and reject the same units.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "native/core/df11/codec.h"
#include "native/core/df11/internal.h"
#include "native/core/df11/lookup.h"
#include "native/core/df11/rebuild.h"
#include "native/core/parallel.h"
#include "native/core/simd.h"
#include "native/shared/df11/format.h"
#include "native/shared/error.h"

namespace iz {
namespace df11 {

namespace {

constexpr uint64_t kStreamOutputBytes = uint64_t(32) << 20;
constexpr unsigned kGroupBlocks = 4;  // inner blocks decoded together by one task

struct Context {
  UnitView u;
  UnitLayout layout;
  Tables tables;
  uint64_t n_threads;
  bool stream_output;                   // the output is far larger than the caches: write it around them
  std::shared_ptr<const FastTables> t;  // shared with other decodes of units with the same code
};

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
// codes as output_positions says, up to five codes per lookup, four blocks
// interleaved so their dependency chains overlap, and marks every code start in a
// bitmap. Pass 2 checks, from the bitmap, that each chunk's first code sits at its gap
// and that exactly that many codes start inside the block (what the GPU kernel
// counts), then rebuilds the BF16 words.

// 57+ valid bits starting at absolute stream bit `bit` (zeros past the end).
inline uint64_t Refill(const Context& c, uint64_t bit) {
  const uint64_t byte = bit >> 3;
  if (__builtin_expect(byte + 8 <= c.u.encoded_bytes, 1)) return LoadBE64(c.u.encoded_exponent + byte) << (bit & 7);
  uint64_t v = 0;
  for (unsigned i = 0; i < 8; ++i)
    v |= uint64_t(byte + i < c.u.encoded_bytes ? c.u.encoded_exponent[byte + i] : 0) << (56 - 8 * i);
  return v << (bit & 7);
}

// One code through the unit's own tables (codes the fast tables do not resolve).
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
  bool overflow;  // a code started far past the block (corrupt)
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

// One code by the 12-bit table or, failing that, the unit's own tables.
inline uint32_t OneCode(const Context& c, uint64_t win, uint64_t bit, uint32_t* len, uint64_t block) {
  const uint32_t e = c.t->fast[win >> (64 - kFastBits)];
  if (e != 0) {
    *len = e >> 8;
    return e & 0xFF;
  }
  return SlowCode(c, bit, len, block);
}

// A group of codes read from one refill: `used` bits so far from `base`, code starts in
// `mask` (bit i = a code starts at base + i). Only the low 6 bits of `used` count (see
// QuadRoundsBody); a group reads at most 56 bits.
struct Group {
  uint64_t base, win, mask, used;
  uint8_t* out;
};

inline Group OpenGroup(const Context& c, const Stream& s) { return Group{s.bit, Refill(c, s.bit), 0, 0, s.exps}; }

// Records the group's starts and moves the stream past it.
inline void CloseGroup(Stream& s, const Group& g) {
  MarkStarts(s, g.base, g.mask);
  s.bit = g.base + (g.used & 63);
  s.remaining -= g.out - s.exps;
  s.exps = g.out;
}

// One code the quad table does not resolve: through the 12-bit table or the unit's
// tables. A code longer than kFastMaxLength closes the group and opens the next after it.
inline void SingleCode(const Context& c, Stream& s, Group& g) {
  uint32_t len = 0;
  const uint32_t used = g.used & 63;
  g.mask |= uint64_t(1) << used;
  *g.out++ = static_cast<uint8_t>(OneCode(c, g.win, g.base + used, &len, s.block));
  if (__builtin_expect(len <= kFastMaxLength, 1)) {
    g.win <<= len;
    g.used = used + len;
  } else {
    MarkStarts(s, g.base, g.mask);
    g.base += used + len;
    g.win = Refill(c, g.base);
    g.mask = 0;
    g.used = 0;
  }
}

// Decodes `k` (<= 4) codes of one stream, one at a time (a block's last few codes).
inline void DecodeGroup(const Context& c, Stream& s, unsigned k) {
  Group g = OpenGroup(c, s);
  for (unsigned i = 0; i < k; ++i) SingleCode(c, s, g);
  CloseGroup(s, g);
}

// Quad rounds over W streams while every stream has >= kRoundCodes codes left. A round is
// one group per stream: a refill and four lookups of <= 14 bits (4 to 20 codes), the
// streams going lookup by lookup so that their dependency chains overlap. Per lookup
// the chain is shift, load, shift; everything else hangs off it. `used` takes the whole
// entry: only its low 6 bits count, and shifts read only those. A lookup the quad table
// does not resolve (a code over kQuadBits bits: rare) leaves the loop: every stream's
// group is closed, that one code goes through SingleCode, and the rounds start again;
// so no local's address escapes and the W streams' state stays in registers.
constexpr unsigned kRoundCodes = 4 * kQuadMaxCodes;

template <int W>
IZ_FORCE_INLINE void QuadRoundsBody(const Context& c, Stream* s) {
  const uint64_t* const quad = c.t->quad;
  for (;;) {
    uint64_t base[W], win[W], mask[W], used[W];
    uint8_t *out[W], *end[W];
    bool more = true;
    for (int k = 0; k < W; ++k) {
      base[k] = s[k].bit;
      win[k] = mask[k] = used[k] = 0;
      out[k] = s[k].exps;
      end[k] = s[k].exps + s[k].remaining;
      more = more && s[k].remaining >= kRoundCodes;
    }
    int miss = -1;
    while (more) {
      for (int k = 0; k < W; ++k) {
        win[k] = Refill(c, base[k]);
        mask[k] = used[k] = 0;
      }
#pragma GCC unroll 4
      for (unsigned i = 0; i < 4; ++i) {
#pragma GCC unroll 4
        for (int k = 0; k < W; ++k) {
          const uint64_t e = quad[win[k] >> (64 - kQuadBits)];
          if (__builtin_expect(e == 0, 0)) {
            miss = k;
            goto close;
          }
          const uint64_t syms = e >> 8, starts = QuadStarts(e);  // 8 bytes: the scratch has room
          std::memcpy(out[k], &syms, 8);
          out[k] += __builtin_popcountll(starts);
          mask[k] |= starts << (used[k] & 63);
          win[k] <<= (e & 63);
          used[k] += e;
        }
      }
      for (int k = 0; k < W; ++k) {
        MarkStarts(s[k], base[k], mask[k]);
        base[k] += used[k] & 63;
        more = more && end[k] - out[k] >= kRoundCodes;
      }
    }
  close:
    for (int k = 0; k < W; ++k) {
      if (miss >= 0) {
        MarkStarts(s[k], base[k], mask[k]);
        base[k] += used[k] & 63;
      }
      s[k].bit = base[k];
      s[k].remaining = end[k] - out[k];
      s[k].exps = out[k];
    }
    if (miss < 0) return;
    DecodeGroup(c, s[miss], 1);
  }
}

// The loop compiled twice: BMI2's shlx/shrx take any register as the count (legacy shifts
// need cl, which serializes the streams' shifts through one register) and leave the
// source intact. Out of line on purpose: inlined into the task loop, GCC spills the
// windows to the stack.
template <int W>
__attribute__((noinline)) void QuadRoundsPortable(const Context& c, Stream* s) {
  QuadRoundsBody<W>(c, s);
}
#if IZ_X86_SIMD
template <int W>
__attribute__((noinline)) IZ_TARGET_AVX2 void QuadRoundsBmi2(const Context& c, Stream* s) {
  QuadRoundsBody<W>(c, s);
}
#endif

template <int W>
void QuadRounds(const Context& c, Stream* s) {
#if IZ_X86_SIMD
  static const auto fn = PickSimd(&QuadRoundsPortable<W>, &QuadRoundsBmi2<W>, &QuadRoundsBmi2<W>);
  fn(c, s);
#else
  QuadRoundsPortable<W>(c, s);
#endif
}

// Whether the first code start of every chunk of an inner block (bitmap word t) is at
// the chunk's gap: the lowest set bit of word t is 1 << gap. A block's 512 gaps are 320
// whole bytes, 8 gaps per 5; an inner block has a next block, so 8-byte loads stay in
// the buffer. Word 0 matches by construction (its stream starts at gap 0).
inline bool FirstStartsMatchGaps(const Context& c, const uint64_t* starts, uint64_t t0) {
  static_assert(kThreadsPerBlock % 8 == 0 && kGapBits == 5, "8 gaps per 5 bytes");
  const uint8_t* gaps = c.u.gaps + t0 * kGapBits / 8;
  uint64_t bad = 0;
  for (uint32_t t = 0; t < kThreadsPerBlock; t += 8) {
    const uint64_t v = LoadBE64(gaps + t / 8 * 5);
#pragma GCC unroll 8
    for (uint32_t j = 0; j < 8; ++j) {
      const uint64_t w = starts[t + j];
      bad |= (w & (0 - w)) ^ (uint64_t(1) << ((v >> (59 - 5 * j)) & 31));
    }
  }
  return bad == 0;
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
  if (!FirstStartsMatchGaps(c, s.starts, t0)) {
    for (uint32_t t = 1; t < kThreadsPerBlock; ++t) {  // find the first bad chunk for the message
      const uint64_t w = s.starts[t];
      if (w == 0 || static_cast<uint32_t>(__builtin_ctzll(w)) != ReadGap(c.u.gaps, c.u.gaps_bytes, t0 + t)) {
        Corrupt(kGapMismatch, b, t0 + t - 1);
      }
    }
  }
  if (first + expected < c.layout.n_elements) {
    const uint64_t next = t0 + kThreadsPerBlock;
    if (next >= c.n_threads || s.bit - block_end != ReadGap(c.u.gaps, c.u.gaps_bytes, next)) {
      Corrupt(kGapMismatch, b, next - 1);
    }
  }
  RebuildRun(exps, c.u.sign_mantissa + first, out + first, expected, c.stream_output);
}

// Inner blocks [b0, b0 + m), m <= kGroupBlocks, decoded together: pass 1 two streams
// at a time (more would not fit the registers), then pass 2 block by block.
void DecodeInnerBlocks(const Context& c, uint64_t b0, unsigned m, uint16_t* out, uint8_t* const* exps,
                       uint64_t* starts) {
  Stream s[kGroupBlocks];
  for (unsigned k = 0; k < m; ++k) {
    const uint64_t b = b0 + k, t0 = b * kThreadsPerBlock;
    uint64_t* bitmap = starts + k * kBitmapWords;
    std::memset(bitmap, 0, kBitmapWords * sizeof(uint64_t));
    s[k] = Stream{t0 * kBitsPerThread + ReadGap(c.u.gaps, c.u.gaps_bytes, t0),
                  t0 * kBitsPerThread,
                  exps[k],
                  bitmap,
                  uint64_t(Position(c.u, b + 1)) - Position(c.u, b),
                  b,
                  false};
  }
  if (m == 4) {
    QuadRounds<4>(c, s);
  } else {
    for (unsigned k = 0; k + 2 <= m; k += 2) QuadRounds<2>(c, s + k);
  }
  for (unsigned k = 0; k < m; ++k) {
    QuadRounds<1>(c, s + k);
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
  c.stream_output = out_elements * sizeof(uint16_t) >= kStreamOutputBytes;
  c.t = CachedFastTables(c.tables);
  // Inner blocks in groups per task; the last block (partial chunks, padding) alone.
  const uint64_t inner = c.layout.n_blocks - 1;
  const uint64_t groups = (inner + kGroupBlocks - 1) / kGroupBlocks;
  ParallelFor(
      groups + 1, 32 / kGroupBlocks,  // >= 32 blocks (~400k weights) per thread: small units stay on one core
      [&](size_t g0, size_t g1) {
        constexpr size_t kScratch = kMaxCodesPerBlock + 8;  // quad lookups write 8 bytes from the next code
        std::vector<uint8_t> scratch(kGroupBlocks * kScratch);
        std::vector<uint64_t> starts(kGroupBlocks * kBitmapWords);
        uint8_t* exps[kGroupBlocks];
        for (unsigned k = 0; k < kGroupBlocks; ++k) exps[k] = scratch.data() + k * kScratch;
        for (size_t g = g0; g < g1; ++g) {
          if (g == groups) {
            DecodeLastBlock(c, inner, out);
          } else {
            const uint64_t b = g * kGroupBlocks;
            const unsigned m = static_cast<unsigned>(std::min<uint64_t>(kGroupBlocks, inner - b));
            DecodeInnerBlocks(c, b, m, out, exps, starts.data());
          }
        }
      },
      threads);
}

}  // namespace df11
}  // namespace iz
