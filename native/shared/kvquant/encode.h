// Encoders that write one block or token of the layout in layout.h. Shared by the CPU
// backend and CUDA kernels; destinations must start zeroed (codes are OR-ed in).
#pragma once

#include "native/shared/kvquant/layout.h"

namespace iz::kv {

// Uniform b-bit codes for n values at x[i*stride], written at bit0 + i*bits; returns the group's affine.
IZ_HD_INLINE Affine EncodeUniformGroup(const float* x, int n, int stride, int bits, uint32_t* codes, uint64_t bit0) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; ++i) {
    float v = x[i * stride];
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
  Affine a = AffineFromRange(lo, hi, bits);
  for (int i = 0; i < n; ++i) OrCode(codes, bit0 + uint64_t(i) * bits, bits, QuantizeUniform(x[i * stride], a, bits));
  return a;
}

// One token in per-token groups of Cg channels: codes at bit0 (d*bits bits), (scale, min) pairs into params.
IZ_HD_INLINE void EncodeTokenGroups(const float* x, int d, int Cg, int bits, uint32_t* codes, uint64_t bit0, uint16_t* params) {
  for (int g = 0; g < d / Cg; ++g) {
    Affine a = EncodeUniformGroup(x + g * Cg, Cg, 1, bits, codes, bit0 + uint64_t(g) * Cg * bits);
    params[2 * g] = F32ToF16(a.scale);
    params[2 * g + 1] = F32ToF16(a.min);
  }
}

// KIVI key block: ntok (<= G) token rows of d floats, `ld` floats apart.
IZ_HD_INLINE void EncodeKiviKeyBlock(const Layout& L, const float* x, int ld, int ntok, uint8_t* blk) {
  uint32_t* codes = reinterpret_cast<uint32_t*>(blk);
  uint16_t* par = reinterpret_cast<uint16_t*>(blk + KiviKeyParamOffset(L));
  for (int c = 0; c < L.d; ++c) {
    Affine a = EncodeUniformGroup(x + c, ntok, ld, L.bits, codes, uint64_t(c) * L.G * L.bits);
    par[2 * c] = F32ToF16(a.scale);
    par[2 * c + 1] = F32ToF16(a.min);
  }
}

// FP8 block: one scale (amax / max_finite) for ntok tokens; codes one byte per element.
IZ_HD_INLINE void EncodeFp8Block(const Layout& L, const float* x, int ld, int ntok, uint8_t* code, float* scale) {
  float amax = 0.0f;
  for (int t = 0; t < ntok; ++t)
    for (int c = 0; c < L.d; ++c) {
      float a = x[t * ld + c];
      a = a < 0.0f ? -a : a;
      amax = a > amax ? a : amax;
    }
  float s = amax / Fp8MaxFinite(L.fp8_format);
  *scale = s;
  for (int t = 0; t < ntok; ++t)
    for (int c = 0; c < L.d; ++c) code[t * L.d + c] = static_cast<uint8_t>(s > 0.0f ? Fp8Encode(x[t * ld + c] / s, L.fp8_format) : 0u);
}

// vidkv key block. `fwd` is the forward spectrum table fwd[j*n + i] = SpecForward(j, i, n);
// `spec` is scratch for 2*n floats (the token's normal channels gathered, then its spectrum).
IZ_HD_INLINE void EncodeVidKeyBlock(const Layout& L, const float* x, int ld, int ntok, const float* fwd, float* spec, uint8_t* blk) {
  uint32_t* acodes = reinterpret_cast<uint32_t*>(blk);
  uint16_t* apar = reinterpret_cast<uint16_t*>(blk + VidAnomParamOffset(L));
  for (int a = 0; a < L.n_anom; ++a) {
    Affine af = EncodeUniformGroup(x + L.chan_order[a], ntok, ld, 2, acodes, uint64_t(a) * L.G * 2);
    apar[2 * a] = F32ToF16(af.scale);
    apar[2 * a + 1] = F32ToF16(af.min);
  }
  int n = L.n_norm;
  if (n == 0) return;
  uint32_t* signs = reinterpret_cast<uint32_t*>(blk + VidSignOffset(L));
  uint16_t* tsc = reinterpret_cast<uint16_t*>(blk + VidTokScaleOffset(L));
  float* g = spec + n;
  for (int t = 0; t < ntok; ++t) {
    const float* row = x + t * ld;
    // gathered once, so the n x n product below reads both operands contiguously
    for (int i = 0; i < n; ++i) g[i] = row[L.chan_order[L.n_anom + i]];
    float sum_re = 0.0f, sum_im = 0.0f;
    int n_re = 0, n_im = 0;
    for (int j = 0; j < n; ++j) {
      const float* f = fwd + j * n;
      float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // eight partial sums: SIMD without reassociation flags
      int i = 0;
      for (; i + 8 <= n; i += 8)
        for (int e = 0; e < 8; ++e) part[e] += g[i + e] * f[i + e];
      float y = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
      for (; i < n; ++i) y += g[i] * f[i];
      spec[j] = y;
      float m = y < 0.0f ? -y : y;
      if (SpecIsImag(j, n)) {
        sum_im += m;
        ++n_im;
      } else {
        sum_re += m;
        ++n_re;
      }
    }
    tsc[2 * t] = F32ToF16(n_re ? sum_re / static_cast<float>(n_re) : 0.0f);
    tsc[2 * t + 1] = F32ToF16(n_im ? sum_im / static_cast<float>(n_im) : 0.0f);
    for (int j = 0; j < n; ++j) OrCode(signs, uint64_t(t) * n + j, 1, SignCode(spec[j]));
  }
}

// vidkv value block: ternary per channel over the block's non-salient tokens
// (salient[t] != 0 marks tokens stored at 2 bits elsewhere; their digit is 0).
IZ_HD_INLINE void EncodeVidValueBlock(const Layout& L, const float* x, int ld, int ntok, const uint8_t* salient, uint8_t* blk) {
  uint16_t* scales = reinterpret_cast<uint16_t*>(blk + VidTernScaleOffset(L));
  for (int c = 0; c < L.d; ++c) {
    float sum = 0.0f;
    int cnt = 0;
    for (int t = 0; t < ntok; ++t) {
      if (salient[t]) continue;
      float v = x[t * ld + c];
      sum += v < 0.0f ? -v : v;
      ++cnt;
    }
    uint16_t sh = F32ToF16(cnt ? sum / static_cast<float>(cnt) : 0.0f);
    scales[c] = sh;
    float s = F16ToF32(sh);
    for (int t = 0; t < L.G; ++t) {
      uint32_t digit = (t < ntok && !salient[t]) ? TernaryDigit(x[t * ld + c], s) : 1u;
      AddTrit(blk, uint64_t(c) * L.G + t, digit);
    }
  }
}

// vidkv salient value token: 2-bit per-token groups + params, at pool unit `unit`.
IZ_HD_INLINE void EncodeVidSalientToken(const Layout& L, const float* x, uint32_t* pool, uint64_t unit) {
  uint64_t bit0 = unit * L.vsal_unit_bits;
  for (int g = 0; g < L.d / L.Cg; ++g) {
    Affine a = EncodeUniformGroup(x + g * L.Cg, L.Cg, 1, 2, pool, bit0 + uint64_t(g) * L.Cg * 2);
    uint64_t pbit = bit0 + uint64_t(2) * L.d + uint64_t(g) * 32;
    OrHalfField(pool, pbit, F32ToF16(a.scale));
    OrHalfField(pool, pbit + 16, F32ToF16(a.min));
  }
}

}  // namespace iz::kv
