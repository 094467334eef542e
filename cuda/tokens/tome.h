// Plain C++ interface to the ToMe CUDA kernels (cuda/tokens/tome.cu). No CUDA
// headers; only declared/used when built with INFERZIP_WITH_CUDA. All pointers are
// device pointers except `protect_host`.
#pragma once

#include <cstdint>

#include "native/shared/tokens/tome_hd.h"

namespace iz::cuda::tokens {

// One ToMe step for `batch` rows of `n` tokens: x/metric in `dtype`, sizes f32 (null = 1).
// Writes out_x [batch, n-r, c] (dtype), out_sizes [batch, n-r] f32, dest [batch, n] i32.
void TomeMerge(int64_t batch, int64_t n, int64_t c, int64_t cm, int64_t r, bool keep_order, iz::tokens::TokDType dtype,
               const void* x, const void* metric, const float* sizes, const uint8_t* protect_host, void* out_x,
               float* out_sizes, int32_t* dest);

}  // namespace iz::cuda::tokens
