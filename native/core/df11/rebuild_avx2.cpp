// AVX2 and AVX-512 RebuildRun, chosen at run time. Per byte: the low byte of a BF16 word is the
// exponent's bit 0 over the 7 mantissa bits, the high byte the sign over the exponent's
// top 7 bits; two blends make them, an in-lane unpack interleaves them.
#include "native/core/df11/rebuild.h"

#include "native/core/simd.h"

#if IZ_X86_SIMD
#include <immintrin.h>

#include <cstdint>

#include "native/shared/df11/format.h"

namespace iz {
namespace df11 {

namespace {

#define IZ_DF11_AVX2 IZ_TARGET_AVX2

IZ_DF11_AVX2 inline void Store(__m128i* p, __m128i v, bool stream) {
  if (stream) {
    _mm_stream_si128(p, v);
  } else {
    _mm_storeu_si128(p, v);
  }
}

IZ_DF11_AVX2 void Run(const uint8_t* exps, const uint8_t* sm, uint16_t* out, size_t n, bool stream) {
  const __m256i top = _mm256_set1_epi8(static_cast<char>(0x80));
  size_t i = 0;
  if (stream) {  // non-temporal stores need 16-byte alignment
    for (; i < n && (reinterpret_cast<uintptr_t>(out + i) & 15) != 0; ++i) out[i] = RebuildBf16(exps[i], sm[i]);
  }
  for (; i + 32 <= n; i += 32) {
    const __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(exps + i));
    const __m256i s = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(sm + i));
    // Bit selects, x ^ ((x ^ y) & top) = top bit from y, the rest from x. The 16-bit
    // shifts move bits across bytes only where the select drops them.
    const __m256i e7 = _mm256_slli_epi16(e, 7), e1 = _mm256_srli_epi16(e, 1);
    const __m256i lo = _mm256_xor_si256(s, _mm256_and_si256(_mm256_xor_si256(s, e7), top));
    const __m256i hi = _mm256_xor_si256(e1, _mm256_and_si256(_mm256_xor_si256(e1, s), top));
    const __m256i w0 = _mm256_unpacklo_epi8(lo, hi);  // words 0..7 | 16..23
    const __m256i w1 = _mm256_unpackhi_epi8(lo, hi);  // words 8..15 | 24..31
    __m128i* o = reinterpret_cast<__m128i*>(out + i);
    Store(o, _mm256_castsi256_si128(w0), stream);
    Store(o + 1, _mm256_castsi256_si128(w1), stream);
    Store(o + 2, _mm256_extracti128_si256(w0, 1), stream);
    Store(o + 3, _mm256_extracti128_si256(w1, 1), stream);
  }
  for (; i < n; ++i) out[i] = RebuildBf16(exps[i], sm[i]);
  if (stream) _mm_sfence();  // order the weakly-ordered stores before the caller's sync
}

// AVX-512BW: each byte widened to a 16-bit lane, the sign+mantissa byte copied into both
// halves, one bit select (vpternlog) takes the sign and mantissa bits from it and the
// exponent bits from exponent << 7. Half the instructions of the AVX2 loop per word.
IZ_TARGET_AVX512 void Run512(const uint8_t* exps, const uint8_t* sm, uint16_t* out, size_t n, bool stream) {
  const __m512i from_sm = _mm512_set1_epi16(static_cast<short>(0x807F));
  size_t i = 0;
  if (stream) {  // non-temporal stores need 64-byte alignment
    for (; i < n && (reinterpret_cast<uintptr_t>(out + i) & 63) != 0; ++i) out[i] = RebuildBf16(exps[i], sm[i]);
  }
  for (; i + 32 <= n; i += 32) {
    const __m512i e = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(exps + i)));
    const __m512i s = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sm + i)));
    const __m512i both = _mm512_or_si512(s, _mm512_slli_epi16(s, 8));
    const __m512i w = _mm512_ternarylogic_epi32(from_sm, both, _mm512_slli_epi16(e, 7), 0xCA);  // a ? b : c
    if (stream) {
      _mm512_stream_si512(reinterpret_cast<__m512i*>(out + i), w);
    } else {
      _mm512_storeu_si512(out + i, w);
    }
  }
  for (; i < n; ++i) out[i] = RebuildBf16(exps[i], sm[i]);
  if (stream) _mm_sfence();
}

}  // namespace

bool RebuildRunAvx512(const uint8_t* exps, const uint8_t* sm, uint16_t* out, size_t n, bool stream) {
  static const bool ok = CpuSimdLevel() == SimdLevel::kAvx512;
  if (!ok) return false;
  Run512(exps, sm, out, n, stream);
  return true;
}

bool RebuildRunAvx2(const uint8_t* exps, const uint8_t* sm, uint16_t* out, size_t n, bool stream) {
  static const bool ok = HasAvx2Fma();  // the one SIMD switch (simd.h): INFERZIP_SIMD applies
  if (!ok) return false;
  Run(exps, sm, out, n, stream);
  return true;
}

}  // namespace df11
}  // namespace iz

#else

namespace iz {
namespace df11 {
bool RebuildRunAvx512(const uint8_t*, const uint8_t*, uint16_t*, size_t, bool) { return false; }
bool RebuildRunAvx2(const uint8_t*, const uint8_t*, uint16_t*, size_t, bool) { return false; }
}  // namespace df11
}  // namespace iz

#endif
