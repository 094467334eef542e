// AVX2 + FMA versions of the 2-bit KIVI inner loops (kivi_cpu.h), chosen at run time when the
// CPU has them. Same regrouped arithmetic as the portable loops (q*scale per key channel,
// p*scale per value group, the min terms summed once), codes read through the byte table.
#include "native/core/kvquant/kivi_avx2.h"

#if IZ_X86_SIMD
// GCC 12 reports -Wmaybe-uninitialized inside its own avx512fintrin.h (the _mm512_undefined_*
// placeholders of _mm512_srlv_epi32 / _mm512_permutexvar_ps once inlined at -O3): a known false
// positive of that header, not of this file, so it is silenced here rather than globally.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "native/core/kvquant/kivi_cpu.h"
#include "native/core/simd.h"

namespace iz::kv::cpu {

namespace {

#define IZ_AVX2 IZ_TARGET_AVX2

// Exact f16 -> f32 for a run of halves (F16C), tail by the shared scalar decoder.
IZ_AVX2 void HalvesToFloats(const uint16_t* src, int n, float* dst) {
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  for (; i < n; ++i) dst[i] = F16ToF32(src[i]);
}

// Codes become floats through a byte table (byte -> its four 2-bit codes as floats): two
// 128-bit loads fill one 8-wide register. On the Zen 1 machine the benchmarks run on this beat
// expanding codes in registers (shift + permute or shift + and + convert): those are bound by
// the vector pipes, this by the two load ports.
IZ_AVX2 inline __m256 Codes8(const uint8_t* b) {
  return _mm256_set_m128(_mm_load_ps(kLuts.two[b[1]]), _mm_load_ps(kLuts.two[b[0]]));
}
// The same for bytes 2k, 2k+1 of a word already in a register: one load per 8 bytes of codes
// instead of one per byte (the loop is bound by the load ports).
IZ_AVX2 inline __m256 Codes8(uint64_t word, int k) {
  const uint32_t two = static_cast<uint32_t>(word >> (16 * k));
  return _mm256_set_m128(_mm_load_ps(kLuts.two[(two >> 8) & 0xFF]), _mm_load_ps(kLuts.two[two & 0xFF]));
}
// Asks for [p, p + bytes) ahead of use: the loops below are compute-bound once data is in
// cache, but each block's first touch otherwise waits on memory (prefetch never faults, so
// running past the end of a plane is harmless).
inline void Prefetch(const void* p, size_t bytes) {
  const char* c = static_cast<const char*>(p);
  for (size_t i = 0; i < bytes; i += 64) _mm_prefetch(c + i, _MM_HINT_T0);
}
IZ_AVX2 inline uint64_t Load64(const uint8_t* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);  // little-endian: byte 0 is the low byte, as the packing writes it
  return w;
}

// Even lanes of `pairs` (f16 (scale, min) pairs of 4 channels as 8 floats) times q: lanes hold
// (q_c*scale_c, q_c*min_c); the caller keeps the products and sums the odd lanes for the bias.
IZ_AVX2 inline __m256 QTimesPairs(const float* q, const uint16_t* par) {
  const __m128 q4 = _mm_loadu_ps(q);
  const __m256 qq = _mm256_set_m128(_mm_unpackhi_ps(q4, q4), _mm_unpacklo_ps(q4, q4));
  return _mm256_mul_ps(qq, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(par))));
}
IZ_AVX2 inline float SumOddLanes(__m256 v) {
  alignas(32) float t[8];
  _mm256_store_ps(t, v);
  return (t[1] + t[3]) + (t[5] + t[7]);
}

// (q*scale, q*min) per channel into qsm (2*d floats); returns sum_c q_c*min_c.
IZ_AVX2 inline float PrepareKeyRow(const uint16_t* par, int d, const float* q, float* qsm) {
  __m256 bias = _mm256_setzero_ps();
  for (int c = 0; c < d; c += 4) {
    const __m256 prod = QTimesPairs(q + c, par + 2 * c);
    _mm256_storeu_ps(qsm + 2 * c, prod);
    bias = _mm256_add_ps(bias, prod);
  }
  return SumOddLanes(bias);
}

template <int KB>
IZ_AVX2 void KeyGroup(const uint8_t* block, uint32_t param_offset, int d, const float* q, float* qsm, float* lg) {
  constexpr int N = KB / 2;  // 8 tokens per register
  const size_t block_bytes = param_offset + size_t(4) * d;
  Prefetch(block + block_bytes, block_bytes);  // the next key group
  const float bias = PrepareKeyRow(reinterpret_cast<const uint16_t*>(block + param_offset), d, q, qsm);
  // Even and odd channels in separate accumulators: two dependency chains per register
  // instead of one, or the loop waits on the multiply-add latency.
  __m256 acc[N], odd[N];
  for (int k = 0; k < N; ++k) {
    acc[k] = _mm256_set1_ps(bias);
    odd[k] = _mm256_setzero_ps();
  }
  for (int c = 0; c < d; c += 2) {  // d is a multiple of 16 here
    const uint8_t* codes = block + size_t(c) * KB;
    const __m256 w0 = _mm256_set1_ps(qsm[2 * c]), w1 = _mm256_set1_ps(qsm[2 * c + 2]);
    for (int i = 0; i < KB / 8; ++i) {
      const uint64_t e = Load64(codes + 8 * i), o = Load64(codes + KB + 8 * i);
      for (int k = 0; k < 4; ++k) {
        acc[4 * i + k] = _mm256_fmadd_ps(w0, Codes8(e, k), acc[4 * i + k]);
        odd[4 * i + k] = _mm256_fmadd_ps(w1, Codes8(o, k), odd[4 * i + k]);
      }
    }
    if constexpr (KB % 8 != 0) {
      for (int k = KB / 8 * 4; k < N; ++k) {
        acc[k] = _mm256_fmadd_ps(w0, Codes8(codes + 2 * k), acc[k]);
        odd[k] = _mm256_fmadd_ps(w1, Codes8(codes + KB + 2 * k), odd[k]);
      }
    }
  }
  for (int k = 0; k < N; ++k) _mm256_storeu_ps(lg + 8 * k, _mm256_add_ps(acc[k], odd[k]));
}

template <int GB>
IZ_AVX2 void ValueBlock(const uint8_t* codes, const uint16_t* par, int d, int nt, const float* p, float* acc,
                        float* parf) {
  constexpr int N = GB / 2;  // 8 channels per register
  const int groups = d / (4 * GB), tok_bytes = d / 4;
  Prefetch(codes + size_t(nt) * tok_bytes, size_t(nt) * tok_bytes);  // the next block of tokens
  Prefetch(par + size_t(nt) * 2 * groups, size_t(nt) * 4 * groups);
  HalvesToFloats(par, nt * 2 * groups, parf);
  for (int g = 0; g < groups; ++g) {
    float* ag = acc + g * 4 * GB;
    // Even and odd tokens in separate accumulators (two dependency chains per register).
    __m256 a[N], b[N];
    for (int k = 0; k < N; ++k) {
      a[k] = _mm256_loadu_ps(ag + 8 * k);
      b[k] = _mm256_setzero_ps();
    }
    float ms0 = 0.0f, ms1 = 0.0f;
    const uint8_t* cg = codes + g * GB;
    const float* pg = parf + 2 * g;
    int t = 0;
    for (; t + 2 <= nt; t += 2) {
      const float p0 = p[t], p1 = p[t + 1];
      const float* pr = pg + size_t(t) * 2 * groups;
      ms0 += p0 * pr[1];
      ms1 += p1 * pr[2 * groups + 1];
      const __m256 w0 = _mm256_set1_ps(p0 * pr[0]), w1 = _mm256_set1_ps(p1 * pr[2 * groups]);
      const uint8_t* c0 = cg + size_t(t) * tok_bytes;
      for (int i = 0; i < GB / 8; ++i) {
        const uint64_t e = Load64(c0 + 8 * i), o = Load64(c0 + tok_bytes + 8 * i);
        for (int k = 0; k < 4; ++k) {
          a[4 * i + k] = _mm256_fmadd_ps(w0, Codes8(e, k), a[4 * i + k]);
          b[4 * i + k] = _mm256_fmadd_ps(w1, Codes8(o, k), b[4 * i + k]);
        }
      }
      if constexpr (GB % 8 != 0) {
        for (int k = GB / 8 * 4; k < N; ++k) {
          a[k] = _mm256_fmadd_ps(w0, Codes8(c0 + 2 * k), a[k]);
          b[k] = _mm256_fmadd_ps(w1, Codes8(c0 + tok_bytes + 2 * k), b[k]);
        }
      }
    }
    if (t < nt) {
      const float* pr = pg + size_t(t) * 2 * groups;
      ms0 += p[t] * pr[1];
      const __m256 w = _mm256_set1_ps(p[t] * pr[0]);
      for (int k = 0; k < N; ++k) a[k] = _mm256_fmadd_ps(w, Codes8(cg + size_t(t) * tok_bytes + 2 * k), a[k]);
    }
    const __m256 m8 = _mm256_set1_ps(ms0 + ms1);
    for (int k = 0; k < N; ++k) _mm256_storeu_ps(ag + 8 * k, _mm256_add_ps(_mm256_add_ps(a[k], b[k]), m8));
  }
}

// Two query rows (GQA heads sharing a KV head) per pass: each shifted code word serves both.
template <int KB>
IZ_AVX2 void KeyGroupPair(const uint8_t* block, uint32_t param_offset, int d, const float* q0, const float* q1,
                          float* scratch, float* lg0, float* lg1) {
  constexpr int N = KB / 2;
  const uint16_t* par = reinterpret_cast<const uint16_t*>(block + param_offset);
  const size_t block_bytes = param_offset + size_t(4) * d;
  Prefetch(block + block_bytes, block_bytes);  // the next key group
  float* qsm0 = scratch;
  float* qsm1 = scratch + 2 * d;
  const float b0 = PrepareKeyRow(par, d, q0, qsm0), b1 = PrepareKeyRow(par, d, q1, qsm1);
  __m256 a0[N], a1[N];
  for (int k = 0; k < N; ++k) {
    a0[k] = _mm256_set1_ps(b0);
    a1[k] = _mm256_set1_ps(b1);
  }
  for (int c = 0; c < d; ++c) {
    const uint8_t* codes = block + size_t(c) * KB;
    const __m256 w0 = _mm256_set1_ps(qsm0[2 * c]), w1 = _mm256_set1_ps(qsm1[2 * c]);
    for (int k = 0; k < N; ++k) {
      const __m256 x = Codes8(codes + 2 * k);
      a0[k] = _mm256_fmadd_ps(w0, x, a0[k]);
      a1[k] = _mm256_fmadd_ps(w1, x, a1[k]);
    }
  }
  for (int k = 0; k < N; ++k) {
    _mm256_storeu_ps(lg0 + 8 * k, a0[k]);
    _mm256_storeu_ps(lg1 + 8 * k, a1[k]);
  }
}

template <int GB>
IZ_AVX2 void ValueBlockPair(const uint8_t* codes, const uint16_t* par, int d, int nt, const float* p0, const float* p1,
                            float* acc0, float* acc1, float* parf) {
  constexpr int N = GB / 2;
  const int groups = d / (4 * GB), tok_bytes = d / 4;
  Prefetch(codes + size_t(nt) * tok_bytes, size_t(nt) * tok_bytes);  // the next block of tokens
  Prefetch(par + size_t(nt) * 2 * groups, size_t(nt) * 4 * groups);
  HalvesToFloats(par, nt * 2 * groups, parf);
  for (int g = 0; g < groups; ++g) {
    float* g0 = acc0 + g * 4 * GB;
    float* g1 = acc1 + g * 4 * GB;
    __m256 a0[N], a1[N];
    for (int k = 0; k < N; ++k) {
      a0[k] = _mm256_loadu_ps(g0 + 8 * k);
      a1[k] = _mm256_loadu_ps(g1 + 8 * k);
    }
    float m0 = 0.0f, m1 = 0.0f;
    for (int t = 0; t < nt; ++t) {
      const float u = p0[t], v = p1[t];
      if (u == 0.0f && v == 0.0f) continue;
      const float* pr = parf + size_t(t) * 2 * groups + 2 * g;
      const __m256 w0 = _mm256_set1_ps(u * pr[0]), w1 = _mm256_set1_ps(v * pr[0]);
      m0 += u * pr[1];
      m1 += v * pr[1];
      const uint8_t* b = codes + size_t(t) * tok_bytes + g * GB;
      for (int k = 0; k < N; ++k) {
        const __m256 x = Codes8(b + 2 * k);
        a0[k] = _mm256_fmadd_ps(w0, x, a0[k]);
        a1[k] = _mm256_fmadd_ps(w1, x, a1[k]);
      }
    }
    const __m256 s0 = _mm256_set1_ps(m0), s1 = _mm256_set1_ps(m1);
    for (int k = 0; k < N; ++k) {
      _mm256_storeu_ps(g0 + 8 * k, _mm256_add_ps(a0[k], s0));
      _mm256_storeu_ps(g1 + 8 * k, _mm256_add_ps(a1[k], s1));
    }
  }
}

// ---- AVX-512 (F/BW/DQ/VL) versions of the single-row key group and value block ----------
// Codes are expanded in registers instead of through the byte table: 16 two-bit codes (one
// 32-bit word) are broadcast, shifted right by 0, 2, .., 30 per lane, and a 16-entry
// permute table {0, 1, 2, 3, 0, 1, ..} turns the low 4 bits into the float code (the 2 bits
// above the code select the same value, so no mask is needed). Per 16 codes: one load, a
// shift, a permute and a multiply-add, against four table loads and two inserts on AVX2.

IZ_TARGET_AVX512 inline __m512 Codes16(const uint8_t* p, __m512i shifts, __m512 table) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return _mm512_permutexvar_ps(_mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(w)), shifts), table);
}
IZ_TARGET_AVX512 inline __m512i CodeShifts() {
  return _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
}
IZ_TARGET_AVX512 inline __m512 CodeTable() { return _mm512_setr_ps(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3); }

template <int KB>
IZ_TARGET_AVX512 void KeyGroup512(const uint8_t* block, uint32_t param_offset, int d, const float* q, float* qsm,
                                  float* lg) {
  constexpr int N = KB / 4;  // 16 tokens per register
  const size_t block_bytes = param_offset + size_t(4) * d;
  Prefetch(block + block_bytes, block_bytes);  // the next key group
  const float bias = PrepareKeyRow(reinterpret_cast<const uint16_t*>(block + param_offset), d, q, qsm);
  const __m512i sh = CodeShifts();
  const __m512 tab = CodeTable();
  // Even and odd channels in separate accumulators (two dependency chains per register).
  __m512 acc[N], odd[N];
  for (int k = 0; k < N; ++k) {
    acc[k] = _mm512_set1_ps(bias);
    odd[k] = _mm512_setzero_ps();
  }
  for (int c = 0; c < d; c += 2) {  // d is even here
    const uint8_t* codes = block + size_t(c) * KB;
    const __m512 w0 = _mm512_set1_ps(qsm[2 * c]), w1 = _mm512_set1_ps(qsm[2 * c + 2]);
    for (int k = 0; k < N; ++k) {
      acc[k] = _mm512_fmadd_ps(w0, Codes16(codes + 4 * k, sh, tab), acc[k]);
      odd[k] = _mm512_fmadd_ps(w1, Codes16(codes + KB + 4 * k, sh, tab), odd[k]);
    }
  }
  for (int k = 0; k < N; ++k) _mm512_storeu_ps(lg + 16 * k, _mm512_add_ps(acc[k], odd[k]));
}

template <int GB>
IZ_TARGET_AVX512 void ValueBlock512(const uint8_t* codes, const uint16_t* par, int d, int nt, const float* p,
                                    float* acc, float* parf) {
  constexpr int N = GB / 4;  // 16 channels per register
  const int groups = d / (4 * GB), tok_bytes = d / 4;
  Prefetch(codes + size_t(nt) * tok_bytes, size_t(nt) * tok_bytes);  // the next block of tokens
  Prefetch(par + size_t(nt) * 2 * groups, size_t(nt) * 4 * groups);
  HalvesToFloats(par, nt * 2 * groups, parf);
  const __m512i sh = CodeShifts();
  const __m512 tab = CodeTable();
  for (int g = 0; g < groups; ++g) {
    float* ag = acc + g * 4 * GB;
    // Even and odd tokens in separate accumulators (two dependency chains per register).
    __m512 a[N], b[N];
    for (int k = 0; k < N; ++k) {
      a[k] = _mm512_loadu_ps(ag + 16 * k);
      b[k] = _mm512_setzero_ps();
    }
    float ms0 = 0.0f, ms1 = 0.0f;
    const uint8_t* cg = codes + g * GB;
    const float* pg = parf + 2 * g;
    int t = 0;
    for (; t + 2 <= nt; t += 2) {
      const float p0 = p[t], p1 = p[t + 1];
      const float* pr = pg + size_t(t) * 2 * groups;
      ms0 += p0 * pr[1];
      ms1 += p1 * pr[2 * groups + 1];
      const __m512 w0 = _mm512_set1_ps(p0 * pr[0]), w1 = _mm512_set1_ps(p1 * pr[2 * groups]);
      const uint8_t* c0 = cg + size_t(t) * tok_bytes;
      for (int k = 0; k < N; ++k) {
        a[k] = _mm512_fmadd_ps(w0, Codes16(c0 + 4 * k, sh, tab), a[k]);
        b[k] = _mm512_fmadd_ps(w1, Codes16(c0 + tok_bytes + 4 * k, sh, tab), b[k]);
      }
    }
    if (t < nt) {
      const float* pr = pg + size_t(t) * 2 * groups;
      ms0 += p[t] * pr[1];
      const __m512 w = _mm512_set1_ps(p[t] * pr[0]);
      for (int k = 0; k < N; ++k) a[k] = _mm512_fmadd_ps(w, Codes16(cg + size_t(t) * tok_bytes + 4 * k, sh, tab), a[k]);
    }
    const __m512 m16 = _mm512_set1_ps(ms0 + ms1);
    for (int k = 0; k < N; ++k) _mm512_storeu_ps(ag + 16 * k, _mm512_add_ps(_mm512_add_ps(a[k], b[k]), m16));
  }
}

bool UseAvx512() { return CpuSimdLevel() == SimdLevel::kAvx512; }

// Two query rows (GQA heads sharing a KV head) per pass: each expanded code register serves both.
template <int KB>
IZ_TARGET_AVX512 void KeyGroupPair512(const uint8_t* block, uint32_t param_offset, int d, const float* q0,
                                      const float* q1, float* scratch, float* lg0, float* lg1) {
  constexpr int N = KB / 4;
  const uint16_t* par = reinterpret_cast<const uint16_t*>(block + param_offset);
  const size_t block_bytes = param_offset + size_t(4) * d;
  Prefetch(block + block_bytes, block_bytes);  // the next key group
  float* qsm0 = scratch;
  float* qsm1 = scratch + 2 * d;
  const float b0 = PrepareKeyRow(par, d, q0, qsm0), b1 = PrepareKeyRow(par, d, q1, qsm1);
  const __m512i sh = CodeShifts();
  const __m512 tab = CodeTable();
  __m512 a0[N], a1[N];
  for (int k = 0; k < N; ++k) {
    a0[k] = _mm512_set1_ps(b0);
    a1[k] = _mm512_set1_ps(b1);
  }
  for (int c = 0; c < d; ++c) {
    const uint8_t* codes = block + size_t(c) * KB;
    const __m512 w0 = _mm512_set1_ps(qsm0[2 * c]), w1 = _mm512_set1_ps(qsm1[2 * c]);
    for (int k = 0; k < N; ++k) {
      const __m512 x = Codes16(codes + 4 * k, sh, tab);
      a0[k] = _mm512_fmadd_ps(w0, x, a0[k]);
      a1[k] = _mm512_fmadd_ps(w1, x, a1[k]);
    }
  }
  for (int k = 0; k < N; ++k) {
    _mm512_storeu_ps(lg0 + 16 * k, a0[k]);
    _mm512_storeu_ps(lg1 + 16 * k, a1[k]);
  }
}

template <int GB>
IZ_TARGET_AVX512 void ValueBlockPair512(const uint8_t* codes, const uint16_t* par, int d, int nt, const float* p0,
                                        const float* p1, float* acc0, float* acc1, float* parf) {
  constexpr int N = GB / 4;
  const int groups = d / (4 * GB), tok_bytes = d / 4;
  Prefetch(codes + size_t(nt) * tok_bytes, size_t(nt) * tok_bytes);  // the next block of tokens
  Prefetch(par + size_t(nt) * 2 * groups, size_t(nt) * 4 * groups);
  HalvesToFloats(par, nt * 2 * groups, parf);
  const __m512i sh = CodeShifts();
  const __m512 tab = CodeTable();
  for (int g = 0; g < groups; ++g) {
    float* g0 = acc0 + g * 4 * GB;
    float* g1 = acc1 + g * 4 * GB;
    __m512 a0[N], a1[N];
    for (int k = 0; k < N; ++k) {
      a0[k] = _mm512_loadu_ps(g0 + 16 * k);
      a1[k] = _mm512_loadu_ps(g1 + 16 * k);
    }
    float m0 = 0.0f, m1 = 0.0f;
    for (int t = 0; t < nt; ++t) {
      const float u = p0[t], v = p1[t];
      if (u == 0.0f && v == 0.0f) continue;
      const float* pr = parf + size_t(t) * 2 * groups + 2 * g;
      const __m512 w0 = _mm512_set1_ps(u * pr[0]), w1 = _mm512_set1_ps(v * pr[0]);
      m0 += u * pr[1];
      m1 += v * pr[1];
      const uint8_t* b = codes + size_t(t) * tok_bytes + g * GB;
      for (int k = 0; k < N; ++k) {
        const __m512 x = Codes16(b + 4 * k, sh, tab);
        a0[k] = _mm512_fmadd_ps(w0, x, a0[k]);
        a1[k] = _mm512_fmadd_ps(w1, x, a1[k]);
      }
    }
    const __m512 s0 = _mm512_set1_ps(m0), s1 = _mm512_set1_ps(m1);
    for (int k = 0; k < N; ++k) {
      _mm512_storeu_ps(g0 + 16 * k, _mm512_add_ps(a0[k], s0));
      _mm512_storeu_ps(g1 + 16 * k, _mm512_add_ps(a1[k], s1));
    }
  }
}

}  // namespace

IZ_AVX2 float DotAvx2(const float* a, const float* b, int d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int c = 0;
  for (; c + 16 <= d; c += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), _mm256_loadu_ps(b + c), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c + 8), _mm256_loadu_ps(b + c + 8), s1);
  }
  for (; c + 8 <= d; c += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + c), _mm256_loadu_ps(b + c), s0);
  __m256 s = _mm256_add_ps(s0, s1);
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
  float r = _mm_cvtss_f32(h);
  for (; c < d; ++c) r += a[c] * b[c];
  return r;
}

IZ_AVX2 void AxpyAvx2(float alpha, const float* x, float* y, int d) {
  const __m256 a = _mm256_set1_ps(alpha);
  int c = 0;
  for (; c + 8 <= d; c += 8)
    _mm256_storeu_ps(y + c, _mm256_fmadd_ps(a, _mm256_loadu_ps(x + c), _mm256_loadu_ps(y + c)));
  for (; c < d; ++c) y[c] += alpha * x[c];
}

// exp(x) for x <= 0: x = n*ln2 + r with |r| <= ln2/2 (ln2 split in two so r is exact to
// float precision), exp(r) by a degree-6 polynomial (relative error ~2 ulp, like glibc's
// expf to within a couple of ulp), 2^n put in the exponent field. x < -87 (incl. -inf,
// the causal mask) gives exactly 0.
IZ_AVX2 inline __m256 ExpNonPositive(__m256 x) {
  const __m256 dead = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(dead, _mm256_mul_ps(y, _mm256_castsi256_ps(e)));
}

IZ_AVX2 float MaxAvx2(const float* x, int n) {
  __m256 m = _mm256_set1_ps(-INFINITY);
  int j = 0;
  for (; j + 8 <= n; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + j));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
  float r = _mm_cvtss_f32(h);
  for (; j < n; ++j) r = x[j] > r ? x[j] : r;
  return r;
}

IZ_AVX2 float ExpSumAvx2(const float* x, int n, float shift, float* out) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256 sum = _mm256_setzero_ps();
  int j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = ExpNonPositive(_mm256_sub_ps(_mm256_loadu_ps(x + j), s));
    _mm256_storeu_ps(out + j, e);
    sum = _mm256_add_ps(sum, e);
  }
  if (j < n) {  // tail through a padded register so every element takes the same path
    alignas(32) float t[8];
    for (int k = 0; k < 8; ++k) t[k] = j + k < n ? x[j + k] : -INFINITY;
    const __m256 e = ExpNonPositive(_mm256_sub_ps(_mm256_load_ps(t), s));
    _mm256_store_ps(t, e);
    for (int k = 0; j + k < n; ++k) out[j + k] = t[k];
    sum = _mm256_add_ps(sum, e);
  }
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
  return _mm_cvtss_f32(h);
}

bool HasAvx2() { return iz::HasAvx2Fma(); }

bool KeyGroup2Avx2(const uint8_t* block, uint32_t param_offset, int d, int bytes_per_chan, const float* q,
                   float* scratch, float* lg) {
  static const bool avx512 = UseAvx512();
  if (avx512 && d % 2 == 0) {
    switch (bytes_per_chan) {
      case 4:
        KeyGroup512<4>(block, param_offset, d, q, scratch, lg);
        return true;
      case 8:
        KeyGroup512<8>(block, param_offset, d, q, scratch, lg);
        return true;
      case 16:
        KeyGroup512<16>(block, param_offset, d, q, scratch, lg);
        return true;
      default:
        break;
    }
  }
  switch (bytes_per_chan) {
    case 4:
      KeyGroup<4>(block, param_offset, d, q, scratch, lg);
      return true;
    case 8:
      KeyGroup<8>(block, param_offset, d, q, scratch, lg);
      return true;
    case 16:
      KeyGroup<16>(block, param_offset, d, q, scratch, lg);
      return true;
    default:
      return false;
  }
}

bool KeyGroupPairAvx2(const uint8_t* block, uint32_t param_offset, int d, int bytes_per_chan, const float* q0,
                      const float* q1, float* scratch, float* lg0, float* lg1) {
  static const bool avx512 = UseAvx512();
  if (avx512) {
    switch (bytes_per_chan) {
      case 4:
        KeyGroupPair512<4>(block, param_offset, d, q0, q1, scratch, lg0, lg1);
        return true;
      case 8:
        KeyGroupPair512<8>(block, param_offset, d, q0, q1, scratch, lg0, lg1);
        return true;
      case 16:
        KeyGroupPair512<16>(block, param_offset, d, q0, q1, scratch, lg0, lg1);
        return true;
      default:
        break;
    }
  }
  switch (bytes_per_chan) {
    case 4:
      KeyGroupPair<4>(block, param_offset, d, q0, q1, scratch, lg0, lg1);
      return true;
    case 8:
      KeyGroupPair<8>(block, param_offset, d, q0, q1, scratch, lg0, lg1);
      return true;
    default:
      return false;
  }
}

bool ValueBlockPairAvx2(const uint8_t* codes, const uint16_t* par, int d, int Cg, int nt, const float* p0,
                        const float* p1, float* acc0, float* acc1, float* scratch) {
  static const bool avx512 = UseAvx512();
  if (avx512) {
    switch (Cg) {
      case 16:
        ValueBlockPair512<4>(codes, par, d, nt, p0, p1, acc0, acc1, scratch);
        return true;
      case 32:
        ValueBlockPair512<8>(codes, par, d, nt, p0, p1, acc0, acc1, scratch);
        return true;
      case 64:
        ValueBlockPair512<16>(codes, par, d, nt, p0, p1, acc0, acc1, scratch);
        return true;
      default:
        break;
    }
  }
  switch (Cg) {
    case 16:
      ValueBlockPair<4>(codes, par, d, nt, p0, p1, acc0, acc1, scratch);
      return true;
    case 32:
      ValueBlockPair<8>(codes, par, d, nt, p0, p1, acc0, acc1, scratch);
      return true;
    default:
      return false;
  }
}

bool ValueBlock2Avx2(const uint8_t* codes, const uint16_t* par, int d, int Cg, int nt, const float* p, float* acc,
                     float* scratch) {
  static const bool avx512 = UseAvx512();
  if (avx512) {
    switch (Cg) {
      case 16:
        ValueBlock512<4>(codes, par, d, nt, p, acc, scratch);
        return true;
      case 32:
        ValueBlock512<8>(codes, par, d, nt, p, acc, scratch);
        return true;
      case 64:
        ValueBlock512<16>(codes, par, d, nt, p, acc, scratch);
        return true;
      default:
        break;
    }
  }
  switch (Cg) {
    case 8:
      ValueBlock<2>(codes, par, d, nt, p, acc, scratch);
      return true;
    case 16:
      ValueBlock<4>(codes, par, d, nt, p, acc, scratch);
      return true;
    case 32:
      ValueBlock<8>(codes, par, d, nt, p, acc, scratch);
      return true;
    case 64:
      ValueBlock<16>(codes, par, d, nt, p, acc, scratch);
      return true;
    default:
      return false;
  }
}

}  // namespace iz::kv::cpu

#else

namespace iz::kv::cpu {
bool HasAvx2() { return false; }  // no AVX2 build: INFERZIP_SIMD does not matter
bool KeyGroupPairAvx2(const uint8_t*, uint32_t, int, int, const float*, const float*, float*, float*, float*) {
  return false;
}
bool ValueBlockPairAvx2(const uint8_t*, const uint16_t*, int, int, int, const float*, const float*, float*, float*,
                        float*) {
  return false;
}
float DotAvx2(const float*, const float*, int) { return 0.0f; }
float MaxAvx2(const float*, int) { return 0.0f; }
float ExpSumAvx2(const float*, int, float, float*) { return 0.0f; }
void AxpyAvx2(float, const float*, float*, int) {}
bool KeyGroup2Avx2(const uint8_t*, uint32_t, int, int, const float*, float*, float*) { return false; }
bool ValueBlock2Avx2(const uint8_t*, const uint16_t*, int, int, int, const float*, float*, float*) { return false; }
}  // namespace iz::kv::cpu

#endif
