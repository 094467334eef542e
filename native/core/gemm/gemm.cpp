// GEMM core: see gemm.h. Each thread owns a group of A panels and sweeps every B panel over
// it: the A group stays in L2 while one B panel at a time streams through, and a tile of
// S lives in registers for the whole k loop (no k blocking, so each element's sum is one
// fma chain in k order and the result does not depend on the blocking).
#include "native/core/gemm/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "native/core/parallel.h"
#include "native/core/simd.h"

#if IZ_X86_SIMD
#include <immintrin.h>
#endif
#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

namespace iz::gemm {

namespace {

// Tile shape per level: MR rows of A x NR columns of B held in registers.
template <SimdLevel L>
struct Micro;

template <>
struct Micro<SimdLevel::kPortable> {
  static constexpr int kMR = 4, kNR = 8;
  static IZ_FORCE_INLINE void Tile(const float* ap, const float* bp, int64_t k, float* t) {
    float acc[kMR][kNR] = {};
    for (int64_t q = 0; q < k; ++q) {
      const float* a = ap + q * kMR;
      const float* b = bp + q * kNR;
      for (int i = 0; i < kMR; ++i)
        for (int j = 0; j < kNR; ++j) acc[i][j] = std::fma(a[i], b[j], acc[i][j]);
    }
    std::memcpy(t, acc, sizeof(acc));
  }
};

#if IZ_X86_SIMD
template <>
struct Micro<SimdLevel::kAvx2> {
  static constexpr int kMR = 6, kNR = 16;
  static IZ_TARGET_AVX2 void Tile(const float* ap, const float* bp, int64_t k, float* t) {
    __m256 c[kMR][2];
    for (int i = 0; i < kMR; ++i) c[i][0] = c[i][1] = _mm256_setzero_ps();
    for (int64_t q = 0; q < k; ++q) {
      const __m256 b0 = _mm256_loadu_ps(bp + q * kNR), b1 = _mm256_loadu_ps(bp + q * kNR + 8);
      const float* a = ap + q * kMR;
      for (int i = 0; i < kMR; ++i) {
        const __m256 av = _mm256_broadcast_ss(a + i);
        c[i][0] = _mm256_fmadd_ps(av, b0, c[i][0]);
        c[i][1] = _mm256_fmadd_ps(av, b1, c[i][1]);
      }
    }
    for (int i = 0; i < kMR; ++i) {
      _mm256_storeu_ps(t + i * kNR, c[i][0]);
      _mm256_storeu_ps(t + i * kNR + 8, c[i][1]);
    }
  }
};

template <>
struct Micro<SimdLevel::kAvx512> {
  static constexpr int kMR = 12, kNR = 32;
  static IZ_TARGET_AVX512 void Tile(const float* ap, const float* bp, int64_t k, float* t) {
    __m512 c[kMR][2];
    for (int i = 0; i < kMR; ++i) c[i][0] = c[i][1] = _mm512_setzero_ps();
    for (int64_t q = 0; q < k; ++q) {
      const __m512 b0 = _mm512_loadu_ps(bp + q * kNR), b1 = _mm512_loadu_ps(bp + q * kNR + 16);
      const float* a = ap + q * kMR;
      for (int i = 0; i < kMR; ++i) {
        const __m512 av = _mm512_set1_ps(a[i]);
        c[i][0] = _mm512_fmadd_ps(av, b0, c[i][0]);
        c[i][1] = _mm512_fmadd_ps(av, b1, c[i][1]);
      }
    }
    for (int i = 0; i < kMR; ++i) {
      _mm512_storeu_ps(t + i * kNR, c[i][0]);
      _mm512_storeu_ps(t + i * kNR + 16, c[i][1]);
    }
  }
};
#endif

// Most A panels one job holds: 8 x 12 rows x K = 1024 floats = 384 KiB, within L2.
constexpr int64_t kMaxGroup = 8;

// Jobs: groups of A panels, several per thread so uneven progress evens out.
int64_t GroupSize(int64_t panels, int threads) {
  const int64_t t = threads > 0 ? threads : CpuThreads();
  return std::clamp<int64_t>(panels / (4 * t), 1, kMaxGroup);
}

template <SimdLevel L>
IZ_FORCE_INLINE void ArgmaxGroupBody(const Packed* a, const Packed* b, int64_t p_lo, int64_t p_hi, int32_t* best_col,
                                     float* best_score) {
  using M = Micro<L>;
  constexpr int MR = M::kMR, NR = M::kNR;
  float best[kMaxGroup * MR];
  int32_t col[kMaxGroup * MR];
  for (int i = 0; i < kMaxGroup * MR; ++i) best[i] = -std::numeric_limits<float>::infinity(), col[i] = -1;
  alignas(64) float t[MR * NR];
  for (int64_t bp = 0; bp < b->panels; ++bp) {
    const int64_t j0 = bp * NR, nj = std::min<int64_t>(NR, b->count - j0);
    for (int64_t ap = p_lo; ap < p_hi; ++ap) {
      M::Tile(a->Panel(ap), b->Panel(bp), a->k, t);
      float* bs = best + (ap - p_lo) * MR;
      int32_t* bc = col + (ap - p_lo) * MR;
      // Columns are visited in increasing order, so a strict > keeps the lower index on ties.
      for (int i = 0; i < MR; ++i) {
        float v = bs[i];
        int32_t c = bc[i];
        for (int64_t j = 0; j < nj; ++j) {
          if (t[i * NR + j] > v) v = t[i * NR + j], c = static_cast<int32_t>(j0 + j);
        }
        bs[i] = v, bc[i] = c;
      }
    }
  }
  const int64_t r0 = p_lo * MR, r1 = std::min(a->count, p_hi * MR);
  for (int64_t r = r0; r < r1; ++r) best_col[r] = col[r - r0], best_score[r] = best[r - r0];
}
IZ_SIMD_DGEN(void, ArgmaxGroup,
             (const Packed* a, const Packed* b, int64_t p_lo, int64_t p_hi, int32_t* best_col, float* best_score),
             (a, b, p_lo, p_hi, best_col, best_score))

template <SimdLevel L>
IZ_FORCE_INLINE void GemmGroupBody(const Packed* a, const Packed* b, int64_t p_lo, int64_t p_hi, float* c,
                                   int64_t ldc) {
  using M = Micro<L>;
  constexpr int MR = M::kMR, NR = M::kNR;
  alignas(64) float t[MR * NR];
  for (int64_t bp = 0; bp < b->panels; ++bp) {
    const int64_t j0 = bp * NR, nj = std::min<int64_t>(NR, b->count - j0);
    for (int64_t ap = p_lo; ap < p_hi; ++ap) {
      M::Tile(a->Panel(ap), b->Panel(bp), a->k, t);
      const int64_t i0 = ap * MR, ni = std::min<int64_t>(MR, a->count - i0);
      for (int64_t i = 0; i < ni; ++i) std::memcpy(c + (i0 + i) * ldc + j0, t + i * NR, sizeof(float) * size_t(nj));
    }
  }
}
IZ_SIMD_DGEN(void, GemmGroup, (const Packed* a, const Packed* b, int64_t p_lo, int64_t p_hi, float* c, int64_t ldc),
             (a, b, p_lo, p_hi, c, ldc))

template <SimdLevel L>
constexpr int64_t PanelRowsAt(Side side) {
  return side == Side::kA ? Micro<L>::kMR : Micro<L>::kNR;
}

int64_t PanelRows(Side side) {
#if IZ_X86_SIMD
  switch (CpuSimdLevel()) {
    case SimdLevel::kAvx512:
      return PanelRowsAt<SimdLevel::kAvx512>(side);
    case SimdLevel::kAvx2:
      return PanelRowsAt<SimdLevel::kAvx2>(side);
    default:
      break;
  }
#endif
  return PanelRowsAt<SimdLevel::kPortable>(side);
}

}  // namespace

namespace {

// One panel: d[q * p + r] = row r [q] * scale r (one rounding: the product). On x86 the rows
// go 4 at a time through 4 x 4 transposes (contiguous loads and 16-byte stores); a plain
// element loop strided the stores by the panel width and cost two thirds of the GEMM.
void PackPanel(const float* const* rows, const float* scale, int64_t p, int64_t k, float* d) {
  int64_t r0 = 0;
#if defined(__SSE2__)
  for (; r0 + 4 <= p; r0 += 4) {
    const float *s0 = rows[r0], *s1 = rows[r0 + 1], *s2 = rows[r0 + 2], *s3 = rows[r0 + 3];
    const __m128 c0 = _mm_set1_ps(scale[r0]), c1 = _mm_set1_ps(scale[r0 + 1]), c2 = _mm_set1_ps(scale[r0 + 2]),
                 c3 = _mm_set1_ps(scale[r0 + 3]);
    int64_t q = 0;
    for (; q + 4 <= k; q += 4) {
      __m128 a0 = _mm_mul_ps(_mm_loadu_ps(s0 + q), c0), a1 = _mm_mul_ps(_mm_loadu_ps(s1 + q), c1);
      __m128 a2 = _mm_mul_ps(_mm_loadu_ps(s2 + q), c2), a3 = _mm_mul_ps(_mm_loadu_ps(s3 + q), c3);
      _MM_TRANSPOSE4_PS(a0, a1, a2, a3);
      _mm_storeu_ps(d + q * p + r0, a0);
      _mm_storeu_ps(d + (q + 1) * p + r0, a1);
      _mm_storeu_ps(d + (q + 2) * p + r0, a2);
      _mm_storeu_ps(d + (q + 3) * p + r0, a3);
    }
    for (; q < k; ++q)
      for (int64_t r = r0; r < r0 + 4; ++r) d[q * p + r] = rows[r][q] * scale[r];
  }
#endif
  for (; r0 < p; ++r0)
    for (int64_t q = 0; q < k; ++q) d[q * p + r0] = rows[r0][q] * scale[r0];
}

}  // namespace

void PackRows(const float* base, int64_t stride, const int32_t* ids, const float* scale, int64_t count, int64_t k,
              Side side, Packed* out, int threads) {
  const int64_t p = PanelRows(side);
  out->count = count, out->k = k, out->panel = p, out->panels = (count + p - 1) / p;
  const size_t need = static_cast<size_t>(out->panels * k * p);
  if (out->buf.size() < need) out->buf.resize(need);
  float* dst = out->buf.data();
  ParallelFor(
      static_cast<size_t>(out->panels), 1,
      [&](size_t lo, size_t hi) {
        std::vector<const float*> rows(static_cast<size_t>(p));
        std::vector<float> sc(static_cast<size_t>(p));
        std::vector<float> zeros;
        for (size_t pi = lo; pi < hi; ++pi) {
          for (int64_t r = 0; r < p; ++r) {
            const int64_t i = int64_t(pi) * p + r;
            if (i < count) {
              rows[size_t(r)] = base + (ids ? int64_t(ids[i]) : i) * stride;
              sc[size_t(r)] = scale ? scale[i] : 1.0f;
            } else {
              if (zeros.empty()) zeros.assign(static_cast<size_t>(k), 0.0f);
              rows[size_t(r)] = zeros.data(), sc[size_t(r)] = 0.0f;
            }
          }
          PackPanel(rows.data(), sc.data(), p, k, dst + int64_t(pi) * k * p);
        }
      },
      threads);
}

// Runs `body(p0, p1)` over groups of A's panels in parallel (each group sweeps all of B).
template <class Body>
void ForPanelGroups(const Packed& a, int threads, Body body) {
  const int64_t g = GroupSize(a.panels, threads);
  const int64_t groups = (a.panels + g - 1) / g;
  ParallelFor(
      static_cast<size_t>(groups), 1,
      [&](size_t lo, size_t hi) {
        for (size_t gi = lo; gi < hi; ++gi) body(int64_t(gi) * g, std::min(a.panels, int64_t(gi + 1) * g));
      },
      threads);
}

void RowArgmaxABt(const Packed& a, const Packed& b, int32_t* best_col, float* best_score, int threads) {
  if (a.count == 0) return;
  ForPanelGroups(a, threads, [&](int64_t p0, int64_t p1) { ArgmaxGroup(&a, &b, p0, p1, best_col, best_score); });
}

void GemmABt(const Packed& a, const Packed& b, float* c, int64_t ldc, int threads) {
  if (a.count == 0 || b.count == 0) return;
  ForPanelGroups(a, threads, [&](int64_t p0, int64_t p1) { GemmGroup(&a, &b, p0, p1, c, ldc); });
}

}  // namespace iz::gemm
