// ToMe bipartite soft matching on the CPU backend (and the dispatcher that sends
// device memory to the CUDA kernels). One call merges r tokens per batch row.
#pragma once

#include <cstdint>
#include <vector>

#include "native/core/device.h"
#include "native/shared/tokens/tome_hd.h"

namespace iz::tokens {

struct TomeShape {
  int64_t batch = 1;
  int64_t n = 0;   // tokens per row
  int64_t c = 0;   // channels of x
  int64_t cm = 0;  // channels of the metric
  int64_t r = 0;   // tokens removed per row
  bool keep_order = false;
};

// Largest r one step can remove: every merged A token needs an unprotected B
// token, and r <= (n - protected) / 2 as in the paper.
int64_t TomeMaxR(int64_t n, const uint8_t* protect /* [n] or null */);

// Throws InvalidArgument / ShapeMismatch for impossible shapes or r.
void TomeValidateShape(const TomeShape& s, const uint8_t* protect);

// Host f32 inputs; metric may equal x (then cm == c); sizes null means all 1.
struct TomeHostIn {
  const float* x = nullptr;          // [batch, n, c]
  const float* metric = nullptr;     // [batch, n, cm]
  const float* sizes = nullptr;      // [batch, n] or null
  const uint8_t* protect = nullptr;  // [n] or null
};
struct TomeHostOut {
  float* x = nullptr;       // [batch, n - r, c]
  float* sizes = nullptr;   // [batch, n - r]
  int32_t* dest = nullptr;  // [batch, n]: output index of every input token
};

// Runs the whole step on the CPU (all cores). Validates values (NaN/Inf, sizes > 0).
void TomeMergeCpu(const TomeShape& s, const TomeHostIn& in, const TomeHostOut& out);

// The matching half alone, exposed for tests and for callers that only need the
// assignment: best_b [batch, na], best_score [batch, na] (protected A: -1 / kProtectedScore).
void TomeBestMatchCpu(const TomeShape& s, const float* metric, const uint8_t* protect, int32_t* best_b,
                      float* best_score);

// Device memory in any of f32/f16/bf16 (x and metric share `dtype`); runs on the
// memory's device. Returns x' (dtype), sizes' (f32) and dest (i32) as new memory.
struct TomeDeviceResult {
  MemoryPtr x, sizes, dest;
};
TomeDeviceResult TomeMergeDevice(const TomeShape& s, TokDType dtype, const MemoryPtr& x, const MemoryPtr& metric,
                                 const MemoryPtr& sizes, const std::vector<uint8_t>& protect);

}  // namespace iz::tokens
