// Tests of TempMe's native pieces the JS suite reaches only indirectly: the shared
// keep-order placement (clips_hd.h, also run by the CUDA cross-clip kernels) on a known
// case, TempMe on CPU device memory against the host entry point, and typed errors for
// impossible device arguments.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "native/core/device.h"
#include "native/core/tokens/clips.h"
#include "native/shared/tokens/clips_hd.h"
#include "native/tests/testing.h"

namespace {

using iz::testing::Noise;

}  // namespace

IZ_TEST(clips_keep_order_placement_known_case) {
  // 6 tokens: 1 -> 4 and 3 -> 0 merge; survivors 0, 2, 4, 5 keep their order.
  const int32_t into[6] = {-1, 4, -1, 0, -1, -1};
  int32_t dest[6], offsets[5], sources[6];
  iz::tokens::BuildKeepOrderPlacement(6, into, dest, offsets, sources, 4);
  const int32_t want_dest[6] = {0, 2, 1, 0, 2, 3};
  const int32_t want_off[5] = {0, 2, 3, 5, 6};
  const int32_t want_src[6] = {0, 3, 2, 1, 4, 5};
  for (int i = 0; i < 6; ++i) IZ_EXPECT_EQ(dest[i], want_dest[i]);
  for (int i = 0; i < 5; ++i) IZ_EXPECT_EQ(offsets[i], want_off[i]);
  for (int i = 0; i < 6; ++i) IZ_EXPECT_EQ(sources[i], want_src[i]);
}

IZ_TEST(clips_cpu_device_memory_equals_host_entry_point) {
  using namespace iz::tokens;
  ClipParams p;
  p.t = 5;
  p.p = 11;
  p.c = 6;
  p.img_keep = 0.6;
  p.cross_keep = 0.7;
  p.intra_keep = 0.8;
  const int64_t batch = 2, per = p.t * p.p * p.c;
  const std::vector<float> x = Noise(static_cast<size_t>(batch * per), 7);
  iz::MemoryPtr frames = iz::DeviceMemory::Allocate(iz::Device::Cpu, x.size() * 4);
  std::memcpy(frames->data(), x.data(), x.size() * 4);
  const ClipDeviceResult got = MergeClipsDevice(p, batch, TokDType::F32, frames);
  for (int64_t b = 0; b < batch; ++b) {
    const ClipMergeResult want = MergeClipsCpu(x.data() + b * per, p);
    const int64_t m = static_cast<int64_t>(want.sizes.size());
    IZ_EXPECT_EQ(got.rows, m);
    IZ_EXPECT(got.clip_lengths == want.clip_lengths);
    IZ_EXPECT(std::memcmp(got.x->as<float>() + b * m * p.c, want.x.data(), want.x.size() * 4) == 0);
    IZ_EXPECT(std::memcmp(got.sizes->as<float>() + b * m, want.sizes.data(), want.sizes.size() * 4) == 0);
    IZ_EXPECT(std::equal(want.assignment.begin(), want.assignment.end(), got.assignment.begin() + b * p.t * p.p));
  }
}

IZ_TEST(clips_device_rejects_impossible_arguments) {
  using namespace iz::tokens;
  ClipParams p;
  p.t = 2;
  p.p = 4;
  p.c = 3;
  iz::MemoryPtr small = iz::DeviceMemory::Allocate(iz::Device::Cpu, 4 * 23);  // one float short
  IZ_EXPECT_THROWS_CODE(MergeClipsDevice(p, 1, TokDType::F32, small), ShapeMismatch);
  IZ_EXPECT_THROWS_CODE(MergeClipsDevice(p, 1, TokDType::F32, nullptr), ShapeMismatch);
  iz::MemoryPtr ok = iz::DeviceMemory::Allocate(iz::Device::Cpu, 4 * 24, true);
  IZ_EXPECT_THROWS_CODE(MergeClipsDevice(p, 0, TokDType::F32, ok), ShapeMismatch);
  ClipParams bad = p;
  bad.cross_keep = 2;
  IZ_EXPECT_THROWS_CODE(MergeClipsDevice(bad, 1, TokDType::F32, ok), InvalidArgument);
  bad = p;
  bad.default_groups = false;
  bad.groups = {2, 0};
  IZ_EXPECT_THROWS_CODE(MergeClipsDevice(bad, 1, TokDType::F32, ok), InvalidArgument);
  std::vector<float> nan(24, 0.5f);
  nan[13] = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(ok->data(), nan.data(), nan.size() * 4);
  IZ_EXPECT_THROWS_CODE(MergeClipsDevice(p, 1, TokDType::F32, ok), InvalidArgument);
}
