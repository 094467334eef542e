// Tests of the TopV / Zero-TPrune device dispatch (native/core/tokens/reduce_device.h) on
// host memory, under the sanitizers: equal to the CPU backend bit for bit (f32 and bf16
// buffers), kept rows gathered from the input's own bytes, typed errors for hostile
// buffers, and the shared per-element terms (native/shared/tokens/reduce_hd.h) at their edges.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "native/core/device.h"
#include "native/core/tokens/reduce.h"
#include "native/core/tokens/reduce_device.h"
#include "native/shared/tokens/reduce_hd.h"
#include "native/tests/testing.h"

namespace {

using namespace iz::tokens;

using iz::testing::Noise;

// Host DeviceMemory holding v in dt (bf16 rounds each value; `rounded` gets what it holds).
iz::MemoryPtr Upload(const std::vector<float>& v, TokDType dt, std::vector<float>* rounded) {
  auto m = iz::DeviceMemory::Allocate(iz::Device::Cpu, v.size() * static_cast<size_t>(DTypeBytes(dt)));
  rounded->resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    StoreFromF32(m->data(), int64_t(i), v[i], dt);
    (*rounded)[i] = LoadAsF32(m->data(), int64_t(i), dt);
  }
  return m;
}

void ExpectSameSelection(const ScoredSelection& a, const ScoredSelection& b) {
  IZ_EXPECT(a.kept == b.kept);
  IZ_EXPECT(a.dropped == b.dropped);
  IZ_EXPECT(a.scores.size() == b.scores.size() &&
            std::memcmp(a.scores.data(), b.scores.data(), a.scores.size() * sizeof(float)) == 0);
}

// The kept rows of src [batch, n, row_bytes] equal out [batch, keep, row_bytes] byte for byte.
void ExpectGathered(const iz::DeviceMemory& src, const iz::DeviceMemory& out, int64_t batch, int64_t n, int64_t keep,
                    int64_t row_bytes, const std::vector<int32_t>& kept) {
  IZ_EXPECT_EQ(static_cast<int64_t>(out.bytes()), batch * keep * row_bytes);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < keep; ++j)
      IZ_EXPECT(std::memcmp(out.as<uint8_t>() + (b * keep + j) * row_bytes,
                            src.as<uint8_t>() + (b * n + kept[size_t(b * keep + j)]) * row_bytes,
                            size_t(row_bytes)) == 0);
}

}  // namespace

IZ_TEST(transport_device_on_host_memory_equals_cpu_backend) {
  for (TokDType dt : {TokDType::F32, TokDType::BF16}) {
    TransportParams p;
    p.n = 12;
    p.c = 5;
    p.grid_h = 3;
    p.grid_w = 4;
    p.text = 3;
    p.keep = 5;
    p.recover = 1;
    p.iters = 7;
    const int64_t batch = 2;
    std::vector<float> vis, txt;
    const auto vm = Upload(Noise(size_t(batch * p.n * p.c), 3), dt, &vis);
    const auto tm = Upload(Noise(size_t(batch * p.text * p.c), 4), dt, &txt);
    const DeviceSelection got = PruneByTransportDevice(p, batch, {vm, dt}, {}, {tm, dt});
    ScoredSelection want;
    for (int64_t b = 0; b < batch; ++b) {
      const ScoredSelection s =
          PruneByTransportCpu(vis.data() + b * p.n * p.c, nullptr, txt.data() + b * p.text * p.c, p);
      want.kept.insert(want.kept.end(), s.kept.begin(), s.kept.end());
      want.dropped.insert(want.dropped.end(), s.dropped.begin(), s.dropped.end());
      want.scores.insert(want.scores.end(), s.scores.begin(), s.scores.end());
    }
    ExpectSameSelection(got.sel, want);
    ExpectGathered(*vm, *got.tokens, batch, p.n, p.keep, p.c * DTypeBytes(dt), got.sel.kept);
  }
}

IZ_TEST(graph_device_on_host_memory_equals_cpu_backend) {
  GraphParams p;
  p.n = 9;
  p.c = 4;
  p.heads = 2;
  p.iters = 12;
  p.keep = 4;
  p.similar_share = 0.6;
  std::vector<float> tok, att;
  const auto tm = Upload(Noise(size_t(p.n * p.c), 7), TokDType::F16, &tok);
  std::vector<float> raw = Noise(size_t(p.heads * p.n * p.n), 8, 0.0f);
  std::fill(raw.begin(), raw.begin() + p.n, 0.0f);  // a zero row: uniform
  const auto am = Upload(raw, TokDType::F32, &att);
  const DeviceSelection got = PruneByAttentionGraphDevice(p, 1, {tm, TokDType::F16}, {am, TokDType::F32});
  ExpectSameSelection(got.sel, PruneByAttentionGraphCpu(tok.data(), att.data(), p));
  ExpectGathered(*tm, *got.tokens, 1, p.n, p.keep, p.c * 2, got.sel.kept);
}

IZ_TEST(reduce_device_rejects_hostile_buffers) {
  std::vector<float> held;
  const auto small = Upload(Noise(8, 1), TokDType::F32, &held);
  TransportParams p;
  p.n = 4;
  p.c = 2;
  p.grid_h = 2;
  p.grid_w = 2;
  p.keep = 2;
  IZ_EXPECT_THROWS_CODE(PruneByTransportDevice(p, 2, {small, TokDType::F32}, {}, {}), ShapeMismatch);
  IZ_EXPECT_THROWS_CODE(PruneByTransportDevice(p, 1, {}, {}, {}), InvalidArgument);
  TransportParams huge = p;
  huge.n = huge.c = huge.grid_h = int64_t(1) << 31;
  huge.grid_w = 1;
  IZ_EXPECT_THROWS_CODE(PruneByTransportDevice(huge, 1, {small, TokDType::F32}, {}, {}), ShapeMismatch);
  TransportParams claims_target = p;
  claims_target.targets_pos = p.n;  // a target count without a target buffer
  IZ_EXPECT_THROWS_CODE(PruneByTransportDevice(claims_target, 1, {small, TokDType::F32}, {}, {}), ShapeMismatch);
  TransportParams bad_keep = p;
  bad_keep.keep = 5;
  IZ_EXPECT_THROWS_CODE(PruneByTransportDevice(bad_keep, 1, {small, TokDType::F32}, {}, {}), InvalidArgument);
  std::vector<float> nan = Noise(8, 2);
  nan[5] = std::numeric_limits<float>::quiet_NaN();
  const auto dirty = Upload(nan, TokDType::F32, &held);
  IZ_EXPECT_THROWS_CODE(PruneByTransportDevice(p, 1, {dirty, TokDType::F32}, {}, {}), InvalidArgument);

  const auto probs = Upload(Noise(8, 9, 0.0f), TokDType::F32, &held);  // attention in [0, 1)
  GraphParams g;
  g.n = 2;
  g.c = 4;
  g.heads = 2;
  g.keep = 1;
  // tokens [2, 4] and attention [2, 2, 2] fill the 8 floats exactly: runs
  IZ_EXPECT_EQ(PruneByAttentionGraphDevice(g, 1, {small, TokDType::F32}, {probs, TokDType::F32}).sel.kept.size(),
               size_t(1));
  g.heads = 3;  // attention now needs 12 floats
  IZ_EXPECT_THROWS_CODE(PruneByAttentionGraphDevice(g, 1, {small, TokDType::F32}, {probs, TokDType::F32}),
                        ShapeMismatch);
  g.n = int64_t(1) << 31;
  g.heads = int64_t(1) << 31;
  IZ_EXPECT_THROWS_CODE(PruneByAttentionGraphDevice(g, 1, {small, TokDType::F32}, {probs, TokDType::F32}),
                        ShapeMismatch);
}

IZ_TEST(reduce_shared_terms_at_their_edges) {
  // a 1 x 1 grid: no diagonal and no radius, so both spatial terms vanish instead of 0 / 0
  const TransportGeometry one = TransportGeometryOf(1, 1, 1);
  IZ_EXPECT(one.dg == 0 && one.rc == 0);
  IZ_EXPECT(TransportCentralTerm(0, one, 0.25) == 0.0);
  IZ_EXPECT(TransportSpatialTerm(0, true, 0, one, 0.25) == 0.0);
  // 3 x 3: centre (1, 1), corners at sqrt(2), diagonal 2 sqrt(2)
  const TransportGeometry g = TransportGeometryOf(3, 3, 9);
  IZ_EXPECT(g.cy == 1.0 && g.cx == 1.0 && g.rc == std::sqrt(2.0) && g.dg == std::sqrt(8.0));
  IZ_EXPECT(TransportCentralTerm(4, g, 0.5) == 0.0);
  IZ_EXPECT(TransportCentralTerm(0, g, 0.5) == 0.5);
  IZ_EXPECT(TransportSpatialTerm(0, true, 8, g, 0.25) == 0.25);
  IZ_EXPECT(TransportSpatialTerm(0, false, 8, g, 0.25) == 0.0);  // text targets have no position
  // zero vectors: cosine 0, not NaN
  IZ_EXPECT(GuardedCosineHd(0.0, 0.0, 0.0) == 0.0);
  IZ_EXPECT(SinkhornKernel(3.0, 3.0, 0.1) == 1.0);
  // a zero attention row spreads s_j / n to every key
  IZ_EXPECT(PageRankWeight(0.5, 0.0, 4) == 0.125);
  IZ_EXPECT(PageRankTerm(0.0f, 0.125, 0.0) == 0.125);
  IZ_EXPECT(PageRankTerm(0.5f, 0.25, 2.0) == 0.125);
}
