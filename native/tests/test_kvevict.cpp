// Native tests of H2O / D2O eviction (native/core/kvquant/evict.cpp): the spec's H2O check
// vector through the cache, the saved eviction state round trip, and rejected options.
#include <cmath>
#include <vector>

#include "native/core/kvquant/cache.h"
#include "native/core/kvquant/serialize.h"
#include "native/tests/testing.h"

using namespace iz::kv;

namespace {

const float kK[9][2] = {{0, 2}, {-1, -2}, {2, -1}, {0, -2}, {-1, 0}, {2, 2}, {1, 2}, {-2, -1}, {1, -2}};
const float kV[9][2] = {{-2, -1}, {1, -1}, {-2, -2}, {2, -1}, {2, -1}, {1, 2}, {-1, 0}, {2, 1}, {-1, -2}};

// Rows t0..t1 of the check vector padded to head_dim 8.
std::vector<float> Rows(const float (*x)[2], int t0, int t1) {
  std::vector<float> out(size_t(t1 - t0) * 8, 0.0f);
  for (int t = t0; t < t1; ++t) {
    out[size_t(t - t0) * 8] = x[t][0];
    out[size_t(t - t0) * 8 + 1] = x[t][1];
  }
  return out;
}

CacheOptions CheckOptions(int method) {
  CacheOptions o;
  o.scheme = kFp8;
  o.bits = 8;
  o.head_dim = 8;
  o.group = 32;
  o.channel_group = 8;
  o.window = 256;  // nothing quantized: exact rows
  o.evict_method = method;
  o.evict_budget = 4;
  o.evict_recent = 0.5;
  return o;
}

void Step(KvCache& c, int t0, int t1, std::vector<float>* out) {
  std::vector<float> k = Rows(kK, t0, t1), v = Rows(kV, t0, t1);
  AppendInput in;
  in.k = k.data();
  in.v = v.data();
  in.n = t1 - t0;
  c.Append(in);
  out->assign(k.size(), 0.0f);
  c.Attention(k.data(), 1, t1 - t0, 1.0f / std::sqrt(2.0f), true, out->data());
}

}  // namespace

IZ_TEST(kv_evict_h2o_check_vector) {
  KvCache c(CheckOptions(kEvictH2O));
  std::vector<float> out;
  Step(c, 0, 6, &out);
  for (int t = 6; t < 9; ++t) Step(c, t, t + 1, &out);
  std::vector<int32_t> pos;
  std::vector<float> score;
  c.KeptPositions(pos, score);
  IZ_EXPECT_EQ(pos.size(), size_t(4));
  const int32_t want[4] = {1, 5, 7, 8};
  const float want_s[4] = {2.3115f, 1.5099f, 0.6884f, 0.7795f};
  for (int i = 0; i < 4; ++i) {
    IZ_EXPECT_EQ(pos[size_t(i)], want[i]);
    IZ_EXPECT(std::fabs(score[size_t(i)] - want_s[i]) < 1e-3f);
  }
  IZ_EXPECT(std::fabs(out[0] + 0.5418f) < 1e-3f && std::fabs(out[1] + 1.7148f) < 1e-3f);
  IZ_EXPECT_EQ(c.KeptTokens(), int64_t(4));
  IZ_EXPECT_EQ(c.Stats().slots, int64_t(4));  // one head: evicted slots are freed
}

IZ_TEST(kv_evict_state_round_trip_and_damage) {
  KvCache c(CheckOptions(kEvictD2O));
  std::vector<float> out;
  Step(c, 0, 6, &out);
  Step(c, 6, 7, &out);
  Sections saved = SerializeCache(c);
  IZ_EXPECT(saved.count("evict") == 1);
  KvCache back(CheckOptions(kEvictD2O));
  DeserializeCache(back, saved);
  std::vector<float> a, b;
  Step(c, 7, 8, &a);
  Step(back, 7, 8, &b);
  IZ_EXPECT(a == b);
  // damaged eviction state: truncated, a live flag of 2, missing
  Sections bad = saved;
  bad["evict"].pop_back();
  KvCache x(CheckOptions(kEvictD2O));
  IZ_EXPECT_THROWS_CODE(DeserializeCache(x, bad), CorruptData);
  bad = saved;
  bad.erase("evict");
  KvCache y(CheckOptions(kEvictD2O));
  IZ_EXPECT_THROWS_CODE(DeserializeCache(y, bad), CorruptData);
  KvCache z(CheckOptions(kEvictNone));  // a cache without eviction refuses the section
  IZ_EXPECT_THROWS_CODE(DeserializeCache(z, saved), CorruptData);
}

IZ_TEST(kv_evict_bad_options_are_rejected) {
  CacheOptions o = CheckOptions(kEvictH2O);
  o.evict_budget = 0;
  IZ_EXPECT_THROWS_CODE(KvCache{o}, InvalidArgument);
  o.evict_budget = 1.5;
  IZ_EXPECT_THROWS_CODE(KvCache{o}, InvalidArgument);
  o.evict_budget = 4;
  o.evict_recent = 5;
  IZ_EXPECT_THROWS_CODE(KvCache{o}, InvalidArgument);
  o.evict_recent = NAN;
  IZ_EXPECT_THROWS_CODE(KvCache{o}, InvalidArgument);
  o.evict_recent = 2;
  o.evict_method = 7;
  IZ_EXPECT_THROWS_CODE(KvCache{o}, InvalidArgument);
  o.evict_method = kEvictD2O;
  o.scheme = kVidKV;
  o.bits = 2;
  IZ_EXPECT_THROWS_CODE(KvCache{o}, Unsupported);
}
