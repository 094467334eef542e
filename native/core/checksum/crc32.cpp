#include "native/core/checksum/crc32.h"

#include <array>
#include <cstring>
#include <string>

#include "native/core/simd.h"
#include "native/shared/error.h"

#if IZ_X86_SIMD
#include <cpuid.h>
#include <immintrin.h>
#endif

// The folding paths read 16-byte lanes as little-endian integers.
#if IZ_X86_SIMD && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define IZ_CRC_CLMUL 1
#else
#define IZ_CRC_CLMUL 0
#endif

namespace iz {

namespace {

// ---------------------------------------------------------------- portable: slicing-by-8
// Table t[k][b]: the CRC of byte b followed by k zero bytes (reflected polynomial).
using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables MakeTables() {
  Tables t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    t[0][b] = c;
  }
  for (int k = 1; k < 8; ++k)
    for (uint32_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
  return t;
}

constexpr Tables kTables = MakeTables();

// `state` is the running register (the complement of the public value).
uint32_t Update(uint32_t state, const uint8_t* p, size_t n) {
  const auto& t = kTables;
  for (; n >= 8; p += 8, n -= 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= state;  // little-endian: the register lines up with the first four bytes
    state = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^ t[3][hi & 0xFF] ^
            t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
  }
  for (; n > 0; ++p, --n) state = (state >> 8) ^ t[0][(state ^ *p) & 0xFF];
  return state;
}

#if IZ_CRC_CLMUL
// ---------------------------------------------------------------- carry-less folding
// The method of Gopal et al., "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ"
// (Intel, 2009), for the reflected polynomial. A 128-bit lane folds forward by D bits with
// the pair (x^(D+32) mod P, x^(D-32) mod P), each bit-reflected and shifted left by one;
// the final 128 -> 32 bit step is a Barrett reduction with mu = x^64 / P. The constants
// below were computed from P = 0x104C11DB7 with exactly those formulas.
#define IZ_TARGET_CLMUL __attribute__((target("sse4.1,pclmul")))
#define IZ_TARGET_VCLMUL __attribute__((target("sse4.1,pclmul,avx2,avx512f,avx512bw,avx512dq,avx512vl,vpclmulqdq")))

constexpr uint64_t kFold2048[2] = {0x11542778aull, 0x1322d1430ull};  // 4 zmm accumulators: 256 bytes
constexpr uint64_t kFold512[2] = {0x154442bd4ull, 0x1c6e41596ull};   // 4 xmm accumulators / one zmm: 64 bytes
constexpr uint64_t kFold128[2] = {0x1751997d0ull, 0x0ccaa009eull};   // one xmm: 16 bytes
constexpr uint64_t kFold64 = 0x163cd6124ull;
constexpr uint64_t kBarrett[2] = {0x1db710641ull, 0x1f7011641ull};  // P', mu

IZ_TARGET_CLMUL inline __m128i Fold(__m128i x, __m128i k, __m128i next) {
  return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next);
}

IZ_TARGET_CLMUL inline __m128i Load(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

IZ_TARGET_CLMUL inline __m128i Constant(const uint64_t (&k)[2]) {
  return _mm_set_epi64x(static_cast<long long>(k[1]), static_cast<long long>(k[0]));
}

// 16-byte folds over what is left, then 128 -> 32 bits. x holds everything before p.
IZ_TARGET_CLMUL uint32_t FinishClmul(__m128i x, const uint8_t* p, size_t n16) {
  const __m128i k128 = Constant(kFold128);
  for (; n16 > 0; --n16, p += 16) x = Fold(x, k128, Load(p));
  // 128 -> 64 bits
  const __m128i mask32 = _mm_setr_epi32(-1, 0, -1, 0);
  x = _mm_xor_si128(_mm_srli_si128(x, 8), _mm_clmulepi64_si128(x, k128, 0x10));
  const __m128i hi = _mm_srli_si128(x, 4);
  x = _mm_xor_si128(
      _mm_clmulepi64_si128(_mm_and_si128(x, mask32), _mm_cvtsi64_si128(static_cast<long long>(kFold64)), 0x00), hi);
  // Barrett: 64 -> 32 bits
  const __m128i pm = Constant(kBarrett);
  __m128i t = _mm_clmulepi64_si128(_mm_and_si128(x, mask32), pm, 0x10);
  t = _mm_clmulepi64_si128(_mm_and_si128(t, mask32), pm, 0x00);
  return static_cast<uint32_t>(_mm_extract_epi32(_mm_xor_si128(x, t), 1));
}

// n >= 64: folds whole 16-byte blocks; returns the register and leaves n % 16 bytes.
IZ_TARGET_CLMUL uint32_t FoldClmul(uint32_t state, const uint8_t* p, size_t n) {
  __m128i x0 = _mm_xor_si128(Load(p), _mm_cvtsi32_si128(static_cast<int>(state)));
  __m128i x1 = Load(p + 16), x2 = Load(p + 32), x3 = Load(p + 48);
  p += 64, n -= 64;
  const __m128i k512 = Constant(kFold512);
  for (; n >= 64; p += 64, n -= 64) {
    x0 = Fold(x0, k512, Load(p));
    x1 = Fold(x1, k512, Load(p + 16));
    x2 = Fold(x2, k512, Load(p + 32));
    x3 = Fold(x3, k512, Load(p + 48));
  }
  const __m128i k128 = Constant(kFold128);
  x1 = Fold(x0, k128, x1);
  x2 = Fold(x1, k128, x2);
  x3 = Fold(x2, k128, x3);
  return FinishClmul(x3, p, n / 16);
}

IZ_TARGET_VCLMUL inline __m512i Fold512(__m512i x, __m512i k, __m512i next) {
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11), next,
                                   0x96);  // a ^ b ^ c
}

IZ_TARGET_VCLMUL inline __m512i Load512(const uint8_t* p) { return _mm512_loadu_si512(p); }

IZ_TARGET_VCLMUL inline __m512i Broadcast(const uint64_t (&k)[2]) {
  const long long lo = static_cast<long long>(k[0]), hi = static_cast<long long>(k[1]);
  return _mm512_set_epi64(hi, lo, hi, lo, hi, lo, hi, lo);
}

// n >= 256: four zmm accumulators (16 lanes of 128 bits) fold 256 bytes a step.
IZ_TARGET_VCLMUL uint32_t FoldVclmul(uint32_t state, const uint8_t* p, size_t n) {
  __m512i z0 = _mm512_xor_si512(Load512(p), _mm512_castsi128_si512(_mm_cvtsi32_si128(static_cast<int>(state))));
  __m512i z1 = Load512(p + 64), z2 = Load512(p + 128), z3 = Load512(p + 192);
  p += 256, n -= 256;
  const __m512i k2048 = Broadcast(kFold2048);
  for (; n >= 256; p += 256, n -= 256) {
    z0 = Fold512(z0, k2048, Load512(p));
    z1 = Fold512(z1, k2048, Load512(p + 64));
    z2 = Fold512(z2, k2048, Load512(p + 128));
    z3 = Fold512(z3, k2048, Load512(p + 192));
  }
  const __m512i k512 = Broadcast(kFold512);
  z1 = Fold512(z0, k512, z1);
  z2 = Fold512(z1, k512, z2);
  z3 = Fold512(z2, k512, z3);
  for (; n >= 64; p += 64, n -= 64) z3 = Fold512(z3, k512, Load512(p));
  // The zmm's four lanes, earliest first, into one xmm.
  const __m128i k128 = Constant(kFold128);
  alignas(64) __m128i lane[4];
  _mm512_store_si512(lane, z3);
  const __m128i x = Fold(Fold(Fold(lane[0], k128, lane[1]), k128, lane[2]), k128, lane[3]);
  return FinishClmul(x, p, n / 16);
}

bool HasPclmul() { return HasAvx2Fma() && __builtin_cpu_supports("pclmul"); }

bool HasVpclmul() {
  if (CpuSimdLevel() != SimdLevel::kAvx512) return false;
  unsigned a = 0, b = 0, c = 0, d = 0;
  // CPUID.(EAX=7, ECX=0):ECX bit 10 = VPCLMULQDQ
  return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 10)) != 0;
}
#endif

Crc32Impl Pick() {
#if IZ_CRC_CLMUL
  if (HasVpclmul()) return Crc32Impl::kVpclmul;
  if (HasPclmul()) return Crc32Impl::kPclmul;
#endif
  return Crc32Impl::kPortable;
}

}  // namespace

Crc32Impl Crc32Best() {
  static const Crc32Impl best = Pick();
  return best;
}

const char* Crc32ImplName(Crc32Impl impl) {
  switch (impl) {
    case Crc32Impl::kVpclmul:
      return "vpclmulqdq";
    case Crc32Impl::kPclmul:
      return "pclmulqdq";
    default:
      return "portable";
  }
}

uint32_t Crc32Using(Crc32Impl impl, const uint8_t* data, size_t n, uint32_t crc) {
  IZ_CHECK(static_cast<int>(impl) <= static_cast<int>(Crc32Best()), InvalidArgument,
           std::string("crc32: ") + Crc32ImplName(impl) + " is not available on this CPU");
  uint32_t state = ~crc;
#if IZ_CRC_CLMUL
  // The folding loops take whole 16-byte blocks (at least 256 or 64 bytes); the table loop
  // finishes the rest.
  size_t done = 0;
  if (impl == Crc32Impl::kVpclmul && n >= 256) {
    done = n & ~size_t(15);
    state = FoldVclmul(state, data, done);
  } else if (impl != Crc32Impl::kPortable && n >= 64) {
    done = n & ~size_t(15);
    state = FoldClmul(state, data, done);
  }
  data += done, n -= done;
#endif
  return ~Update(state, data, n);
}

uint32_t Crc32(const uint8_t* data, size_t n, uint32_t crc) { return Crc32Using(Crc32Best(), data, n, crc); }

}  // namespace iz
