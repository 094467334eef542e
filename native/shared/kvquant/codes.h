// Scalar building blocks of KV-cache quantization, shared by the CUDA kernels and the
// C++ CPU backend (so CPU tests exercise the exact arithmetic the GPU runs):
// f16 storage of scales, little-endian b-bit bitstreams in 32-bit words,
// round-half-to-even uniform quantization, ternary and 1-bit sign codes, FP8 E4M3/E5M2.
#pragma once

#include <math.h>

#include "native/shared/float16.h"
#include "native/shared/hd.h"

namespace iz::kv {

// ---------------------------------------------------------------------------
// f16 bits <-> f32 (round to nearest even; scales are stored as f16)

using iz::BitsFloat;
using iz::F16ToF32;
using iz::F32ToF16;
using iz::FloatBits;

// Rounds through f16 (what a stored scale really is).
IZ_HD_INLINE float RoundF16(float x) { return F16ToF32(F32ToF16(x)); }

// ---------------------------------------------------------------------------
// Bitstreams: b-bit codes (b divides 32) little-endian inside 32-bit words; the code at
// bit position p lives in word p/32 at shift p%32 and never straddles two words.

IZ_HD_INLINE uint32_t ReadCode(const uint32_t* words, uint64_t bitpos, int bits) {
  return (words[bitpos >> 5] >> (bitpos & 31u)) & ((1u << bits) - 1u);
}
// ORs a code in (the destination must start zeroed).
IZ_HD_INLINE void OrCode(uint32_t* words, uint64_t bitpos, int bits, uint32_t code) {
  words[bitpos >> 5] |= (code & ((1u << bits) - 1u)) << (bitpos & 31u);
}
// 16-bit field (an f16 scale) at a position that is a multiple of 16.
IZ_HD_INLINE uint16_t ReadHalfField(const uint32_t* words, uint64_t bitpos) {
  return static_cast<uint16_t>(words[bitpos >> 5] >> (bitpos & 31u));
}
IZ_HD_INLINE void OrHalfField(uint32_t* words, uint64_t bitpos, uint16_t v) {
  words[bitpos >> 5] |= static_cast<uint32_t>(v) << (bitpos & 31u);
}

// ---------------------------------------------------------------------------
// Uniform asymmetric quantization: scale = (max-min)/(2^b-1), code = rne(clamp((x-min)/scale)).

// Round half to even for non-negative finite values below 2^22 (always true for codes).
// Branch-free: adding 2^23 leaves no fraction bits, so the FPU's default rounding (to
// nearest, ties to even) does the work; rintf is the same rounding on the GPU.
IZ_HD_INLINE float RoundHalfEven(float x) {
#if defined(__CUDA_ARCH__)
  return rintf(x);
#else
  const float big = 8388608.0f;  // 2^23
  return (x + big) - big;
#endif
}

struct Affine {
  float scale;  // as stored (f16-rounded)
  float min;    // as stored (f16-rounded)
};

// Group parameters from min and max. Scale and min are rounded to f16 first, and codes are
// computed against the stored values so reconstruction matches what dequantize sees.
IZ_HD_INLINE Affine AffineFromRange(float lo, float hi, int bits) {
  Affine a;
  a.min = RoundF16(lo);
  float levels = static_cast<float>((1 << bits) - 1);
  a.scale = RoundF16((hi - a.min) / levels);
  if (!(a.scale > 0.0f)) a.scale = 0.0f;  // constant group (or hi rounds below min): all codes 0
  return a;
}

IZ_HD_INLINE uint32_t QuantizeUniform(float x, Affine a, int bits) {
  if (a.scale == 0.0f) return 0u;
  float levels = static_cast<float>((1 << bits) - 1);
  float t = (x - a.min) / a.scale;
  t = fminf(fmaxf(t, 0.0f), levels);
  return static_cast<uint32_t>(RoundHalfEven(t));
}

IZ_HD_INLINE float DequantizeUniform(uint32_t code, Affine a) { return static_cast<float>(code) * a.scale + a.min; }

// ---------------------------------------------------------------------------
// Ternary (1.58-bit) and 1-bit sign codes.
// Ternary: s = mean|x|, t = s/2; q = +1 if x > t, -1 if x < -t, else 0; x' = q*s.
// Stored as digits 0,1,2 (= q+1), five digits per byte in base 3 (3^5 = 243 <= 256).

IZ_HD_INLINE uint32_t TernaryDigit(float x, float s) {
  float t = 0.5f * s;
  return x > t ? 2u : (x < -t ? 0u : 1u);
}
IZ_HD_INLINE float TernaryValue(uint32_t digit, float s) { return (static_cast<float>(digit) - 1.0f) * s; }

IZ_HD_INLINE uint32_t Pow3(uint32_t k) {
  uint32_t p = 1;
  for (uint32_t i = 0; i < k; ++i) p *= 3u;
  return p;
}
// Digit i of a base-3 stream (five digits per byte, least significant first).
IZ_HD_INLINE uint32_t ReadTrit(const uint8_t* bytes, uint64_t i) {
  uint32_t byte = bytes[i / 5];
  return (byte / Pow3(static_cast<uint32_t>(i % 5))) % 3u;
}
// Adds digit i into a zeroed stream.
IZ_HD_INLINE void AddTrit(uint8_t* bytes, uint64_t i, uint32_t digit) {
  bytes[i / 5] = static_cast<uint8_t>(bytes[i / 5] + digit * Pow3(static_cast<uint32_t>(i % 5)));
}

// 1-bit: code = (y >= 0), y' = +scale or -scale with scale = mean|y|.
IZ_HD_INLINE uint32_t SignCode(float y) { return y >= 0.0f ? 1u : 0u; }
IZ_HD_INLINE float SignValue(uint32_t code, float scale) { return code ? scale : -scale; }

// ---------------------------------------------------------------------------
// FP8: E4M3 (bias 7, no infinities, max 448) and E5M2 (bias 15, max 57344).
// Encoding rounds to nearest even and saturates to +-max_finite.

enum Fp8Format : int { kE4M3 = 0, kE5M2 = 1 };

IZ_HD_INLINE float Fp8MaxFinite(int format) { return format == kE4M3 ? 448.0f : 57344.0f; }

IZ_HD_INLINE float Fp8Decode(uint32_t byte, int format) {
  int mbits = format == kE4M3 ? 3 : 2;
  int bias = format == kE4M3 ? 7 : 15;
  uint32_t sign = byte & 0x80u;
  uint32_t exp = (byte >> mbits) & ((1u << (7 - mbits)) - 1u);
  uint32_t mant = byte & ((1u << mbits) - 1u);
  float v;
  if (exp == 0) {
    v = static_cast<float>(mant) * BitsFloat(static_cast<uint32_t>(127 + 1 - bias - mbits) << 23);
  } else {
    if (format == kE5M2 && exp == 31u)
      v = mant ? BitsFloat(0x7fc00000u) : BitsFloat(0x7f800000u);
    else if (format == kE4M3 && exp == 15u && mant == 7u)
      v = BitsFloat(0x7fc00000u);
    else
      v = BitsFloat(((exp - bias + 127u) << 23) | (mant << (23 - mbits)));
  }
  return sign ? -v : v;
}

IZ_HD_INLINE uint32_t Fp8Encode(float x, int format) {
  int mbits = format == kE4M3 ? 3 : 2;
  int bias = format == kE4M3 ? 7 : 15;
  uint32_t b = FloatBits(x);
  uint32_t sign = (b >> 24) & 0x80u;
  float a = x < 0.0f ? -x : x;
  if (a != a) return sign | (format == kE4M3 ? 0x7fu : 0x7fu);  // NaN (never reached: inputs are validated)
  float maxf = Fp8MaxFinite(format);
  if (a >= maxf) return sign | (format == kE4M3 ? 0x7eu : 0x7bu);  // saturate (covers Inf)
  uint32_t ab = FloatBits(a);
  int e = static_cast<int>(ab >> 23) - 127;  // unbiased exponent
  int emin = 1 - bias;
  // Quantum at this magnitude: 2^(max(e, emin) - mbits). Round a / quantum to an integer (RNE).
  int qexp = (e < emin ? emin : e) - mbits;
  float quantum = BitsFloat(static_cast<uint32_t>(qexp + 127) << 23);
  float n = RoundHalfEven(a / quantum);  // exact division by a power of two
  float r = n * quantum;
  if (r >= maxf) return sign | (format == kE4M3 ? 0x7eu : 0x7bu);
  if (r == 0.0f) return sign;
  uint32_t rb = FloatBits(r);
  int re = static_cast<int>(rb >> 23) - 127;
  if (re < emin) {  // subnormal: mantissa = r / 2^(emin - mbits)
    return sign | static_cast<uint32_t>(n);
  }
  uint32_t mant = (rb >> (23 - mbits)) & ((1u << mbits) - 1u);
  return sign | (static_cast<uint32_t>(re + bias) << mbits) | mant;
}

}  // namespace iz::kv
