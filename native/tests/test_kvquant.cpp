// Native tests of KV-cache quantization: the shared codecs (spec vectors) and every scheme's
// fused attention against dequantize-then-attend, under ASan/UBSan in CI.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "native/core/kvquant/cache.h"
#include "native/shared/kvquant/encode.h"
#include "native/tests/testing.h"

using namespace iz::kv;

IZ_TEST(kv_pack_and_round_spec_vectors) {
  uint32_t w = 0;
  for (int i = 0; i < 16; ++i) OrCode(&w, uint64_t(i) * 2, 2, uint32_t(i % 4));
  IZ_EXPECT(w == 0xE4E4E4E4u);
  const float g[4] = {-1.0f, 1.5f, 2.0f, 0.0f};
  uint32_t codes = 0;
  Affine a = EncodeUniformGroup(g, 4, 1, 2, &codes, 0);
  IZ_EXPECT(a.min == -1.0f && a.scale == 1.0f);
  const uint32_t want[4] = {0, 2, 3, 1};
  for (int i = 0; i < 4; ++i) IZ_EXPECT_EQ(ReadCode(&codes, uint64_t(i) * 2, 2), want[i]);
  const float c[3] = {2.5f, 2.5f, 2.5f};
  codes = 0;
  a = EncodeUniformGroup(c, 3, 1, 2, &codes, 0);
  IZ_EXPECT(a.scale == 0.0f && codes == 0u && DequantizeUniform(0, a) == 2.5f);
}

IZ_TEST(kv_ternary_sign_fp8_spec_vectors) {
  const float x[4] = {0.9f, -0.1f, -0.8f, 0.2f};
  const int q[4] = {1, 0, -1, 0};
  for (int i = 0; i < 4; ++i) IZ_EXPECT_EQ(int(TernaryDigit(x[i], 0.5f)) - 1, q[i]);
  const float s[4] = {0.5f, -0.5f, -0.5f, 0.5f};
  for (int i = 0; i < 4; ++i) IZ_EXPECT(SignValue(SignCode(x[i]), 0.5f) == s[i]);
  uint8_t trits[2] = {0, 0};
  for (int i = 0; i < 10; ++i) AddTrit(trits, uint64_t(i), uint32_t(i % 3));
  for (int i = 0; i < 10; ++i) IZ_EXPECT_EQ(ReadTrit(trits, uint64_t(i)), uint32_t(i % 3));
  IZ_EXPECT(Fp8Decode(Fp8Encode(448.0f, kE4M3), kE4M3) == 448.0f);
  IZ_EXPECT(Fp8Decode(Fp8Encode(-448.0f, kE4M3), kE4M3) == -448.0f);
  IZ_EXPECT(Fp8Decode(Fp8Encode(1e9f, kE4M3), kE4M3) == 448.0f);
  IZ_EXPECT(Fp8Decode(Fp8Encode(57344.0f, kE5M2), kE5M2) == 57344.0f);
  // every finite code decodes and re-encodes to itself
  for (int f = 0; f < 2; ++f)
    for (uint32_t b = 0; b < 256; ++b) {
      float v = Fp8Decode(b, f);
      if (!std::isfinite(v) || (v == 0.0f && (b & 0x80u))) continue;
      IZ_EXPECT_EQ(Fp8Encode(v, f), b);
    }
  for (uint32_t h = 0; h < 0x7c00; h += 7) IZ_EXPECT_EQ(F32ToF16(F16ToF32(uint16_t(h))), h);
}

IZ_TEST(kv_fused_attention_matches_dequantize_for_every_scheme) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  for (int scheme : {kKivi, kVidKV, kZipCache, kFp8}) {
    CacheOptions o;
    o.scheme = Scheme(scheme);
    o.bits = scheme == kKivi ? 2 : scheme == kZipCache ? 4 : scheme == kFp8 ? 8 : 2;
    o.batch = 2;
    o.heads = 2;
    o.head_dim = 16;
    o.group = 8;
    o.channel_group = 8;
    o.window = 16;
    KvCache cache(o);
    const int64_t T = 53;
    const size_t S = 4, d = 16;
    std::vector<float> k(S * T * d), v(S * T * d);
    for (auto& x : k) x = nd(rng);
    for (auto& x : v) x = nd(rng);
    // prefill 40 tokens, then one-token steps
    auto slice = [&](const std::vector<float>& src, int64_t a, int64_t e) {
      std::vector<float> out;
      for (size_t s = 0; s < S; ++s)
        out.insert(out.end(), src.begin() + (s * T + a) * d, src.begin() + (s * T + e) * d);
      return out;
    };
    for (int64_t a = 0; a < T;) {
      int64_t e = a == 0 ? 40 : a + 1;
      std::vector<float> ks = slice(k, a, e), vs = slice(v, a, e);
      AppendInput in;
      in.k = ks.data();
      in.v = vs.data();
      in.n = e - a;
      cache.Append(in);
      a = e;
    }
    IZ_EXPECT_EQ(cache.tokens(), T);
    std::vector<float> dk(S * T * d), dv(S * T * d);
    cache.Dequantize(dk.data(), dv.data());
    const int q_heads = 4;
    const int64_t nq = 3;
    std::vector<float> q(2 * q_heads * nq * d);
    for (auto& x : q) x = nd(rng);
    std::vector<float> fused(q.size()), ref(q.size());
    cache.Attention(q.data(), q_heads, nq, 0.25f, true, fused.data());
    DenseAttention(q.data(), 2, q_heads, nq, dk.data(), dv.data(), 2, T, int(d), 0.25f, true, ref.data());
    float worst = 0;
    for (size_t i = 0; i < q.size(); ++i) worst = std::max(worst, std::fabs(fused[i] - ref[i]));
    IZ_EXPECT(worst < 1e-5f);
  }
}

IZ_TEST(kv_bad_input_is_rejected) {
  CacheOptions o;
  o.head_dim = 12;
  IZ_EXPECT_THROWS_CODE(KvCache{o}, InvalidArgument);
  o.head_dim = 16;
  o.bits = 3;
  IZ_EXPECT_THROWS_CODE(KvCache{o}, InvalidArgument);
  o.bits = 2;
  o.channel_group = 6;
  IZ_EXPECT_THROWS_CODE(KvCache{o}, InvalidArgument);
  o.channel_group = 16;
  o.window = 40;
  IZ_EXPECT_THROWS_CODE(KvCache{o}, InvalidArgument);
  o.window = 32;
  KvCache cache(o);
  std::vector<float> k(16, 1.0f), v(16, 1.0f);
  v[5] = NAN;
  AppendInput in;
  in.k = k.data();
  in.v = v.data();
  in.n = 1;
  IZ_EXPECT_THROWS_CODE(cache.Append(in), InvalidArgument);
  IZ_EXPECT_EQ(cache.tokens(), int64_t(0));
  std::vector<float> q(16, 1.0f), out(16);
  IZ_EXPECT_THROWS_CODE(cache.Attention(q.data(), 1, 1, 1.0f, true, out.data()), InvalidArgument);
}
