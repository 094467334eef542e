// Storage layout of a quantized KV cache and the per-token decode used both by
// dequantize and inside attention (CPU and CUDA): one function reads a key or value
// element / token straight from the packed planes.
//
// Each (batch, kv-head) pair is a "stream". Every plane stores each stream in its own
// region of `stride` bytes. Token t of a stream:
//   kivi     keys:   block t/G of plane KBLK: codes (channel c, token j at bit (c*G+j)*b),
//                    then (scale, min) f16 pairs per channel.
//            values: plane VCODE bitstream (token t at bit t*d*b), plane VPARAM (scale, min)
//                    f16 pairs per group of Cg channels.
//   fp8      keys/values: planes KCODE/VCODE one byte per element; KPARAM/VPARAM one f32 scale
//                    per block of G tokens (= per-head amax / max_finite of that block).
//   zipcache keys/values: per-token groups of Cg channels, 2 or 4 bits per token. INDEX holds per
//                    32 tokens (unit base, mask of 4-bit tokens); KCODE/VCODE are bitstreams in
//                    units of 2*d bits (a 4-bit token takes two units); KPARAM/VPARAM per token.
//   vidkv    keys:   block t/G of KBLK: anomalous channels 2-bit per channel (like kivi),
//                    then the other n channels' real spectrum (n reals: the Hermitian half of
//                    the DFT) as 1-bit signs per token, then (real scale, imag scale) per token.
//            values: salient tokens (mask bit in INDEX) live only in VSAL: units of 2*d bits
//                    of 2-bit codes + one f16 (scale, min) pair for the token. The others are
//                    ternary digits in VCODE, five per byte, token-major over the non-salient
//                    tokens only: non-salient token t has rank k = t - (salient tokens before
//                    t) and channel c is digit k*d + c. VBLK holds per block t/G one u8 scale
//                    code per channel, then an f16 reference r: scale = 0 for code 0, else
//                    r * 2^-((255 - code) / 32) (log steps of 2.2%, 7.9 octaves below r;
//                    smaller channels take the nearer of that floor and 0).
//                    At d = 128, G = 32 and 20% salient: 0.8 * 1.6 + (128 + 2) * 8 / 4096
//                    + 0.2 * (2 + 32 / 128) + 64 / (32 * 128) = 2.00 bits per element.
#pragma once

#include "native/shared/kvquant/codes.h"

namespace iz::kv {

enum Scheme : int { kKivi = 0, kVidKV = 1, kZipCache = 2, kFp8 = 3 };
enum Plane : int { KBLK = 0, KCODE, KPARAM, VBLK, VCODE, VPARAM, INDEX, VSAL, kNumPlanes };

constexpr int kMaxHeadDim = 256;

struct Layout {
  int scheme;
  int bits;        // kivi: 2 or 4 (codes); others: informational
  int fp8_format;  // kE4M3 / kE5M2
  int d;           // head_dim
  int G;           // token group (blocks of keys; blocks of vidkv values; fp8 scale blocks)
  int Cg;          // channel group (per-token groups)
  int n_anom;      // vidkv: anomalous key channels (first n_anom of chan_order)
  int n_norm;      // vidkv: d - n_anom
  uint32_t kblock_bytes;
  uint32_t vblock_bytes;
  uint32_t vsal_unit_bits;
  int16_t chan_order[kMaxHeadDim];  // vidkv: anomalous channels first, then normal ones
};

IZ_HD_INLINE uint32_t Words(uint64_t bits) { return static_cast<uint32_t>((bits + 31) / 32); }
IZ_HD_INLINE uint32_t Pad4(uint64_t bytes) { return static_cast<uint32_t>((bytes + 3) / 4 * 4); }

// Offsets inside a KIVI / vidkv key block.
IZ_HD_INLINE uint32_t KiviKeyParamOffset(const Layout& L) { return Words(uint64_t(L.d) * L.G * L.bits) * 4; }
IZ_HD_INLINE uint32_t VidAnomParamOffset(const Layout& L) { return Words(uint64_t(L.n_anom) * L.G * 2) * 4; }
IZ_HD_INLINE uint32_t VidSignOffset(const Layout& L) { return VidAnomParamOffset(L) + 4u * L.n_anom; }
IZ_HD_INLINE uint32_t VidTokScaleOffset(const Layout& L) {
  return VidSignOffset(L) + Words(uint64_t(L.G) * L.n_norm) * 4;
}
// Byte of the f16 reference inside a vidkv value-scale block (after the d scale codes).
IZ_HD_INLINE uint32_t VidValueRefOffset(const Layout& L) { return static_cast<uint32_t>(L.d); }

// 2^(-k/32) for k in [0, 32), as f32 (the same table on every backend, no exp2f).
IZ_HD_INLINE float Exp2NegThirtySecond(int k) {
  const float t[32] = {1.000000000e+00f, 9.785720706e-01f, 9.576032758e-01f, 9.370838404e-01f, 9.170040488e-01f,
                       8.973545432e-01f, 8.781260848e-01f, 8.593096733e-01f, 8.408964276e-01f, 8.228777647e-01f,
                       8.052451611e-01f, 7.879904509e-01f, 7.711054087e-01f, 7.545822263e-01f, 7.384130955e-01f,
                       7.225903869e-01f, 7.071067691e-01f, 6.919549704e-01f, 6.771277785e-01f, 6.626183391e-01f,
                       6.484197974e-01f, 6.345254779e-01f, 6.209288836e-01f, 6.076236963e-01f, 5.946035385e-01f,
                       5.818624496e-01f, 5.693942904e-01f, 5.571933985e-01f, 5.452538729e-01f, 5.335702300e-01f,
                       5.221368670e-01f, 5.109485984e-01f};
  return t[k & 31];
}
// Decoded vidkv value scale of a u8 code against the block reference r: 0 for code 0,
// else r * 2^-((255 - code) / 32) (steps of 2.2%, down to 2^-7.9 r).
IZ_HD_INLINE float VidScaleFromCode(uint32_t code, float r) {
  if (code == 0u) return 0.0f;
  const int k = 255 - static_cast<int>(code);  // 0..254: k / 32 <= 7, an exact power-of-two factor
  const float pow2[8] = {1.0f, 0.5f, 0.25f, 0.125f, 0.0625f, 0.03125f, 0.015625f, 0.0078125f};
  return (r * Exp2NegThirtySecond(k % 32)) * pow2[k / 32];
}
// Scale of channel c in the value-scale block `blk`.
IZ_HD_INLINE float VidValueScale(const Layout& L, const uint8_t* blk, int c) {
  const float r = F16ToF32(*reinterpret_cast<const uint16_t*>(blk + VidValueRefOffset(L)));
  return VidScaleFromCode(blk[c], r);
}

IZ_HD_INLINE uint32_t Popcount(uint32_t x) {
#if defined(__CUDA_ARCH__)
  return __popc(x);
#elif defined(__GNUC__) || defined(__clang__)
  return static_cast<uint32_t>(__builtin_popcount(x));
#else
  x = x - ((x >> 1) & 0x55555555u);
  x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
  return (((x + (x >> 4)) & 0x0f0f0f0fu) * 0x01010101u) >> 24;
#endif
}

// Position of token t in a variable-size pool: `index` holds (base, mask) per 32 tokens;
// a token costs u_low units, or u_hi when its mask bit is set.
IZ_HD_INLINE uint64_t PoolUnit(const uint32_t* index, uint64_t t, uint32_t u_low, uint32_t u_hi, bool* hi) {
  uint32_t base = index[(t >> 5) * 2];
  uint32_t mask = index[(t >> 5) * 2 + 1];
  uint32_t bit = static_cast<uint32_t>(t & 31u);
  uint32_t below = mask & ((1u << bit) - 1u);
  *hi = (mask >> bit) & 1u;
  return uint64_t(base) + uint64_t(bit) * u_low + uint64_t(Popcount(below)) * (u_hi - u_low);
}

// Pointers to one stream's planes.
struct StreamView {
  const uint8_t* p[kNumPlanes];
};

// vidkv stored-spectrum helpers: coefficient j of n (see header comment). Forward
// coefficient j = sum_i x_i F(j, i); inverse x_i = sum_j y_j F(j, i) * c_j.
IZ_HD_INLINE bool SpecIsImag(int j, int n) { return j > 0 && (j % 2 == 0) && !(n % 2 == 0 && j == n - 1); }
IZ_HD_INLINE int SpecFreq(int j, int n) { return (n % 2 == 0 && j == n - 1) ? n / 2 : (j + 1) / 2; }
IZ_HD_INLINE float SpecForward(int j, int i, int n) {
  int f = SpecFreq(j, n);
  float ang = 6.283185307179586f * static_cast<float>((static_cast<long long>(f) * i) % n) / static_cast<float>(n);
  return SpecIsImag(j, n) ? -sinf(ang) : cosf(ang);
}
IZ_HD_INLINE float SpecWeight(int j, int n) {
  int f = SpecFreq(j, n);
  bool edge = f == 0 || (n % 2 == 0 && f == n / 2);
  return (edge ? 1.0f : 2.0f) / static_cast<float>(n);
}

// ---------------------------------------------------------------------------
// Element decode: key / value element c of token t from packed storage.

IZ_HD_INLINE float KiviKeyElem(const Layout& L, const StreamView& s, uint64_t t, int c) {
  const uint8_t* blk = s.p[KBLK] + (t / L.G) * L.kblock_bytes;
  uint32_t j = static_cast<uint32_t>(t % L.G);
  uint32_t code = ReadCode(reinterpret_cast<const uint32_t*>(blk), (uint64_t(c) * L.G + j) * L.bits, L.bits);
  const uint16_t* par = reinterpret_cast<const uint16_t*>(blk + KiviKeyParamOffset(L)) + 2 * c;
  return DequantizeUniform(code, Affine{F16ToF32(par[0]), F16ToF32(par[1])});
}

IZ_HD_INLINE float TokenGroupElem(const uint32_t* codes, uint64_t bit0, int bits, const uint16_t* params, int Cg,
                                  int c) {
  uint32_t code = ReadCode(codes, bit0 + uint64_t(c) * bits, bits);
  const uint16_t* par = params + 2 * (c / Cg);
  return DequantizeUniform(code, Affine{F16ToF32(par[0]), F16ToF32(par[1])});
}

IZ_HD_INLINE float KiviValueElem(const Layout& L, const StreamView& s, uint64_t t, int c) {
  const uint32_t* codes = reinterpret_cast<const uint32_t*>(s.p[VCODE]);
  const uint16_t* par = reinterpret_cast<const uint16_t*>(s.p[VPARAM]) + t * 2 * (L.d / L.Cg);
  return TokenGroupElem(codes, t * L.d * L.bits, L.bits, par, L.Cg, c);
}

IZ_HD_INLINE float Fp8Elem(const Layout& L, const uint8_t* code, const uint8_t* param, uint64_t t, int c) {
  float scale = reinterpret_cast<const float*>(param)[t / L.G];
  return Fp8Decode(code[t * L.d + c], L.fp8_format) * scale;
}

IZ_HD_INLINE float ZipElem(const Layout& L, const StreamView& s, int plane_code, int plane_param, uint64_t t, int c) {
  bool hi;
  uint64_t unit = PoolUnit(reinterpret_cast<const uint32_t*>(s.p[INDEX]), t, 1, 2, &hi);
  const uint16_t* par = reinterpret_cast<const uint16_t*>(s.p[plane_param]) + t * 2 * (L.d / L.Cg);
  return TokenGroupElem(reinterpret_cast<const uint32_t*>(s.p[plane_code]), unit * 2 * L.d, hi ? 4 : 2, par, L.Cg, c);
}

// vidkv anomalous key channel a (position in chan_order) of token t.
IZ_HD_INLINE float VidAnomElem(const Layout& L, const uint8_t* blk, uint32_t j, int a) {
  uint32_t code = ReadCode(reinterpret_cast<const uint32_t*>(blk), (uint64_t(a) * L.G + j) * 2, 2);
  const uint16_t* par = reinterpret_cast<const uint16_t*>(blk + VidAnomParamOffset(L)) + 2 * a;
  return DequantizeUniform(code, Affine{F16ToF32(par[0]), F16ToF32(par[1])});
}
// Dequantized stored spectral coefficient jj of token j in a vidkv key block.
IZ_HD_INLINE float VidSpecElem(const Layout& L, const uint8_t* blk, uint32_t j, int jj) {
  uint32_t code = ReadCode(reinterpret_cast<const uint32_t*>(blk + VidSignOffset(L)), uint64_t(j) * L.n_norm + jj, 1);
  const uint16_t* sc = reinterpret_cast<const uint16_t*>(blk + VidTokScaleOffset(L)) + 2 * j;
  return SignValue(code, F16ToF32(sc[SpecIsImag(jj, L.n_norm) ? 1 : 0]));
}

IZ_HD_INLINE float VidValueElem(const Layout& L, const StreamView& s, uint64_t t, int c) {
  bool sal;
  uint64_t unit = PoolUnit(reinterpret_cast<const uint32_t*>(s.p[INDEX]), t, 0, 1, &sal);
  if (sal) {
    const uint32_t* pool = reinterpret_cast<const uint32_t*>(s.p[VSAL]);
    uint64_t bit0 = unit * L.vsal_unit_bits;
    uint32_t code = ReadCode(pool, bit0 + uint64_t(c) * 2, 2);
    uint64_t pbit = bit0 + uint64_t(2) * L.d;
    Affine a{F16ToF32(ReadHalfField(pool, pbit)), F16ToF32(ReadHalfField(pool, pbit + 16))};
    return DequantizeUniform(code, a);
  }
  // `unit` salient tokens come before t: t is non-salient token number t - unit
  uint32_t digit = ReadTrit(s.p[VCODE], (t - unit) * uint64_t(L.d) + uint64_t(c));
  return TernaryValue(digit, VidValueScale(L, s.p[VBLK] + (t / L.G) * L.vblock_bytes, c));
}

// Whole-token decode (dequantize and the generic attention path). `basis` is the vidkv
// spectrum table: basis[j*n + i] = SpecForward(j, i, n) * SpecWeight(j, n).
IZ_HD_INLINE void DecodeKeyToken(const Layout& L, const StreamView& s, uint64_t t, const float* basis, float* out) {
  switch (L.scheme) {
    case kKivi:
      for (int c = 0; c < L.d; ++c) out[c] = KiviKeyElem(L, s, t, c);
      break;
    case kFp8:
      for (int c = 0; c < L.d; ++c) out[c] = Fp8Elem(L, s.p[KCODE], s.p[KPARAM], t, c);
      break;
    case kZipCache:
      for (int c = 0; c < L.d; ++c) out[c] = ZipElem(L, s, KCODE, KPARAM, t, c);
      break;
    default: {
      const uint8_t* blk = s.p[KBLK] + (t / L.G) * L.kblock_bytes;
      uint32_t j = static_cast<uint32_t>(t % L.G);
      for (int a = 0; a < L.n_anom; ++a) out[L.chan_order[a]] = VidAnomElem(L, blk, j, a);
      int n = L.n_norm;
      for (int i = 0; i < n; ++i) out[L.chan_order[L.n_anom + i]] = 0.0f;
      for (int jj = 0; jj < n; ++jj) {
        float y = VidSpecElem(L, blk, j, jj);
        for (int i = 0; i < n; ++i) out[L.chan_order[L.n_anom + i]] += y * basis[jj * n + i];
      }
    }
  }
}

IZ_HD_INLINE float ValueElem(const Layout& L, const StreamView& s, uint64_t t, int c) {
  switch (L.scheme) {
    case kKivi:
      return KiviValueElem(L, s, t, c);
    case kFp8:
      return Fp8Elem(L, s.p[VCODE], s.p[VPARAM], t, c);
    case kZipCache:
      return ZipElem(L, s, VCODE, VPARAM, t, c);
    default:
      return VidValueElem(L, s, t, c);
  }
}

// Whole value token: vidkv finds the token's pool slot and block reference once and walks
// its ternary digits in order (byte by byte); other schemes decode element by element.
IZ_HD_INLINE void DecodeValueToken(const Layout& L, const StreamView& s, uint64_t t, float* out) {
  if (L.scheme != kVidKV) {
    for (int c = 0; c < L.d; ++c) out[c] = ValueElem(L, s, t, c);
    return;
  }
  bool sal;
  uint64_t unit = PoolUnit(reinterpret_cast<const uint32_t*>(s.p[INDEX]), t, 0, 1, &sal);
  if (sal) {
    const uint32_t* pool = reinterpret_cast<const uint32_t*>(s.p[VSAL]);
    uint64_t bit0 = unit * L.vsal_unit_bits;
    uint64_t pbit = bit0 + uint64_t(2) * L.d;
    Affine a{F16ToF32(ReadHalfField(pool, pbit)), F16ToF32(ReadHalfField(pool, pbit + 16))};
    for (int c = 0; c < L.d; ++c) out[c] = DequantizeUniform(ReadCode(pool, bit0 + uint64_t(c) * 2, 2), a);
    return;
  }
  const uint8_t* blk = s.p[VBLK] + (t / L.G) * L.vblock_bytes;
  const float r = F16ToF32(*reinterpret_cast<const uint16_t*>(blk + VidValueRefOffset(L)));
  uint64_t i = (t - unit) * uint64_t(L.d);
  const uint8_t* bytes = s.p[VCODE] + i / 5;
  uint32_t pos = static_cast<uint32_t>(i % 5), byte = *bytes;
  for (uint32_t k = 0; k < pos; ++k) byte /= 3u;
  for (int c = 0; c < L.d; ++c) {
    out[c] = TernaryValue(byte % 3u, VidScaleFromCode(blk[c], r));
    byte /= 3u;
    if (++pos == 5u) {
      pos = 0;
      if (c + 1 < L.d) byte = *++bytes;
    }
  }
}

// Query prepared for the fused key dot product. For vidkv it holds the anomalous part
// of q in chan_order, then the spectral weights w_j = sum_i q_i basis[j][i], so that
// q . k = sum_a q_a k_a + sum_j w_j y_j reads 1-bit codes directly (Parseval).
IZ_HD_INLINE float PrepareQueryEntry(const Layout& L, const float* q, const float* basis, int e) {
  if (L.scheme != kVidKV) return q[e];
  if (e < L.n_anom) return q[L.chan_order[e]];
  int n = L.n_norm, jj = e - L.n_anom;
  float w = 0.0f;
  for (int i = 0; i < n; ++i) w += q[L.chan_order[L.n_anom + i]] * basis[jj * n + i];
  return w;
}
IZ_HD_INLINE void PrepareQuery(const Layout& L, const float* q, const float* basis, float* qp) {
  for (int e = 0; e < L.d; ++e) qp[e] = PrepareQueryEntry(L, q, basis, e);
}

// q . k_t from packed codes, dequantizing each element in registers.
IZ_HD_INLINE float KeyDot(const Layout& L, const StreamView& s, uint64_t t, const float* qp) {
  float acc = 0.0f;
  switch (L.scheme) {
    case kKivi:
      for (int c = 0; c < L.d; ++c) acc += qp[c] * KiviKeyElem(L, s, t, c);
      return acc;
    case kFp8:
      for (int c = 0; c < L.d; ++c) acc += qp[c] * Fp8Elem(L, s.p[KCODE], s.p[KPARAM], t, c);
      return acc;
    case kZipCache:
      for (int c = 0; c < L.d; ++c) acc += qp[c] * ZipElem(L, s, KCODE, KPARAM, t, c);
      return acc;
    default: {
      const uint8_t* blk = s.p[KBLK] + (t / L.G) * L.kblock_bytes;
      uint32_t j = static_cast<uint32_t>(t % L.G);
      for (int a = 0; a < L.n_anom; ++a) acc += qp[a] * VidAnomElem(L, blk, j, a);
      for (int jj = 0; jj < L.n_norm; ++jj) acc += qp[L.n_anom + jj] * VidSpecElem(L, blk, j, jj);
      return acc;
    }
  }
}

}  // namespace iz::kv
