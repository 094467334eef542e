// Lane-packed f64 tiles: see lanes.h. The AVX2 path (picked at run time) and the
// portable path do the same operations in the same order; neither fuses multiply-add.
// The sums must round as the reference's: no multiply-add contraction (CMake also
// passes -ffp-contract=off; this covers clang builds without it, e.g. node-gyp).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#include "native/core/tokens/lanes.h"

#include "native/core/simd.h"

#include "native/core/parallel.h"

#if IZ_X86_SIMD
#include <immintrin.h>
#endif

namespace iz::tokens {

PackedRows EmptyPackedRows(int64_t count, int64_t c) {
  PackedRows p;
  p.count = count;
  p.c = c;
  p.blocks = (count + 3) / 4;
  p.blocks += p.blocks & 1;
  p.data.assign(static_cast<size_t>(p.blocks * c * 4), 0.0);
  return p;
}

PackedRows PackRows(const float* x, int64_t c, const int32_t* ids, int64_t count) {
  PackedRows p = EmptyPackedRows(count, c);
  ParallelFor(static_cast<size_t>(count), 16, [&](size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) {
      const float* src = x + int64_t(ids[i]) * c;
      double* dst = p.data.data() + (int64_t(i) / 4) * c * 4 + int64_t(i) % 4;
      for (int64_t k = 0; k < c; ++k) dst[k * 4] = src[k];
    }
  });
  return p;
}

namespace {

template <PairOp kOp>
void TilePortable(const double* a, const double* b0, const double* b1, int64_t c, double out[4][8]) {
  double acc[4][8] = {};
  for (int64_t k = 0; k < c; ++k) {
    const double* ak = a + k * 4;
    double b[8];
    for (int l = 0; l < 4; ++l) {
      b[l] = b0[k * 4 + l];
      b[4 + l] = b1[k * 4 + l];
    }
    for (int r = 0; r < 4; ++r) {
      for (int l = 0; l < 8; ++l) {
        if (kOp == PairOp::kDot) {
          acc[r][l] += ak[r] * b[l];
        } else {
          const double v = ak[r] - b[l];
          acc[r][l] += v * v;
        }
      }
    }
  }
  for (int r = 0; r < 4; ++r)
    for (int l = 0; l < 8; ++l) out[r][l] = acc[r][l];
}

#if IZ_X86_SIMD
template <PairOp kOp>
IZ_TARGET_AVX2 void TileAvx2(const double* a, const double* b0, const double* b1, int64_t c, double out[4][8]) {
  __m256d acc[4][2];
  for (int r = 0; r < 4; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_pd();
  for (int64_t k = 0; k < c; ++k) {
    const __m256d p0 = _mm256_loadu_pd(b0 + k * 4), p1 = _mm256_loadu_pd(b1 + k * 4);
    for (int r = 0; r < 4; ++r) {
      const __m256d ar = _mm256_broadcast_sd(a + k * 4 + r);
      if (kOp == PairOp::kDot) {
        acc[r][0] = _mm256_add_pd(acc[r][0], _mm256_mul_pd(ar, p0));
        acc[r][1] = _mm256_add_pd(acc[r][1], _mm256_mul_pd(ar, p1));
      } else {
        const __m256d v0 = _mm256_sub_pd(ar, p0), v1 = _mm256_sub_pd(ar, p1);
        acc[r][0] = _mm256_add_pd(acc[r][0], _mm256_mul_pd(v0, v0));
        acc[r][1] = _mm256_add_pd(acc[r][1], _mm256_mul_pd(v1, v1));
      }
    }
  }
  for (int r = 0; r < 4; ++r) {
    _mm256_storeu_pd(out[r], acc[r][0]);
    _mm256_storeu_pd(out[r] + 4, acc[r][1]);
  }
}
#endif

using TileFn = void (*)(const double*, const double*, const double*, int64_t, double[4][8]);

// AVX-512 would do the same adds in half the instructions, but Zen 4 splits 512-bit
// operations in two, so the AVX2 tile serves both levels.
template <PairOp kOp>
TileFn PickTile() {
#if IZ_X86_SIMD
  return PickSimd<TileFn>(TilePortable<kOp>, TileAvx2<kOp>, nullptr);
#else
  return TilePortable<kOp>;
#endif
}

}  // namespace

void Tile4x8(const PackedRows& rows, int64_t ib, const PackedRows& lanes, int64_t jb, PairOp op, double out[4][8]) {
  static const TileFn dot = PickTile<PairOp::kDot>();
  static const TileFn dist = PickTile<PairOp::kSquaredDistance>();
  (op == PairOp::kDot ? dot : dist)(rows.Block(ib), lanes.Block(jb), lanes.Block(jb + 1), rows.c, out);
}

}  // namespace iz::tokens
