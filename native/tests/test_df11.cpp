// Native tests of the DFloat11 codec core (run under ASan + UBSan in CI).
#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "native/core/df11/codec.h"
#include "native/shared/df11/format.h"
#include "native/tests/testing.h"

using namespace iz::df11;

namespace {

// Cost of the best code with lengths <= limit, by brute force over length vectors (tiny alphabets).
uint64_t BruteForceCost(const std::vector<uint64_t>& w, uint32_t limit) {
  uint64_t best = UINT64_MAX;
  std::vector<uint32_t> len(w.size(), 1);
  for (;;) {
    double kraft = 0;
    for (uint32_t l : len) kraft += 1.0 / double(uint64_t(1) << l);
    if (kraft <= 1.0 + 1e-12) {
      uint64_t cost = 0;
      for (size_t i = 0; i < w.size(); ++i) cost += w[i] * len[i];
      best = std::min(best, cost);
    }
    size_t k = 0;
    while (k < len.size() && len[k] == limit) len[k++] = 1;
    if (k == len.size()) break;
    ++len[k];
  }
  return best;
}

UnitView View(const EncodedUnit& u) {
  return UnitView{u.luts.data(),          u.luts.size(),          u.encoded_exponent.data(), u.encoded_exponent.size(),
                  u.sign_mantissa.data(), u.sign_mantissa.size(), u.output_positions.data(), u.output_positions.size(),
                  u.gaps.data(),          u.gaps.size()};
}

}  // namespace

IZ_TEST(df11_package_merge_is_optimal_under_the_limit) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 60; ++trial) {
    const size_t m = 2 + rng() % 5;
    const uint32_t limit = 3 + rng() % 3;
    std::array<uint64_t, 256> counts{};
    std::vector<uint64_t> w;
    for (size_t i = 0; i < m; ++i) {
      uint64_t c = 1 + (rng() % 2 ? rng() % 1000 : rng() % 5);
      counts[10 + 7 * i] = c;
      w.push_back(c);
    }
    auto lengths = LimitedCodeLengths(counts, limit);
    uint64_t cost = 0;
    double kraft = 0;
    for (size_t i = 0; i < m; ++i) {
      uint32_t l = lengths[10 + 7 * i];
      IZ_EXPECT(l >= 1 && l <= limit);
      cost += w[i] * l;
      kraft += 1.0 / double(uint64_t(1) << l);
    }
    IZ_EXPECT(kraft <= 1.0 + 1e-12);
    IZ_EXPECT_EQ(cost, BruteForceCost(w, limit));
  }
}

IZ_TEST(df11_single_symbol_gets_one_bit_and_impossible_limits_are_refused) {
  std::array<uint64_t, 256> counts{};
  counts[127] = 1000;
  IZ_EXPECT_EQ(int(LimitedCodeLengths(counts, 32)[127]), 1);
  for (int s = 0; s < 20; ++s) counts[s] = 1;
  IZ_EXPECT_THROWS_CODE(LimitedCodeLengths(counts, 4), InvalidArgument);
}

IZ_TEST(df11_round_trip_fast_decoder_and_kernel_simulator) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::vector<uint16_t> a(150000), b(777);
  for (auto& x : a) {
    float f = nd(rng);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    x = static_cast<uint16_t>((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
  }
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint16_t>((i * 97) & 0xF7FF);  // exponents < 240
  EncodedUnit u = Encode({Span{a.data(), a.size()}, Span{b.data(), b.size()}});
  IZ_EXPECT(u.raw_inputs.empty());
  IZ_EXPECT_EQ(u.split_positions.size(), size_t(1));
  std::vector<uint16_t> want(a);
  want.insert(want.end(), b.begin(), b.end());
  std::vector<uint16_t> fast(want.size()), sim(want.size());
  DecodeCpu(View(u), fast.data(), fast.size(), 2);
  DecodeSimulateKernel(View(u), sim.data(), sim.size());
  IZ_EXPECT(fast == want);
  IZ_EXPECT(sim == want);
  IZ_EXPECT_THROWS_CODE(DecodeCpu(View(u), fast.data(), fast.size() - 1), ShapeMismatch);
}

IZ_TEST(df11_unencodable_inputs_are_reported_not_altered) {
  std::vector<uint16_t> ok(100, 0x3F80), inf(3, 0x7F80);
  EncodedUnit u = Encode({Span{ok.data(), ok.size()}, Span{inf.data(), inf.size()}});
  IZ_EXPECT_EQ(u.raw_inputs.size(), size_t(1));
  IZ_EXPECT_EQ(u.raw_inputs[0], 1u);
  IZ_EXPECT_EQ(u.n_elements, uint64_t(100));
}

IZ_TEST(df11_corrupt_units_throw_corrupt_data) {
  std::vector<uint16_t> w(60000);
  std::mt19937 rng(9);
  for (auto& x : w) x = static_cast<uint16_t>(0x3C00 + (rng() % 0x0800));
  EncodedUnit u = Encode({Span{w.data(), w.size()}});
  std::vector<uint16_t> out(w.size());
  EncodedUnit bad = u;
  bad.gaps[3] ^= 0x08;
  IZ_EXPECT_THROWS_CODE(DecodeCpu(View(bad), out.data(), out.size()), CorruptData);
  IZ_EXPECT_THROWS_CODE(DecodeSimulateKernel(View(bad), out.data(), out.size()), CorruptData);
  bad = u;
  bad.encoded_exponent.resize(bad.encoded_exponent.size() / 2);
  IZ_EXPECT_THROWS_CODE(DecodeCpu(View(bad), out.data(), out.size()), CorruptData);
  bad = u;
  bad.luts[0] = 241;  // table 15 does not exist
  IZ_EXPECT_THROWS_CODE(ValidateUnit(View(bad)), CorruptData);
}

IZ_TEST(df11_format_helpers) {
  for (uint32_t w = 0; w < 65536; ++w) {
    const uint16_t v = static_cast<uint16_t>(w);
    IZ_EXPECT_EQ(RebuildBf16(ExponentOf(v), SignMantissaOf(v)), v);
  }
  const uint8_t gaps[] = {0b10101'111, 0b00'00001'1, 0b0000'0000};
  IZ_EXPECT_EQ(ReadGap(gaps, 3, 0), 21u);
  IZ_EXPECT_EQ(ReadGap(gaps, 3, 1), 28u);
  IZ_EXPECT_EQ(ReadGap(gaps, 3, 2), 1u);
}
