// Temporal reduction of video tokens [T, P, C] on the CPU backend: DyCoke's paired-
// frame / 4-frame-window pruning and HoliTom's DP segmentation, static-token temporal
// averaging and density-peak clustering. Results match the TypeScript reference
// (test/tokens/reference/) bit for bit on f32 input.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace iz::tokens {

struct VideoShape {
  int64_t t = 0, p = 0, c = 0;  // frames, tokens per frame, channels
};

struct TemporalResult {
  std::vector<float> x;                               // [M, C]
  std::vector<int32_t> frame;                         // [M]
  std::vector<int32_t> position;                      // [M]
  std::vector<float> sizes;                           // [M]
  std::vector<int32_t> assignment;                    // [T * P], -1 = pruned
  std::vector<std::pair<int32_t, int32_t>> segments;  // HoliTom only: [first, last] frames
};

// keep: tokens kept in each compared frame, round((1 - pruneRatio) * P).
TemporalResult DyCokeCpu(const float* x, const VideoShape& s, int64_t keep, bool merge);

struct HoliTomParams {
  double tau = 0.8;
  int64_t grid_h = 0, grid_w = 0;  // 0: no grid (then pool must be 1)
  int64_t pool = 1;
  double keep_ratio = 0.5;
  double attention_share = 0.5;
  int64_t knn = 7;
  const float* attention = nullptr;  // [T * P] or null
};
TemporalResult HoliTomCpu(const float* x, const VideoShape& s, const HoliTomParams& o);

// Segments maximizing sum over segments of (#positions static throughout) x (length - 1).
// stable[f * p + q]: position q is similar between frames f and f + 1 (f < t - 1).
std::vector<std::pair<int32_t, int32_t>> SegmentFrames(const uint8_t* stable, int64_t t, int64_t p);

// DPC-KNN over rows `ids` of x [*, c]: centres (ranked by density x distance) and, for
// every id, the index into `centres` of its cluster. Memory: ids^2 doubles.
struct Clusters {
  std::vector<int32_t> centres;  // indices into ids
  std::vector<int32_t> label;    // [ids.size()]
};
Clusters DensityPeakClusters(const float* x, int64_t c, const std::vector<int32_t>& ids, int64_t centres_wanted,
                             int64_t knn);

// Largest token set clustered at once; longer sets are clustered in consecutive chunks.
constexpr int64_t kMaxClusterChunk = 2048;

}  // namespace iz::tokens
