// CPU inner loops of KIVI attention from packed codes. The arithmetic is the shared
// DequantizeUniform (code * scale + min) regrouped so the loops over codes are table
// lookups and 4-wide multiply-adds:
//   q . k_t  = sum_c (q_c * scale_c) * code_ct + sum_c q_c * min_c   (per key group of G tokens)
//   p * v_t  = (p * scale_g) * code + p * min_g                      (per value channel group)
// 4-wide vectors use the GCC/Clang vector extension (SSE on x86-64, NEON on arm64).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "native/core/kvquant/kivi_avx2.h"
#include "native/shared/kvquant/codes.h"

namespace iz::kv::cpu {

#if defined(__GNUC__) || defined(__clang__)
typedef float F4 __attribute__((vector_size(16)));
#define IZ_KV_VECTOR 1
#else
struct F4 {
  float v[4];
};
#define IZ_KV_VECTOR 0
#endif

struct alignas(64) Luts {
  float two[256][4];   // byte -> its four 2-bit codes as floats
  float four[256][2];  // byte -> its two 4-bit codes as floats
  Luts() {
    for (int b = 0; b < 256; ++b) {
      for (int e = 0; e < 4; ++e) two[b][e] = static_cast<float>((b >> (2 * e)) & 3);
      for (int e = 0; e < 2; ++e) four[b][e] = static_cast<float>((b >> (4 * e)) & 15);
    }
  }
};
extern const Luts kLuts;

inline F4 Lut2(uint8_t byte) {
  F4 r;
  std::memcpy(&r, kLuts.two[byte], sizeof(F4));
  return r;
}
inline F4 Splat(float x) {
#if IZ_KV_VECTOR
  return F4{x, x, x, x};
#else
  return F4{{x, x, x, x}};
#endif
}
inline void MulAdd4(float* dst, F4 a, F4 b) {
#if IZ_KV_VECTOR
  F4 d;
  std::memcpy(&d, dst, sizeof(F4));
  d += a * b;
  std::memcpy(dst, &d, sizeof(F4));
#else
  for (int e = 0; e < 4; ++e) dst[e] += a.v[e] * b.v[e];
#endif
}

// Dense f32 helpers shared by attention, its dense baseline and the probe scoring: AVX2 when
// the CPU has it, else portable loops (four / eight partial sums so they vectorize without
// reassociation flags).
inline float Dot(const float* a, const float* b, int d) {
  if (HasAvx2()) return DotAvx2(a, b, d);
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int c = 0;
  for (; c + 4 <= d; c += 4) {
    s0 += a[c] * b[c];
    s1 += a[c + 1] * b[c + 1];
    s2 += a[c + 2] * b[c + 2];
    s3 += a[c + 3] * b[c + 3];
  }
  for (; c < d; ++c) s0 += a[c] * b[c];
  return (s0 + s1) + (s2 + s3);
}

inline void Axpy(float a, const float* x, float* y, int d) {
  if (HasAvx2()) return AxpyAvx2(a, x, y, d);
  for (int c = 0; c < d; ++c) y[c] += a * x[c];
}

inline float Max(const float* x, int n) {
  if (HasAvx2()) return MaxAvx2(x, n);
  float m = -INFINITY;
  for (int j = 0; j < n; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

// out[j] = exp(x[j] - shift) for x[j] <= shift (-inf gives 0); returns the sum. In place is fine.
inline float ExpShifted(const float* x, int n, float shift, float* out) {
  if (HasAvx2()) return ExpSumAvx2(x, n, shift, out);
  float sum = 0.0f;
  for (int j = 0; j < n; ++j) {
    const float e = x[j] == -INFINITY ? 0.0f : std::exp(x[j] - shift);
    out[j] = e;
    sum += e;
  }
  return sum;
}

inline F4 LoadF4(const float* p) {
  F4 r;
  std::memcpy(&r, p, sizeof(F4));
  return r;
}
inline void StoreF4(float* p, F4 v) { std::memcpy(p, &v, sizeof(F4)); }

// 2-bit key group, KB bytes (4*KB tokens) per channel: the group's logits stay in registers.
template <int KB>
inline void KeyGroup2(const uint8_t* block, int d, const float* qs, float bias, float* lg) {
  F4 acc[KB];
  for (int k = 0; k < KB; ++k) acc[k] = Splat(bias);
  for (int c = 0; c < d; ++c) {
    const uint8_t* codes = block + size_t(c) * KB;
    const F4 w = Splat(qs[c]);
    for (int k = 0; k < KB; ++k) acc[k] += w * Lut2(codes[k]);
  }
  for (int k = 0; k < KB; ++k) StoreF4(lg + 4 * k, acc[k]);
}

// 2-bit values of nt consecutive tokens: acc[c] += sum_t p_t * (scale_tg * code_tc + min_tg).
// One channel group (GB bytes = 4*GB channels) at a time so its accumulators stay in registers.
template <int GB>
inline void ValueBlock2(const uint8_t* codes, const uint16_t* par, int d, int nt, const float* p, float* acc) {
  const int groups = d / (4 * GB), tok_bytes = d / 4;
  for (int g = 0; g < groups; ++g) {
    F4 a[GB];
    for (int k = 0; k < GB; ++k) a[k] = LoadF4(acc + g * 4 * GB + 4 * k);
    float ms = 0.0f;
    for (int t = 0; t < nt; ++t) {
      const float pt = p[t];
      if (pt == 0.0f) continue;
      const uint16_t* pr = par + size_t(t) * 2 * groups + 2 * g;
      const F4 w = Splat(pt * F16ToF32(pr[0]));
      ms += pt * F16ToF32(pr[1]);
      const uint8_t* b = codes + size_t(t) * tok_bytes + g * GB;
      for (int k = 0; k < GB; ++k) a[k] += w * Lut2(b[k]);
    }
    const F4 m4 = Splat(ms);
    for (int k = 0; k < GB; ++k) StoreF4(acc + g * 4 * GB + 4 * k, a[k] + m4);
  }
}

// Returns false when no specialization fits (the caller falls back to per-token decoding).
// scratch: at least 2 * nt * d / Cg floats.
inline bool ValueBlockFast(const uint8_t* codes, const uint16_t* par, int d, int Cg, int bits, int nt, const float* p,
                           float* acc, float* scratch) {
  if (bits == 2 && HasAvx2() && ValueBlock2Avx2(codes, par, d, Cg, nt, p, acc, scratch)) return true;
#if IZ_KV_VECTOR
  if (bits != 2) return false;
  switch (Cg) {
    case 8:
      ValueBlock2<2>(codes, par, d, nt, p, acc);
      return true;
    case 16:
      ValueBlock2<4>(codes, par, d, nt, p, acc);
      return true;
    case 32:
      ValueBlock2<8>(codes, par, d, nt, p, acc);
      return true;
    case 64:
      ValueBlock2<16>(codes, par, d, nt, p, acc);
      return true;
    default:
      return false;
  }
#else
  (void)codes, (void)par, (void)d, (void)Cg, (void)bits, (void)nt, (void)p, (void)acc, (void)scratch;
  return false;
#endif
}

// Logits of one full key group: lg[j] = q . k_j for j < G, from the block at `block`
// (codes channel-major, then (scale, min) f16 pairs). `qs` is scratch for d floats.
// `qs` is scratch for 2*d floats.
inline void KiviKeyGroupLogits(const uint8_t* block, uint32_t param_offset, int d, int G, int bits, const float* q,
                               float* qs, float* lg) {
  if (bits == 2 && HasAvx2() && KeyGroup2Avx2(block, param_offset, d, G * bits / 8, q, qs, lg)) return;
  const uint16_t* par = reinterpret_cast<const uint16_t*>(block + param_offset);
  float bias = 0.0f;
  for (int c = 0; c < d; ++c) {
    qs[c] = q[c] * F16ToF32(par[2 * c]);
    bias += q[c] * F16ToF32(par[2 * c + 1]);
  }
  const int bytes_per_chan = G * bits / 8;
#if IZ_KV_VECTOR
  if (bits == 2 && bytes_per_chan == 8) return KeyGroup2<8>(block, d, qs, bias, lg);
  if (bits == 2 && bytes_per_chan == 4) return KeyGroup2<4>(block, d, qs, bias, lg);
  if (bits == 2 && bytes_per_chan == 16) return KeyGroup2<16>(block, d, qs, bias, lg);
#endif
  for (int j = 0; j < G; ++j) lg[j] = bias;
  if (bits == 2) {
    for (int c = 0; c < d; ++c) {
      const uint8_t* codes = block + size_t(c) * bytes_per_chan;
      const F4 w = Splat(qs[c]);
      for (int k = 0; k < bytes_per_chan; ++k) MulAdd4(lg + 4 * k, w, Lut2(codes[k]));
    }
  } else {
    for (int c = 0; c < d; ++c) {
      const uint8_t* codes = block + size_t(c) * bytes_per_chan;
      const float w = qs[c];
      for (int k = 0; k < bytes_per_chan; ++k) {
        const float* l = kLuts.four[codes[k]];
        lg[2 * k] += w * l[0];
        lg[2 * k + 1] += w * l[1];
      }
    }
  }
}

// acc[c] += p * scale_g * code_c for one value token; minsum[g] += p * min_g (added to the
// group's channels once per block by the caller).
inline void KiviValueAccumulate(const uint8_t* codes, const uint16_t* par, int d, int Cg, int bits, float p, float* acc,
                                float* minsum) {
  const int groups = d / Cg;
  if (bits == 2) {
    const int bytes_per_group = Cg / 4;
    for (int g = 0; g < groups; ++g) {
      const F4 a = Splat(p * F16ToF32(par[2 * g]));
      minsum[g] += p * F16ToF32(par[2 * g + 1]);
      const uint8_t* cg = codes + g * bytes_per_group;
      float* ag = acc + g * Cg;
      for (int k = 0; k < bytes_per_group; ++k) MulAdd4(ag + 4 * k, a, Lut2(cg[k]));
    }
  } else {
    const int bytes_per_group = Cg / 2;
    for (int g = 0; g < groups; ++g) {
      const float a = p * F16ToF32(par[2 * g]);
      minsum[g] += p * F16ToF32(par[2 * g + 1]);
      const uint8_t* cg = codes + g * bytes_per_group;
      float* ag = acc + g * Cg;
      for (int k = 0; k < bytes_per_group; ++k) {
        const float* l = kLuts.four[cg[k]];
        ag[2 * k] += a * l[0];
        ag[2 * k + 1] += a * l[1];
      }
    }
  }
}

}  // namespace iz::kv::cpu
