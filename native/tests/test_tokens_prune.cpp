// Tests of the native pruning and temporal passes that the JS suite cannot reach:
// the lane-packed tiles against plain f64 loops (bit for bit), edge shapes under the
// sanitizers, and error codes for impossible arguments.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "native/core/tokens/lanes.h"
#include "native/core/tokens/prune.h"
#include "native/core/tokens/temporal.h"
#include "native/tests/testing.h"

namespace {

using iz::testing::Noise;

}  // namespace

IZ_TEST(lane_tiles_equal_plain_f64_loops_bit_for_bit) {
  using namespace iz::tokens;
  for (int64_t c : {1, 3, 17, 64}) {
    const int64_t n = 13;  // not a multiple of 4 or 8: padding lanes are exercised
    const std::vector<float> x = Noise(static_cast<size_t>(n * c), static_cast<uint32_t>(c));
    std::vector<int32_t> ids(n);
    for (int64_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>(n - 1 - i);
    const PackedRows p = PackRows(x.data(), c, ids.data(), n);
    IZ_EXPECT_EQ(p.blocks % 2, 0);
    double out[4][8];
    for (int64_t ib = 0; ib * 4 < n; ++ib) {
      for (int64_t jb = 0; jb * 4 < n; jb += 2) {
        for (PairOp op : {PairOp::kDot, PairOp::kSquaredDistance}) {
          Tile4x8(p, ib, p, jb, op, out);
          for (int64_t r = 0; r < 4 && ib * 4 + r < n; ++r) {
            for (int64_t l = 0; l < 8 && jb * 4 + l < n; ++l) {
              const float* a = x.data() + int64_t(ids[ib * 4 + r]) * c;
              const float* b = x.data() + int64_t(ids[jb * 4 + l]) * c;
              double s = 0;
              for (int64_t k = 0; k < c; ++k) {
                const double v = op == PairOp::kDot ? double(a[k]) * double(b[k]) : (double(a[k]) - double(b[k]));
                s += op == PairOp::kDot ? v : v * v;
              }
              IZ_EXPECT(std::memcmp(&s, &out[r][l], sizeof s) == 0);
            }
          }
        }
      }
    }
  }
}

IZ_TEST(segment_frames_spec_example) {
  // position 0 static everywhere, 1 and 2 static only within frames 0-2
  const uint8_t stable[] = {1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1};
  const auto segs = iz::tokens::SegmentFrames(stable, 5, 3);
  IZ_EXPECT_EQ(segs.size(), size_t(2));
  IZ_EXPECT_EQ(segs[0].first, 0);
  IZ_EXPECT_EQ(segs[0].second, 2);
  IZ_EXPECT_EQ(segs[1].first, 3);
  IZ_EXPECT_EQ(segs[1].second, 4);
}

IZ_TEST(density_peaks_find_one_centre_per_blob) {
  const int64_t c = 4, m = 30;
  std::vector<float> x = Noise(static_cast<size_t>(m * c), 7);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t k = 0; k < c; ++k) x[i * c + k] = x[i * c + k] * 0.05f + float(i % 3) * 10;
  std::vector<int32_t> ids(m);
  for (int64_t i = 0; i < m; ++i) ids[i] = static_cast<int32_t>(i);
  const auto cl = iz::tokens::DensityPeakClusters(x.data(), c, ids, 3, 7);
  IZ_EXPECT_EQ(cl.centres.size(), size_t(3));
  for (int64_t i = 0; i < m; ++i) IZ_EXPECT_EQ(cl.centres[cl.label[i]] % 3, int32_t(i % 3));
  // one token: its own centre
  const auto one = iz::tokens::DensityPeakClusters(x.data(), c, {5}, 4, 7);
  IZ_EXPECT_EQ(one.centres.size(), size_t(1));
  IZ_EXPECT_EQ(one.label[0], 0);
}

IZ_TEST(temporal_passes_handle_tiny_shapes) {
  const std::vector<float> x = Noise(24, 3);
  iz::tokens::VideoShape s{1, 1, 24};
  const auto dy = iz::tokens::DyCokeCpu(x.data(), s, 0, true);
  IZ_EXPECT_EQ(dy.frame.size(), size_t(1));
  iz::tokens::HoliTomParams o;
  const auto ht = iz::tokens::HoliTomCpu(x.data(), s, o);
  IZ_EXPECT_EQ(ht.segments.size(), size_t(1));
  IZ_EXPECT_EQ(ht.assignment.size(), size_t(1));
  s = {3, 2, 4};
  const auto merged = iz::tokens::DyCokeCpu(x.data(), s, 0, true);
  float total = 0;
  for (float v : merged.sizes) total += v;
  IZ_EXPECT_EQ(total, 6.0f);
}

IZ_TEST(pruning_rejects_impossible_arguments) {
  std::vector<float> x = Noise(12, 5);
  const std::vector<float> att = {0.1f, 0.5f, 0.2f, 0.3f};
  IZ_EXPECT_THROWS_CODE(iz::tokens::SelectTopAttention(att.data(), 4, 3, 2, 0), InvalidArgument);
  IZ_EXPECT_THROWS_CODE(iz::tokens::SelectTopAttention(att.data(), 4, 0, 4, 5), InvalidArgument);
  IZ_EXPECT_THROWS_CODE(iz::tokens::MergeByAttentionCpu(x.data(), 4, 3, nullptr, att.data(), 0, 4, 0), InvalidArgument);
  const float bad_sizes[] = {1, 0, 1, 1};
  IZ_EXPECT_THROWS_CODE(iz::tokens::MergeByAttentionCpu(x.data(), 4, 3, bad_sizes, att.data(), 0, 4, 2),
                        InvalidArgument);
  x[7] = std::numeric_limits<float>::quiet_NaN();
  IZ_EXPECT_THROWS_CODE(iz::tokens::MergeByAttentionCpu(x.data(), 4, 3, nullptr, att.data(), 0, 4, 2), InvalidArgument);
  IZ_EXPECT_THROWS_CODE(iz::tokens::DyCokeCpu(x.data(), {1, 4, 3}, 2, false), InvalidArgument);
  IZ_EXPECT_THROWS_CODE(iz::tokens::MeanAttention(x.data(), 3, 4), InvalidArgument);
  iz::tokens::HoliTomParams o;
  o.grid_h = 3;
  o.grid_w = 3;
  IZ_EXPECT_THROWS_CODE(iz::tokens::HoliTomCpu(att.data(), {1, 4, 1}, o), ShapeMismatch);
  IZ_EXPECT_THROWS_CODE(iz::tokens::KVPruneStep(att.data(), 1, 4, nullptr, false, 0, 0.9), InvalidArgument);
}
