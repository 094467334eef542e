// TopV and Zero-TPrune on device memory (NativeBuffer, CPU or CUDA): the work runs where
// the tensors live. CPU memory runs the CPU backend (widened to f32, as the host path
// does); CUDA memory runs the kernels of cuda/tokens/transport.cu and graph.cu on that
// device, with the small per-token vectors (scores, importances, similarities) copied back
// for the host-side selection both backends share (reduce_stages.h).
#pragma once

#include <cstdint>

#include "native/core/device.h"
#include "native/core/tokens/reduce.h"
#include "native/shared/tokens/tome_hd.h"

namespace iz::tokens {

// One device tensor argument; mem null means "not given".
struct DeviceRows {
  MemoryPtr mem;
  TokDType dt = TokDType::F32;
};

struct DeviceSelection {
  ScoredSelection sel;  // concatenated over the batch, as the host path returns it
  MemoryPtr tokens;     // kept rows [batch, keep, c] in the input's dtype, on its device
};

// visual [batch, n, c]; target [batch, n, c] (p.targets_pos == n) or none; text
// [batch, p.text, c] or none. Throws DeviceMismatch when they live on different devices.
DeviceSelection PruneByTransportDevice(const TransportParams& p, int64_t batch, const DeviceRows& visual,
                                       const DeviceRows& target, const DeviceRows& text);

// tokens [batch, n, c]; attention [batch, heads, n, n] on the same device.
DeviceSelection PruneByAttentionGraphDevice(const GraphParams& p, int64_t batch, const DeviceRows& tokens,
                                            const DeviceRows& attention);

}  // namespace iz::tokens
