// TempMe on device memory (CPU or CUDA) and the schedule rules both backends share.
// The host-array entry point MergeClipsCpu is declared in reduce.h.
#pragma once

#include <cstdint>
#include <vector>

#include "native/core/device.h"
#include "native/core/tokens/reduce.h"
#include "native/shared/tokens/tome_hd.h"

namespace iz::tokens {

// Throws ShapeMismatch / InvalidArgument for impossible shapes, keep fractions or groups.
void ValidateClipParams(const ClipParams& p);
// Tokens one step removes from n at keep fraction `keep`: floor(n (1 - keep) + 1e-9).
int64_t ClipMergeCount(int64_t n, double keep);

// frames [batch, t, p, c] in dtype (f32/f16/bf16) on the CPU or a CUDA device; runs where the
// memory lives. x [batch, M, c] comes back in dtype and sizes [batch, M] f32, both new memory
// on that device; the assignment [batch * t * p] and the clip lengths come back to the host.
struct ClipDeviceResult {
  MemoryPtr x, sizes;
  int64_t rows = 0;  // M
  std::vector<int32_t> assignment, clip_lengths;
};
ClipDeviceResult MergeClipsDevice(const ClipParams& p, int64_t batch, TokDType dtype, const MemoryPtr& frames);

}  // namespace iz::tokens
