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
IZ_HD_INLINE void EncodeTokenGroups(const float* x, int d, int Cg, int bits, uint32_t* codes, uint64_t bit0,
                                    uint16_t* params) {
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
    for (int c = 0; c < L.d; ++c)
      code[t * L.d + c] = static_cast<uint8_t>(s > 0.0f ? Fp8Encode(x[t * ld + c] / s, L.fp8_format) : 0u);
}

// vidkv key block. `fwd` is the forward spectrum table fwd[j*n + i] = SpecForward(j, i, n);
// `spec` is scratch for 2*n floats (the token's normal channels gathered, then its spectrum).
IZ_HD_INLINE void EncodeVidKeyBlock(const Layout& L, const float* x, int ld, int ntok, const float* fwd, float* spec,
                                    uint8_t* blk) {
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

// mean |x| of channel c over the non-salient tokens of a vidkv value block (0 when every token
// is salient): the channel's scale before it is coded against the block reference.
IZ_HD_INLINE float VidChannelMeanAbs(const float* x, int ld, int ntok, const uint8_t* salient, int c) {
  float sum = 0.0f;
  int cnt = 0;
  for (int t = 0; t < ntok; ++t) {
    if (salient[t]) continue;
    float v = x[t * ld + c];
    sum += v < 0.0f ? -v : v;
    ++cnt;
  }
  return cnt ? sum / static_cast<float>(cnt) : 0.0f;
}

// vidkv value block: per channel, s = mean|x| over the block's non-salient tokens
// (salient[t] != 0: stored at 2 bits in VSAL only), stored as a u8 log code against the
// block's f16 reference r = max_c s (see layout.h; of the codes next to s, the one with the
// smallest ternary reconstruction error); the ternary digits use the decoded scale
// and go to the token-major stream `trits`, non-salient token k of the block at digits
// (rank0 + k) * d + c. Returns the number of non-salient tokens written.
IZ_HD_INLINE int EncodeVidValueBlock(const Layout& L, const float* x, int ld, int ntok, const uint8_t* salient,
                                     uint8_t* params, uint8_t* trits, uint64_t rank0) {
  float smax = 0.0f;
  for (int c = 0; c < L.d; ++c) {
    const float sc = VidChannelMeanAbs(x, ld, ntok, salient, c);
    smax = sc > smax ? sc : smax;
  }
  const uint16_t rh = F32ToF16(smax);
  *reinterpret_cast<uint16_t*>(params + VidValueRefOffset(L)) = rh;
  const float r = F16ToF32(rh);
  int written = 0;
  for (int c = 0; c < L.d; ++c) {
    const float sc = VidChannelMeanAbs(x, ld, ntok, salient, c);
    uint32_t code = 0;
    if (sc > 0.0f && r > 0.0f) {
      // The code nearest to s in the log domain and its two neighbours (and 0): keep the one
      // whose ternary reconstruction of this channel has the smallest squared error, so the
      // u8 rounding of s never costs more than the nearest code would.
      int k = static_cast<int>(floorf(32.0f * log2f(r / sc) + 0.5f));
      k = k < 0 ? 0 : (k > 254 ? 254 : k);
      float best = -1.0f;
      for (int dk = -1; dk <= 2; ++dk) {
        const int k2 = k + dk;
        uint32_t cand;
        if (dk == 2) {
          if (k < 250) continue;  // 0 only competes with the smallest steps
          cand = 0u;
        } else if (k2 < 0 || k2 > 254)
          continue;
        else
          cand = static_cast<uint32_t>(255 - k2);
        const float sv = VidScaleFromCode(cand, r);
        float err = 0.0f;
        for (int t = 0; t < ntok; ++t) {
          if (salient[t]) continue;
          const float v = x[t * ld + c];
          const float e = v - TernaryValue(TernaryDigit(v, sv), sv);
          err += e * e;
        }
        if (best < 0.0f || err < best) {
          best = err;
          code = cand;
        }
      }
    }
    params[c] = static_cast<uint8_t>(code);
    const float s = VidScaleFromCode(code, r);
    uint64_t k = rank0;
    for (int t = 0; t < ntok; ++t) {
      if (salient[t]) continue;
      AddTrit(trits, k * uint64_t(L.d) + uint64_t(c), TernaryDigit(x[t * ld + c], s));
      ++k;
    }
    written = static_cast<int>(k - rank0);
  }
  return written;
}

// vidkv salient value token: 2-bit codes with one (scale, min) f16 pair for the whole
// token, at pool unit `unit`.
IZ_HD_INLINE void EncodeVidSalientToken(const Layout& L, const float* x, uint32_t* pool, uint64_t unit) {
  uint64_t bit0 = unit * L.vsal_unit_bits;
  Affine a = EncodeUniformGroup(x, L.d, 1, 2, pool, bit0);
  uint64_t pbit = bit0 + uint64_t(2) * L.d;
  OrHalfField(pool, pbit, F32ToF16(a.scale));
  OrHalfField(pool, pbit + 16, F32ToF16(a.min));
}

}  // namespace iz::kv
