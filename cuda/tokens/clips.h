// Plain C++ interface to TempMe's CUDA kernels (cuda/tokens/clips.cu). ImgMe and the
// intra-clip steps are ToMe steps and run on cuda/tokens/tome.h's TomeMerge; this file
// holds what ToMe's even/odd split cannot express. No CUDA headers; only used when built
// with INFERZIP_WITH_CUDA. Pointers are device pointers unless named *_host.
#pragma once

#include <cstdint>

#include "native/shared/tokens/tome_hd.h"

namespace iz::cuda::tokens {

// One bipartite step with explicit sides (TempMe's cross-clip merge) on `batch` joined clips
// of n f32 rows each: a_host [na] and b_host [nb] are ascending, disjoint row lists; the r
// A rows whose best B row (cosine) scores highest (ties: lower position) merge into it with
// size-weighted averages; survivors keep their order. x [batch, n, c], sizes [batch, n];
// writes out_x [batch, n - r, c], out_sizes [batch, n - r], dest [batch, n].
void ClipListMerge(int64_t batch, int64_t n, int64_t c, const int32_t* a_host, int64_t na, const int32_t* b_host,
                   int64_t nb, int64_t r, const float* x, const float* sizes, float* out_x, float* out_sizes,
                   int32_t* dest);

// count elements from in_dt to out_dt (the shared round-to-nearest-even conversions).
void ClipConvert(const void* in, iz::tokens::TokDType in_dt, void* out, iz::tokens::TokDType out_dt, int64_t count);

}  // namespace iz::cuda::tokens
