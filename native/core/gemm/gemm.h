// A small f32 GEMM core for the token passes' similarity products (S = A B^T over rows of
// C channels): rows are packed once into panels, register-blocked micro-kernels (AVX-512,
// AVX2 + FMA, portable; one picked at run time through simd.h) compute tiles of S, and the
// row-wise argmax is fused so S is never stored when only the best column is wanted.
//
// Determinism: every element of S is one fused multiply-add chain over k = 0 .. K-1 starting
// from 0 (s = fma(a[k], b[k], s)), whatever the SIMD level, tile shape or thread count, so
// all paths and all thread counts give the same bits (the portable loop uses std::fma).
#pragma once

#include <cstdint>
#include <vector>

namespace iz::gemm {

// Rows packed for the micro-kernels: [panels][k][panel] floats, `panel` rows per panel
// (set by the side and the SIMD level), zero rows past `count`. The buffer is kept by the
// caller across calls, so repeated steps reuse warm memory instead of faulting in fresh pages.
struct Packed {
  std::vector<float> buf;
  int64_t count = 0, k = 0, panel = 0, panels = 0;
  const float* Panel(int64_t p) const { return buf.data() + p * k * panel; }
};

enum class Side { kA, kB };

// Packs `count` rows of length k into `out` for use as A (rows of S) or B (columns of S):
// row i is base + ids[i] * stride (ids null: i * stride), multiplied by scale[i] when scale is
// not null (one rounding: the product x * scale). Runs on `threads` cores (<= 0: all).
void PackRows(const float* base, int64_t stride, const int32_t* ids, const float* scale, int64_t count, int64_t k,
              Side side, Packed* out, int threads = 0);

// For each row i < a.count: best_col[i] = the j < b.count maximizing S[i][j] = a_i . b_j, ties
// to the lower j, and best_score[i] = S[i][j] (-1 / -inf when b.count == 0). a and b must have
// been packed as kA and kB with the same k.
void RowArgmaxABt(const Packed& a, const Packed& b, int32_t* best_col, float* best_score, int threads = 0);

// S = A B^T stored row-major: c[i * ldc + j] for i < a.count, j < b.count (same bits as
// RowArgmaxABt's scores).
void GemmABt(const Packed& a, const Packed& b, float* c, int64_t ldc, int threads = 0);

}  // namespace iz::gemm
