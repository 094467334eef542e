// CPU decoders for DFloat11 units.
//
// DecodeCpu is the fast one: blocks are independent (output_positions gives each its
// first output), so they are spread over all cores; inside a block four chunks are
// decoded in lockstep (independent dependency chains) through a 12-bit table that
// resolves most codes in one lookup and falls back to the unit's own tables.
// DecodeSimulateKernel replays the CUDA kernel's per-thread steps serially (tests).
// Both follow the same rules (cuda/df11/format.h), so they accept and reject the same units.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../../../cuda/df11/format.h"
#include "../error.h"
#include "../parallel.h"
#include "codec.h"

namespace iz {
namespace df11 {

namespace {

constexpr unsigned kFastBits = 12;

[[noreturn]] void Corrupt(unsigned status, uint64_t block, uint64_t thread) {
  Fail(ErrorCode::CorruptData, std::string("DFloat11 unit: ") + StatusText(status) + " (block " + std::to_string(block) +
                                   ", chunk " + std::to_string(thread) + ")");
}

uint32_t Position(const UnitView& u, uint64_t b) {
  const uint8_t* p = u.output_positions + 4 * b;
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

struct Context {
  UnitView u;
  UnitLayout layout;
  Tables tables;
  uint64_t n_threads;
  uint16_t fast[1u << kFastBits];  // exponent | code length << 8; length 0 = walk the unit's tables
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
    c.fast[p] = (len >= 1 && len <= kMaxCodeLength) ? static_cast<uint16_t>(sym | (len << 8)) : 0;
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

__attribute__((noinline)) uint32_t SlowStep(const Context& c, const Window& w, uint32_t pos, uint32_t* sym, uint64_t block,
                                            uint64_t thread) {
  uint32_t len = 0;
  unsigned st = DecodeSymbol(c.tables, Peek32(w, pos), sym, &len);
  if (st != kOk) Corrupt(st, block, thread);
  return len;
}

// One code: returns its length, the exponent in *sym. Throws on an invalid code.
inline uint32_t Step(const Context& c, const Window& w, uint32_t pos, uint32_t* sym, uint64_t block, uint64_t thread) {
  uint32_t e = c.fast[Peek32(w, pos) >> (32 - kFastBits)];
  if (__builtin_expect(e >> 8, 1)) {
    *sym = e & 0xFF;
    return e >> 8;
  }
  return SlowStep(c, w, pos, sym, block, thread);
}

inline void CheckGap(const Context& c, uint64_t thread, uint32_t end_pos, uint64_t next_index, uint64_t block) {
  if (next_index >= c.layout.n_elements) return;
  unsigned st = CheckContinuity(c.u.gaps, c.u.gaps_bytes, c.u.encoded_bytes, thread, c.n_threads, end_pos);
  if (st != kOk) Corrupt(st, block, thread);
}

// A block that is not the unit's last: every chunk is whole and every code is real.
void DecodeInnerBlock(const Context& c, uint64_t b, uint16_t* out, uint8_t* exps) {
  const uint64_t first = Position(c.u, b);
  const uint64_t expected = Position(c.u, b + 1) - first;
  const uint64_t t0 = b * kThreadsPerBlock;
  uint64_t count = 0;
  for (uint32_t g = 0; g < kThreadsPerBlock; g += 4) {
    Window w[4];
    uint32_t pos[4], n[4] = {0, 0, 0, 0};
    alignas(64) uint8_t buf[4][kBitsPerThread + 8];
    for (int s = 0; s < 4; ++s) {
      w[s] = LoadWindowFast(c, t0 + g + s);
      pos[s] = ReadGap(c.u.gaps, c.u.gaps_bytes, t0 + g + s);
    }
    // Four independent chains in lockstep while all have room, then each finishes alone.
    while (pos[0] < kBitsPerThread && pos[1] < kBitsPerThread && pos[2] < kBitsPerThread && pos[3] < kBitsPerThread) {
      for (int s = 0; s < 4; ++s) {
        uint32_t sym;
        uint32_t len = Step(c, w[s], pos[s], &sym, b, t0 + g + s);
        buf[s][n[s]++] = static_cast<uint8_t>(sym);
        pos[s] += len;
      }
    }
    for (int s = 0; s < 4; ++s) {
      while (pos[s] < kBitsPerThread) {
        uint32_t sym;
        uint32_t len = Step(c, w[s], pos[s], &sym, b, t0 + g + s);
        buf[s][n[s]++] = static_cast<uint8_t>(sym);
        pos[s] += len;
      }
    }
    for (int s = 0; s < 4; ++s) {
      std::memcpy(exps + count, buf[s], kBitsPerThread);  // exps has room: <= 64 codes per chunk
      count += n[s];
      CheckGap(c, t0 + g + s, pos[s], first + count, b);
    }
  }
  if (count != expected) Corrupt(kCountMismatch, b, t0);
  const uint8_t* sm = c.u.sign_mantissa + first;
  uint16_t* dst = out + first;
  for (uint64_t i = 0; i < count; ++i) dst[i] = RebuildBf16(exps[i], sm[i]);
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

void CheckOutput(const UnitLayout& layout, size_t out_elements) {
  IZ_CHECK(out_elements == layout.n_elements, ShapeMismatch,
           "the output holds " + std::to_string(out_elements) + " elements but the unit decodes to " +
               std::to_string(layout.n_elements));
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
  const uint64_t last = c.layout.n_blocks - 1;
  ParallelFor(
      c.layout.n_blocks, 4,
      [&](size_t b0, size_t b1) {
        std::vector<uint8_t> exps(kMaxCodesPerBlock + kBitsPerThread);
        for (size_t b = b0; b < b1; ++b) {
          if (b == last) {
            DecodeLastBlock(c, b, out);
          } else {
            DecodeInnerBlock(c, b, out, exps.data());
          }
        }
      },
      threads);
}

namespace {

// Phase-2 sink of the kernel: stages the block's outputs (in shared memory on the GPU).
struct StageSink {
  uint16_t* stage;
  const uint8_t* sm;
  uint64_t first;  // this thread's first output index
  uint64_t base;   // the block's first output index
  uint64_t stop;   // the block's end (<= n)
  bool operator()(uint32_t c, uint32_t sym) {
    uint64_t idx = first + c;
    if (idx >= stop) return false;
    stage[idx - base] = RebuildBf16(sym, sm[idx]);
    return true;
  }
};

}  // namespace

void DecodeSimulateKernel(const UnitView& unit, uint16_t* out, size_t out_elements) {
  const UnitLayout layout = ValidateUnit(unit);
  CheckOutput(layout, out_elements);
  const Tables tables{unit.luts, layout.n_tables};
  const uint64_t n_threads = layout.n_blocks * kThreadsPerBlock;
  std::vector<unsigned> status(kThreadsPerBlock);
  std::vector<uint32_t> counts(kThreadsPerBlock), end_pos(kThreadsPerBlock), gaps(kThreadsPerBlock);
  std::vector<uint64_t> firsts(kThreadsPerBlock);
  std::vector<Window> windows(kThreadsPerBlock);
  std::vector<uint16_t> stage(kMaxCodesPerBlock);
  for (uint64_t b = 0; b < layout.n_blocks; ++b) {
    const bool last = b + 1 == layout.n_blocks;
    const uint64_t base = Position(unit, b), block_end = Position(unit, b + 1);
    // Phase 1: every thread counts the codes that start in its chunk.
    for (uint32_t i = 0; i < kThreadsPerBlock; ++i) {
      const uint64_t thread = b * kThreadsPerBlock + i;
      windows[i] = LoadWindow(unit.encoded_exponent, unit.encoded_bytes, thread);
      gaps[i] = ReadGap(unit.gaps, unit.gaps_bytes, thread);
      CountSink sink;
      status[i] = DecodeChunk(tables, windows[i], gaps[i], ChunkLimit(unit.encoded_bytes, thread), sink, &counts[i], &end_pos[i]);
    }
    // Block-wide exclusive scan seeded with output_positions[block].
    uint64_t running = base;
    for (uint32_t i = 0; i < kThreadsPerBlock; ++i) {
      firsts[i] = running;
      running += counts[i];
    }
    for (uint32_t i = 0; i < kThreadsPerBlock; ++i) {
      unsigned v = ThreadVerdict(status[i], counts[i], end_pos[i], firsts[i], block_end, layout.n_elements, last, unit.gaps,
                                 unit.gaps_bytes, unit.encoded_bytes, b * kThreadsPerBlock + i, n_threads);
      if (v != kOk) Corrupt(v, b, b * kThreadsPerBlock + i);
    }
    const uint64_t total = running - base, expected = block_end - base;
    if (last ? total < expected : total != expected) Corrupt(kCountMismatch, b, b * kThreadsPerBlock);
    // Phase 2: decode again into the staging buffer, then copy the block out in order.
    for (uint32_t i = 0; i < kThreadsPerBlock; ++i) {
      const uint64_t thread = b * kThreadsPerBlock + i;
      StageSink sink{stage.data(), unit.sign_mantissa, firsts[i], base, block_end};
      uint32_t c = 0, e = 0;
      DecodeChunk(tables, windows[i], gaps[i], ChunkLimit(unit.encoded_bytes, thread), sink, &c, &e);
    }
    for (uint64_t k = 0; k < expected; ++k) out[base + k] = stage[k];
  }
}

}  // namespace df11
}  // namespace iz
