// f32 <-> f16 / bf16 bit conversions (round to nearest, ties to even; NaN stays NaN,
// signs and subnormals kept), shared by every kernel family and the CPU backend.
#pragma once

#include <cstdint>

#include "native/shared/hd.h"

namespace iz {

// Reinterprets the bits of a value as another type of the same size (a union: device code
// has no std::bit_cast or memcpy-based idiom that every compiler here accepts).
template <class To, class From>
IZ_HD_INLINE To BitCast(From x) {
  static_assert(sizeof(To) == sizeof(From), "BitCast needs types of one size");
  union {
    From from;
    To to;
  } v{x};
  return v.to;
}

IZ_HD_INLINE uint32_t FloatBits(float f) { return BitCast<uint32_t>(f); }
IZ_HD_INLINE float BitsFloat(uint32_t u) { return BitCast<float>(u); }

IZ_HD_INLINE float Bf16ToF32(uint16_t bits) { return BitsFloat(static_cast<uint32_t>(bits) << 16); }

IZ_HD_INLINE uint16_t F32ToBf16(float x) {
  uint32_t u = FloatBits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN, sign kept
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

IZ_HD_INLINE uint16_t F32ToF16(float x) {
  uint32_t b = FloatBits(x);
  uint32_t sign = (b >> 16) & 0x8000u;
  int exp = static_cast<int>((b >> 23) & 0xff);
  uint32_t mant = b & 0x7fffffu;
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0u));
  int e = exp - 127 + 15;
  if (e >= 0x1f) return static_cast<uint16_t>(sign | 0x7c00u);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000u;
    int shift = 14 - e;
    uint32_t half = 1u << (shift - 1);
    uint32_t rest = mant & ((1u << shift) - 1);
    uint32_t out = mant >> shift;
    if (rest > half || (rest == half && (out & 1u))) out += 1;
    return static_cast<uint16_t>(sign | out);
  }
  uint32_t out = (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (out & 1u))) out += 1;  // a carry into the exponent is correct
  return static_cast<uint16_t>(sign | out);
}

IZ_HD_INLINE float F16ToF32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    if (mant == 0) return BitsFloat(sign);
    float v = static_cast<float>(mant) * 5.9604644775390625e-8f;  // subnormal: mant * 2^-24, exact
    return sign ? -v : v;
  }
  if (exp == 0x1f) return BitsFloat(sign | 0x7f800000u | (mant << 13));
  return BitsFloat(sign | ((exp + 112u) << 23) | (mant << 13));
}

}  // namespace iz
