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

// The pieces of TomeMerge that other bipartite merges reuse (TempMe's cross-clip step,
// cuda/tokens/clips.cu), so they rank, average and validate exactly as a ToMe step does.
// True when any of the `count` elements of x is NaN or Inf.
bool TomeAnyNonFinite(const void* x, int64_t count, iz::tokens::TokDType dtype);
// rows x cm metric -> L2-normalized f32 rows (zero rows stay zero).
void TomeNormalizeRows(int64_t rows, int64_t cm, iz::tokens::TokDType dtype, const void* metric, float* out);
// Size-weighted scatter-reduce of a placement in CSR form: offsets [batch, n_out + 1],
// sources [batch, n] (ascending within each output). sizes null = all 1.
void TomeReduce(int64_t batch, int64_t n, int64_t n_out, int64_t c, iz::tokens::TokDType dtype, const void* x,
                const float* sizes, const int32_t* offsets, const int32_t* sources, void* out_x, float* out_sizes);

}  // namespace iz::cuda::tokens
