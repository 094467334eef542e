// The DFloat11 v0.5.0 unit layout and the per-thread decode steps, shared by the
// CUDA kernel (cuda/df11/decode.cu) and the CPU decoder (native/core/df11), so the
// CPU tests exercise exactly the logic the GPU runs.
//
// A unit's exponent stream is cut into chunks of 8 bytes (one GPU thread each),
// 512 chunks per GPU block. A code belongs to the chunk it starts in; gaps[t] is the
// bit offset of the first code starting in chunk t. Thread t decodes the codes that
// start at bits [t*64 + gap, t*64 + 64) (and before the end of the stream).
#pragma once

#include "native/shared/hd.h"

namespace iz {
namespace df11 {

constexpr unsigned kBytesPerThread = 8;
constexpr unsigned kBitsPerThread = 64;
constexpr unsigned kThreadsPerBlock = 512;
constexpr unsigned kBytesPerBlock = kBytesPerThread * kThreadsPerBlock;  // 4096
constexpr unsigned kGapBits = 5;
constexpr unsigned kMaxCodeLength = 32;
constexpr unsigned kFirstPointer = 240;   // table entries >= this point to child table 256 - v
constexpr unsigned kMaxChildTables = 16;  // 256 - 240
constexpr unsigned kMaxDecodeTables = 1 + kMaxChildTables;
constexpr unsigned kMaxLevels = 4;  // 4 table lookups cover 32-bit codes
constexpr unsigned kLookAheadBytes = 4;
constexpr unsigned kMaxCodesPerBlock =
    kThreadsPerBlock * kBitsPerThread;  // codes are >= 1 bit    // a code starting in a chunk ends <= 31 bits past it

// Why a decode step failed (0 = fine). Kept as plain ints so device code can OR them into a flag.
enum Status : unsigned {
  kOk = 0,
  kBadPointer = 1,     // a table entry points to a table the unit does not have
  kTooDeep = 2,        // more than 4 table levels (a cycle or a code longer than 32 bits)
  kBadLength = 4,      // the decoded exponent's code length is 0 or > 32
  kCountMismatch = 8,  // a block decodes a different number of codes than output_positions says
  kGapMismatch = 16,   // a chunk's last code does not end where the next chunk's gap says
};

// What a Status means, for error messages (host only).
inline const char* StatusText(unsigned status) {
  if (status & kBadPointer) return "a table entry points to a missing table";
  if (status & kTooDeep) return "a code needs more than 4 table levels";
  if (status & kBadLength) return "a decoded exponent has no valid code length (0 or > 32) in the length row";
  if (status & kCountMismatch) return "the number of codes disagrees with output_positions";
  if (status & kGapMismatch) return "a chunk's codes do not end where the next chunk's gap says";
  return "unknown error";
}

// BF16 word from a decoded exponent and its sign+mantissa byte.
IZ_HD_INLINE uint16_t RebuildBf16(uint32_t exponent, uint32_t sign_mantissa) {
  uint32_t hi = (sign_mantissa & 0x80u) | (exponent >> 1);
  uint32_t lo = ((exponent & 1u) << 7) | (sign_mantissa & 0x7Fu);
  return static_cast<uint16_t>((hi << 8) | lo);
}
IZ_HD_INLINE uint32_t ExponentOf(uint16_t w) { return (w >> 7) & 0xFFu; }
IZ_HD_INLINE uint8_t SignMantissaOf(uint16_t w) { return static_cast<uint8_t>(((w >> 8) & 0x80u) | (w & 0x7Fu)); }

// Bytes holding `threads` 5-bit gaps.
IZ_HD_INLINE uint64_t GapBytes(uint64_t threads) { return (threads * kGapBits + 7) / 8; }

// The 5-bit gap of `thread`, MSB-first. The caller guarantees GapBytes(thread + 1) <= gaps_bytes.
IZ_HD_INLINE uint32_t ReadGap(const uint8_t* gaps, uint64_t gaps_bytes, uint64_t thread) {
  uint64_t bit = thread * kGapBits;
  uint64_t byte = bit >> 3;
  uint32_t two = static_cast<uint32_t>(gaps[byte]) << 8;
  if (byte + 1 < gaps_bytes) two |= gaps[byte + 1];
  return (two >> (11u - static_cast<uint32_t>(bit & 7))) & 31u;
}

// A thread's 8 stream bytes plus 4 look-ahead bytes, big-endian; bytes past the end read as 0.
struct Window {
  uint64_t hi;  // stream bytes [t*8, t*8+8)
  uint32_t lo;  // look-ahead bytes [t*8+8, t*8+12)
};

IZ_HD_INLINE Window LoadWindow(const uint8_t* stream, uint64_t n_bytes, uint64_t thread) {
  uint64_t base = thread * kBytesPerThread;
  Window w{0, 0};
  for (unsigned i = 0; i < 8; ++i) {
    uint64_t b = base + i < n_bytes ? stream[base + i] : 0;
    w.hi |= b << (56 - 8 * i);
  }
  for (unsigned i = 0; i < 4; ++i) {
    uint32_t b = base + 8 + i < n_bytes ? stream[base + 8 + i] : 0;
    w.lo |= b << (24 - 8 * i);
  }
  return w;
}

// The 32 stream bits starting at bit `pos` (0..63) of the thread's chunk.
IZ_HD_INLINE uint32_t Peek32(const Window& w, uint32_t pos) {
  uint64_t lo64 = static_cast<uint64_t>(w.lo) << 32;
  uint64_t v = (w.hi << pos) | ((lo64 >> 1) >> (63 - pos));
  return static_cast<uint32_t>(v >> 32);
}

// Where the unit's decode tables live: n_tables tables of 256 entries, then the
// code-length row (so `luts` holds n_tables + 1 rows).
struct Tables {
  const uint8_t* luts;
  uint32_t n_tables;
};

// Decodes the exponent whose code starts at the top of `peek`: table 0 is indexed
// by the first byte, an entry >= 240 sends the next byte to table 256 - entry.
IZ_HD_INLINE unsigned DecodeSymbol(const Tables& t, uint32_t peek, uint32_t* symbol, uint32_t* length) {
  uint32_t table = 0;
  for (unsigned level = 0; level < kMaxLevels; ++level) {
    uint32_t v = t.luts[table * 256u + ((peek >> (24u - 8u * level)) & 0xFFu)];
    if (v < kFirstPointer) {
      uint32_t len = t.luts[t.n_tables * 256u + v];
      if (len == 0 || len > kMaxCodeLength) return kBadLength;
      *symbol = v;
      *length = len;
      return kOk;
    }
    table = 256u - v;
    if (table >= t.n_tables) return kBadPointer;
  }
  return kTooDeep;
}

// Where thread `thread`'s codes may start: [gap, limit) in chunk bits. Codes must start
// before the end of the stream, so a chunk past it decodes nothing.
IZ_HD_INLINE uint32_t ChunkLimit(uint64_t n_bytes, uint64_t thread) {
  uint64_t start = thread * kBitsPerThread;
  uint64_t end = n_bytes * 8;
  if (start >= end) return 0;
  return end - start >= kBitsPerThread ? kBitsPerThread : static_cast<uint32_t>(end - start);
}

// Phase 1 / phase 2 of one thread: decodes the codes starting in [gap, limit) and
// hands each (index within the chunk, exponent) to `sink`, which returns false to stop
// early (phase 2 stops at the block's last output). Returns a Status; *count is the
// number of codes decoded, *end_pos where the last one ends (chunk bits).
template <class Sink>
IZ_HD_INLINE unsigned DecodeChunk(const Tables& t, const Window& w, uint32_t gap, uint32_t limit, Sink& sink,
                                  uint32_t* count, uint32_t* end_pos) {
  uint32_t pos = gap;
  uint32_t c = 0;
  while (pos < limit) {
    uint32_t sym = 0, len = 0;
    unsigned st = DecodeSymbol(t, Peek32(w, pos), &sym, &len);
    if (st != kOk) {
      *count = c;
      *end_pos = pos;
      return st;
    }
    if (!sink(c, sym)) break;
    ++c;
    pos += len;
  }
  *count = c;
  *end_pos = pos;
  return kOk;
}

// Sink for phase 1: only counts.
struct CountSink {
  IZ_HD_INLINE bool operator()(uint32_t, uint32_t) const { return true; }
};

// Checks that thread `thread`'s last code ends exactly where thread + 1's gap says the
// next code starts. Callers check it only while real elements follow the chunk (past
// the unit's last element the stream is padding). The GPU and CPU both check it, so a
// unit that passes decodes the same on both.
IZ_HD_INLINE unsigned CheckContinuity(const uint8_t* gaps, uint64_t gaps_bytes, uint64_t n_bytes, uint64_t thread,
                                      uint64_t n_threads, uint32_t end_pos) {
  if (thread + 1 >= n_threads || ChunkLimit(n_bytes, thread + 1) == 0) return kOk;
  return end_pos == kBitsPerThread + ReadGap(gaps, gaps_bytes, thread + 1) ? kOk : kGapMismatch;
}

// Verdict of one thread once its output index is known (after the block scan):
// `status`/`count`/`end_pos` from phase 1, `first` its first output index,
// `block_end` = output_positions[block + 1], `n` the unit's element count.
// In the last block, codes at index >= n are padding and never fail the unit; in
// other blocks every code is real.
IZ_HD_INLINE unsigned ThreadVerdict(unsigned status, uint32_t count, uint32_t end_pos, uint64_t first,
                                    uint64_t block_end, uint64_t n, bool last_block, const uint8_t* gaps,
                                    uint64_t gaps_bytes, uint64_t n_bytes, uint64_t thread, uint64_t n_threads) {
  uint64_t next = first + count;
  if (status != kOk && (!last_block || next < block_end)) return status;
  if (status == kOk && next < n) return CheckContinuity(gaps, gaps_bytes, n_bytes, thread, n_threads, end_pos);
  return kOk;
}

}  // namespace df11
}  // namespace iz
