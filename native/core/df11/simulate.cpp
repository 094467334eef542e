// DecodeSimulateKernel: the CUDA kernel's per-thread steps (native/shared/df11/format.h) run
// serially over every thread of every block: phase 1 counts, the block's exclusive scan
// seeded with output_positions, the verdicts, phase 2 into a staging buffer, then the
// in-order copy. Tests compare it with the fast decoder on machines without a GPU.
#include <vector>

#include "native/core/df11/codec.h"
#include "native/core/df11/internal.h"
#include "native/shared/df11/format.h"

namespace iz {
namespace df11 {

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
      status[i] = DecodeChunk(tables, windows[i], gaps[i], ChunkLimit(unit.encoded_bytes, thread), sink, &counts[i],
                              &end_pos[i]);
    }
    // Block-wide exclusive scan seeded with output_positions[block].
    uint64_t running = base;
    for (uint32_t i = 0; i < kThreadsPerBlock; ++i) {
      firsts[i] = running;
      running += counts[i];
    }
    for (uint32_t i = 0; i < kThreadsPerBlock; ++i) {
      unsigned v = ThreadVerdict(status[i], counts[i], end_pos[i], firsts[i], block_end, layout.n_elements, last,
                                 unit.gaps, unit.gaps_bytes, unit.encoded_bytes, b * kThreadsPerBlock + i, n_threads);
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
