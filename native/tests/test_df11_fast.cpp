// Native tests of the fast CPU decoder's own machinery: the quad / 12-bit lookup tables
// against the unit's tables, the rebuild loops (portable and AVX2, plain and streaming
// stores), and decodes that mix quad entries with both fallbacks.
#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "native/core/df11/codec.h"
#include "native/core/df11/lookup.h"
#include "native/core/df11/rebuild.h"
#include "native/core/simd.h"
#include "native/shared/df11/format.h"
#include "native/tests/testing.h"

using namespace iz::df11;

namespace {

UnitView View(const EncodedUnit& u) {
  return UnitView{u.luts.data(),          u.luts.size(),          u.encoded_exponent.data(), u.encoded_exponent.size(),
                  u.sign_mantissa.data(), u.sign_mantissa.size(), u.output_positions.data(), u.output_positions.size(),
                  u.gaps.data(),          u.gaps.size()};
}

// Every quad entry must say exactly what DecodeSymbol says for the same bits, whatever
// follows the kQuadBits it was built from; every 12-bit entry likewise for one code.
// Returns how many quad entries hold 1..kQuadMaxCodes codes (index = count).
std::vector<uint32_t> CheckTables(const Tables& t, std::mt19937_64& rng) {
  static FastTables f;  // 40 KiB: not on the stack
  BuildFastTables(t, f);
  std::vector<uint32_t> counts(kQuadMaxCodes + 1, 0);
  const uint8_t* lengths = t.luts + t.n_tables * 256;
  for (uint32_t p = 0; p < (1u << kQuadBits); ++p) {
    const uint64_t e = f.quad[p];
    ++counts[QuadCount(e)];
    if (e == 0) continue;
    IZ_EXPECT(QuadCount(e) >= 1 && QuadCount(e) <= kQuadMaxCodes);
    IZ_EXPECT((e & 63) >= 1 && (e & 63) <= kQuadMaxBits && (e & 0xC0) == 0);
    for (int trial = 0; trial < 8; ++trial) {
      const uint64_t win = uint64_t(p) << (64 - kQuadBits) | (rng() >> kQuadBits);
      uint32_t pos = 0;
      uint64_t starts = 0;
      for (uint32_t i = 0; i < QuadCount(e); ++i) {
        uint32_t sym = 0, len = 0;
        IZ_EXPECT_EQ(DecodeSymbol(t, static_cast<uint32_t>((win << pos) >> 32), &sym, &len), unsigned(kOk));
        IZ_EXPECT_EQ(sym, static_cast<uint32_t>((QuadSymbols(e) >> (8 * i)) & 0xFFu));
        starts |= uint64_t(1) << pos;
        pos += len;
      }
      IZ_EXPECT_EQ(pos, uint32_t(e & 63));
      IZ_EXPECT_EQ(starts, QuadStarts(e));
      if (QuadCount(e) < kQuadMaxCodes)
        IZ_EXPECT_EQ(QuadSymbols(e) >> (8 * QuadCount(e)), uint64_t(0));  // unused bytes are 0
    }
  }
  for (uint32_t p = 0; p < (1u << kFastBits); ++p) {
    const uint32_t e = f.fast[p];
    if (e == 0) continue;
    const uint32_t peek = p << (32 - kFastBits) | static_cast<uint32_t>(rng() >> (32 + kFastBits));
    uint32_t sym = 0, len = 0;
    IZ_EXPECT_EQ(DecodeSymbol(t, peek, &sym, &len), unsigned(kOk));
    IZ_EXPECT_EQ(sym, e & 0xFFu);
    IZ_EXPECT_EQ(len, e >> 8);
    IZ_EXPECT_EQ(uint32_t(lengths[sym]), len);
  }
  return counts;
}

// Weights whose exponents follow `weights` (relative counts per exponent value).
std::vector<uint16_t> Weights(const std::vector<std::pair<uint32_t, uint32_t>>& weights, size_t n,
                              std::mt19937_64& rng) {
  uint64_t total = 0;
  for (auto& w : weights) total += w.second;
  std::vector<uint16_t> out(n);
  for (auto& x : out) {
    uint64_t r = rng() % total;
    size_t k = 0;
    while (r >= weights[k].second) r -= weights[k++].second;
    x = static_cast<uint16_t>((weights[k].first << 7) | (rng() & 0x807F));
  }
  return out;
}

void ExpectDecodes(const std::vector<uint16_t>& words, uint32_t max_code_length) {
  EncodeOptions opt;
  opt.max_code_length = max_code_length;
  EncodedUnit u = Encode({Span{words.data(), words.size()}}, opt);
  IZ_EXPECT(u.raw_inputs.empty());
  std::vector<uint16_t> fast(words.size()), one(words.size()), sim(words.size());
  DecodeCpu(View(u), fast.data(), fast.size(), 2);
  DecodeCpu(View(u), one.data(), one.size(), 1);
  DecodeSimulateKernel(View(u), sim.data(), sim.size());
  IZ_EXPECT(fast == words);
  IZ_EXPECT(one == words);
  IZ_EXPECT(sim == words);
}

}  // namespace

IZ_TEST(df11_fast_tables_agree_with_the_unit_tables) {
  std::mt19937_64 rng(11);
  // Short codes (Gaussian-like), long codes up to 32 bits (three table levels), one symbol.
  const std::vector<std::pair<uint32_t, uint32_t>> gaussian = {{118, 300}, {119, 600}, {120, 1000}, {121, 900},
                                                               {122, 400}, {117, 120}, {116, 40},   {123, 2}};
  std::vector<std::pair<uint32_t, uint32_t>> skewed = {{120, 1u << 30}};
  for (uint32_t e = 60; e < 100; ++e) skewed.push_back({e, 1u + (e % 3)});
  for (const auto& hist : {gaussian, skewed, std::vector<std::pair<uint32_t, uint32_t>>{{127, 1}}}) {
    const std::vector<uint16_t> w = Weights(hist, 20000, rng);
    EncodedUnit u = Encode({Span{w.data(), w.size()}});
    const std::vector<uint32_t> counts = CheckTables(Tables{u.luts.data(), u.n_tables}, rng);
    uint32_t resolved = 0;
    for (uint32_t k = 1; k <= kQuadMaxCodes; ++k) resolved += counts[k];
    IZ_EXPECT(resolved > 0);
  }
  // A Gaussian-like unit uses every entry size.
  const std::vector<uint16_t> w = Weights(gaussian, 20000, rng);
  EncodedUnit u = Encode({Span{w.data(), w.size()}});
  const std::vector<uint32_t> counts = CheckTables(Tables{u.luts.data(), u.n_tables}, rng);
  for (uint32_t k = 1; k <= kQuadMaxCodes; ++k) IZ_EXPECT(counts[k] > 0);
}

IZ_TEST(df11_fast_tables_follow_hostile_length_rows) {
  // Lengths come from the length row, not the table's shape: a symbol the first byte
  // resolves may claim 1, 13 or 30 bits. The tables must still match DecodeSymbol.
  std::mt19937_64 rng(12);
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<uint8_t> luts(3 * 256);
    for (int i = 0; i < 256; ++i) luts[i] = (rng() % 5 == 0) ? 255 : static_cast<uint8_t>(rng() % 6);  // 255 -> table 1
    for (int i = 256; i < 512; ++i) luts[i] = static_cast<uint8_t>(rng() % 6 + (rng() % 2 ? 0 : 10));
    for (int s = 0; s < 256; ++s) luts[512 + s] = static_cast<uint8_t>(rng() % 33);  // 0 and > 14 included
    CheckTables(Tables{luts.data(), 2}, rng);
  }
}

IZ_TEST(df11_cached_fast_tables_are_keyed_by_every_table_byte) {
  std::mt19937_64 rng(13);
  std::vector<uint8_t> luts(3 * 256);
  for (int i = 0; i < 256; ++i) luts[i] = (rng() % 5 == 0) ? 255 : static_cast<uint8_t>(rng() % 6);
  for (int i = 256; i < 512; ++i) luts[i] = static_cast<uint8_t>(rng() % 6);
  for (int s = 0; s < 256; ++s) luts[512 + s] = static_cast<uint8_t>(1 + rng() % 14);
  const Tables t{luts.data(), 2};
  auto a = CachedFastTables(t), b = CachedFastTables(t);
  IZ_EXPECT(a == b);  // the same bytes share one build
  FastTables fresh;
  BuildFastTables(t, fresh);
  IZ_EXPECT(std::memcmp(a->fast, fresh.fast, sizeof fresh.fast) == 0 &&
            std::memcmp(a->quad, fresh.quad, sizeof fresh.quad) == 0);
  for (size_t at : {size_t(3), size_t(300), size_t(512 + 5)}) {  // root table, child table, length row
    std::vector<uint8_t> other = luts;
    other[at] = static_cast<uint8_t>(other[at] == 1 ? 2 : 1);
    auto c = CachedFastTables(Tables{other.data(), 2});
    BuildFastTables(Tables{other.data(), 2}, fresh);
    IZ_EXPECT(c != a);
    IZ_EXPECT(std::memcmp(c->fast, fresh.fast, sizeof fresh.fast) == 0 &&
              std::memcmp(c->quad, fresh.quad, sizeof fresh.quad) == 0);
  }
  IZ_EXPECT(CachedFastTables(t) == a);  // still cached after a few other units
}

IZ_TEST(df11_decodes_mixing_quad_entries_and_both_fallbacks) {
  std::mt19937_64 rng(13);
  // One dominant exponent (1-bit code) beside rare ones: codes of 1..4 bits fill quad
  // entries, 12..14-bit codes take the 12-bit table, longer ones the unit's tables
  // (and end a refill group early). Several blocks, odd lengths, 1 and 2 threads.
  std::vector<std::pair<uint32_t, uint32_t>> hist = {
      {120, 1u << 20}, {121, 1u << 18}, {119, 1u << 16}, {122, 1u << 14}};
  for (uint32_t e = 80; e < 118; ++e) hist.push_back({e, 1u + e % 7});
  for (uint32_t max_len : {32u, 14u, 12u}) ExpectDecodes(Weights(hist, 300001, rng), max_len);
  // Flat: every code 5-6 bits (two per entry at most).
  std::vector<std::pair<uint32_t, uint32_t>> flat;
  for (uint32_t e = 90; e < 130; ++e) flat.push_back({e, 1});
  ExpectDecodes(Weights(flat, 100003, rng), 32);
  // Entropy 0: 1-bit codes, four per entry, ~32k codes per block.
  ExpectDecodes(Weights({{127, 1}}, 200000, rng), 32);
}

IZ_TEST(df11_rebuild_paths_give_every_bf16_word) {
  // All 65,536 words through every loop, at every alignment of the output, with plain
  // and streaming stores; the vector loops where this CPU (and INFERZIP_SIMD) allow them.
  std::vector<uint8_t> exps(65536 + 64), sm(65536 + 64);
  std::vector<uint16_t> want(65536 + 64);
  for (uint32_t w = 0; w < 65536; ++w) {
    exps[w] = static_cast<uint8_t>(ExponentOf(static_cast<uint16_t>(w)));
    sm[w] = SignMantissaOf(static_cast<uint16_t>(w));
    want[w] = static_cast<uint16_t>(w);
  }
  std::vector<uint16_t> out(65536 + 80);
  bool avx2_ran = false, avx512_ran = false;
  for (size_t shift = 0; shift < 9; ++shift) {
    for (size_t n : {size_t(65536), size_t(65536 - 7), size_t(31), size_t(1), size_t(0)}) {
      std::fill(out.begin(), out.end(), 0xDEAD);
      RebuildRunPortable(exps.data(), sm.data(), out.data() + shift, n);
      IZ_EXPECT(std::equal(want.begin(), want.begin() + n, out.begin() + shift));
      IZ_EXPECT_EQ(out[shift + n], 0xDEAD);
      for (bool stream : {false, true}) {
        for (int level = 0; level < 2; ++level) {
          std::fill(out.begin(), out.end(), 0xDEAD);
          const auto run = level == 0 ? RebuildRunAvx2 : RebuildRunAvx512;
          if (!run(exps.data(), sm.data(), out.data() + shift, n, stream)) continue;
          (level == 0 ? avx2_ran : avx512_ran) = true;
          IZ_EXPECT(std::equal(want.begin(), want.begin() + n, out.begin() + shift));
          IZ_EXPECT_EQ(out[shift + n], 0xDEAD);
          if (shift > 0) IZ_EXPECT_EQ(out[shift - 1], 0xDEAD);
        }
      }
    }
  }
#if IZ_X86_SIMD
  IZ_EXPECT_EQ(avx2_ran, iz::HasAvx2Fma());
  IZ_EXPECT_EQ(avx512_ran, iz::CpuSimdLevel() == iz::SimdLevel::kAvx512);
#else
  IZ_EXPECT(!avx2_ran && !avx512_ran);
#endif
}
