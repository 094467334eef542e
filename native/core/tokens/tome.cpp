// CPU backend of ToMe bipartite soft matching: normalize, cosine scores on the GEMM core
// with a fused row-wise argmax (the score matrix is never stored), top-r by
// a strict total order, then a deterministic size-weighted scatter-reduce.
#include "native/core/tokens/tome.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "native/core/gemm/gemm.h"
#include "native/core/parallel.h"
#include "native/core/simd.h"
#include "native/shared/error.h"

#if INFERZIP_WITH_CUDA
#include "cuda/tokens/tome.h"
#endif

namespace iz::tokens {

namespace {

constexpr int64_t kMaxTokens = int64_t(1) << 30;

// Largest |v| bit pattern of v: one branch-free max the compiler vectorizes per target.
template <SimdLevel L>
IZ_FORCE_INLINE uint32_t MaxAbsBitsBody(const float* v, int64_t count) {
  uint32_t m = 0;
  for (int64_t i = 0; i < count; ++i) {
    uint32_t u;
    std::memcpy(&u, v + i, 4);
    u &= 0x7fffffffu;
    m = u > m ? u : m;
  }
  return m;
}
IZ_SIMD_DGEN(uint32_t, MaxAbsBits, (const float* v, int64_t count), (v, count))

void CheckFinite(const float* v, int64_t count, const char* what) {
  if (MaxAbsBits(v, count) < 0x7f800000u) return;  // every exponent below all-ones: all finite
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(v[i])) {
      Fail(ErrorCode::InvalidArgument, std::string(what) + " holds a non-finite value (NaN or Inf) at element " +
                                           std::to_string(i) + "; clean the input before merging");
    }
  }
}

// Sum of squares in f64 over 8 interleaved partial sums, combined pairwise. The f32 -> f64
// products are exact, so a contracted multiply-add rounds alike: every target gives one result.
template <SimdLevel L>
IZ_FORCE_INLINE double SumSquaresF64Body(const float* x, int64_t n) {
  double acc[8] = {};
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int j = 0; j < 8; ++j) acc[j] += double(x[k + j]) * double(x[k + j]);
  for (int j = 0; k < n; ++k, ++j) acc[j] += double(x[k]) * double(x[k]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
IZ_SIMD_DGEN(double, SumSquaresF64, (const float* x, int64_t n), (x, n))

// Elements a memory-bound pass gets per thread before it is split: below this, starting a
// thread costs more than it saves, and on a loaded machine each extra thread of a short pass
// waits a scheduling slice (a ToMe step at N = 576 ran 5x slower on 2 threads than on 1).
constexpr int64_t kPassGrainElems = int64_t(2) << 20;

// 1 / |row| of every metric row.
void InvNorms(const float* metric, int64_t rows, int64_t cm, float* inv) {
  const size_t grain = static_cast<size_t>(std::max<int64_t>(64, kPassGrainElems / std::max<int64_t>(cm, 1)));
  ParallelFor(static_cast<size_t>(rows), grain, [&](size_t lo, size_t hi) {
    for (size_t row = lo; row < hi; ++row)
      inv[row] = InvNorm(static_cast<float>(SumSquaresF64(metric + static_cast<int64_t>(row) * cm, cm)));
  });
}

// Marks the r best-scoring unprotected A tokens (score desc, index asc).
void SelectTopR(int64_t na, const int32_t* best_b, const float* best_score, int64_t r, uint8_t* merged_a) {
  std::vector<int32_t> cand;
  cand.reserve(static_cast<size_t>(na));
  for (int64_t a = 0; a < na; ++a)
    if (best_b[a] >= 0) cand.push_back(static_cast<int32_t>(a));
  IZ_CHECK(static_cast<int64_t>(cand.size()) >= r, Internal, "fewer mergeable tokens than r after validation");
  auto before = [&](int32_t x, int32_t y) { return RankBefore(best_score[x], x, best_score[y], y); };
  if (r > 0 && r < static_cast<int64_t>(cand.size()))
    std::nth_element(cand.begin(), cand.begin() + r, cand.end(), before);
  std::memset(merged_a, 0, static_cast<size_t>(na));
  for (int64_t i = 0; i < r; ++i) merged_a[cand[i]] = 1;
}

}  // namespace

int64_t TomeMaxR(int64_t n, const uint8_t* protect) {
  int64_t prot = 0, free_a = 0, free_b = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool p = protect && protect[i];
    prot += p;
    if (!p) ((i & 1) ? free_b : free_a) += 1;
  }
  if (free_b == 0) return 0;
  return std::min(free_a, (n - prot) / 2);
}

void TomeValidateShape(const TomeShape& s, const uint8_t* protect) {
  IZ_CHECK(s.batch >= 1 && s.batch <= kMaxTokens, ShapeMismatch, "batch must be >= 1");
  IZ_CHECK(s.n >= 1 && s.n <= kMaxTokens && s.n <= INT32_MAX, ShapeMismatch, "token count must be in [1, 2^30]");
  IZ_CHECK(s.c >= 1 && s.cm >= 1, ShapeMismatch, "channel counts must be >= 1");
  IZ_CHECK(s.batch * s.n <= kMaxTokens * 4 && s.n * s.c <= (int64_t(1) << 36) && s.n * s.cm <= (int64_t(1) << 36),
           ShapeMismatch, "tensor too large for one merge step");
  IZ_CHECK(s.r >= 0, InvalidArgument, "r must be >= 0");
  const int64_t max_r = TomeMaxR(s.n, protect);
  IZ_CHECK(s.r <= max_r, InvalidArgument,
           "r = " + std::to_string(s.r) + " is larger than possible: at most " + std::to_string(max_r) + " of " +
               std::to_string(s.n) + " tokens can merge in one step");
}

namespace {

void BestMatchChecked(const TomeShape& s, const float* metric, const uint8_t* protect, int32_t* best_b,
                      float* best_score);

}  // namespace

void TomeBestMatchCpu(const TomeShape& s, const float* metric, const uint8_t* protect, int32_t* best_b,
                      float* best_score) {
  TomeValidateShape(s, protect);
  CheckFinite(metric, s.batch * s.n * s.cm, "metric");
  BestMatchChecked(s, metric, protect, best_b, best_score);
}

namespace {

// The matching itself, on inputs already validated. A (even) and B (usable odd) rows are
// normalized while being packed for the GEMM core, whose fused row-wise argmax finds each
// A row's best B without storing the score matrix. Each score is one fma chain over the
// channels in order, so every SIMD level and thread count gives the same bits.
void BestMatchChecked(const TomeShape& s, const float* metric, const uint8_t* protect, int32_t* best_b,
                      float* best_score) {
  const int64_t na = SideCountA(s.n), nb = SideCountB(s.n);
  // Protected B rows are skipped; the usable list is the same for every batch row.
  std::vector<int32_t> usable_b;
  usable_b.reserve(static_cast<size_t>(nb));
  for (int64_t b = 0; b < nb; ++b)
    if (!protect || !protect[2 * b + 1]) usable_b.push_back(static_cast<int32_t>(b));
  const int64_t nu = static_cast<int64_t>(usable_b.size());
  // Packed panels are kept per thread between calls: a merge schedule calls this once per
  // layer, and warm memory skips the page faults of a fresh allocation.
  thread_local gemm::Packed pa, pb;
  std::vector<float> inv(static_cast<size_t>(s.batch * s.n)), scale_a(static_cast<size_t>(na)),
      scale_b(static_cast<size_t>(nu));
  std::vector<int32_t> col(static_cast<size_t>(na));
  InvNorms(metric, s.batch * s.n, s.cm, inv.data());
  for (int64_t b = 0; b < s.batch; ++b) {
    const float* m = metric + b * s.n * s.cm;
    const float* iv = inv.data() + b * s.n;
    int32_t* bb = best_b + b * na;
    float* bs = best_score + b * na;
    for (int64_t a = 0; a < na; ++a) scale_a[size_t(a)] = iv[2 * a];
    for (int64_t u = 0; u < nu; ++u) scale_b[size_t(u)] = iv[2 * usable_b[size_t(u)] + 1];
    const int pack_threads = na * s.cm >= kPassGrainElems ? 0 : 1;
    gemm::PackRows(m, 2 * s.cm, nullptr, scale_a.data(), na, s.cm, gemm::Side::kA, &pa, pack_threads);
    gemm::PackRows(m + s.cm, 2 * s.cm, usable_b.data(), scale_b.data(), nu, s.cm, gemm::Side::kB, &pb, pack_threads);
    gemm::RowArgmaxABt(pa, pb, col.data(), bs);
    for (int64_t a = 0; a < na; ++a) {
      const bool prot = (protect && protect[2 * a]) || col[size_t(a)] < 0;
      bb[a] = prot ? -1 : usable_b[size_t(col[size_t(a)])];
      if (prot) bs[a] = kProtectedScore;
    }
  }
  constexpr size_t kKeepBytes = size_t(64) << 20;  // larger scratch is not kept
  if (pa.buf.size() * sizeof(float) > kKeepBytes) std::vector<float>().swap(pa.buf);
  if (pb.buf.size() * sizeof(float) > kKeepBytes) std::vector<float>().swap(pb.buf);
}

}  // namespace

void TomeMergeCpu(const TomeShape& s, const TomeHostIn& in, const TomeHostOut& out) {
  TomeValidateShape(s, in.protect);
  IZ_CHECK(in.x && in.metric && out.x && out.sizes && out.dest, InvalidArgument, "missing buffer");
  CheckFinite(in.x, s.batch * s.n * s.c, "x");
  if (in.sizes) {
    for (int64_t i = 0; i < s.batch * s.n; ++i) {
      IZ_CHECK(
          std::isfinite(in.sizes[i]) && in.sizes[i] > 0, InvalidArgument,
          "sizes must be finite and > 0 (element " + std::to_string(i) + " is " + std::to_string(in.sizes[i]) + ")");
    }
  }
  const int64_t na = SideCountA(s.n), n_out = s.n - s.r;
  std::vector<int32_t> best_b(static_cast<size_t>(s.batch * na));
  std::vector<float> best_score(static_cast<size_t>(s.batch * na));
  if (in.metric != in.x) CheckFinite(in.metric, s.batch * s.n * s.cm, "metric");
  BestMatchChecked(s, in.metric, in.protect, best_b.data(), best_score.data());

  // Selection and placement are O(N log N) per row: sequential, then one parallel reduce.
  std::vector<uint8_t> merged(static_cast<size_t>(na));
  std::vector<int32_t> offsets(static_cast<size_t>(s.batch * (n_out + 1))), sources(static_cast<size_t>(s.batch * s.n));
  for (int64_t b = 0; b < s.batch; ++b) {
    SelectTopR(na, best_b.data() + b * na, best_score.data() + b * na, s.r, merged.data());
    BuildPlacement(s.n, merged.data(), best_b.data() + b * na, s.keep_order, out.dest + b * s.n,
                   offsets.data() + b * (n_out + 1), sources.data() + b * s.n, n_out);
  }
  const size_t merge_grain = static_cast<size_t>(std::max<int64_t>(16, kPassGrainElems / std::max<int64_t>(s.c, 1)));
  ParallelFor(static_cast<size_t>(s.batch * n_out), merge_grain, [&](size_t lo, size_t hi) {
    std::vector<float> acc(static_cast<size_t>(s.c));
    for (size_t job = lo; job < hi; ++job) {
      const int64_t b = static_cast<int64_t>(job) / n_out, j = static_cast<int64_t>(job) % n_out;
      const int32_t* off = offsets.data() + b * (n_out + 1);
      const int32_t* src = sources.data() + b * s.n;
      const float* x = in.x + b * s.n * s.c;
      const float* sz = in.sizes ? in.sizes + b * s.n : nullptr;
      float* dst = out.x + (b * n_out + j) * s.c;
      float* os = out.sizes + b * n_out;
      const int32_t o0 = off[j], o1 = off[j + 1];
      if (o1 - o0 == 1) {  // a lone token is copied exactly
        const int32_t i = src[o0];
        std::memcpy(dst, x + int64_t(i) * s.c, sizeof(float) * size_t(s.c));
        os[j] = sz ? sz[i] : 1.0f;
        continue;
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      float wsum = 0;
      for (int32_t q = o0; q < o1; ++q) {
        const int32_t i = src[q];
        const float w = sz ? sz[i] : 1.0f;
        wsum += w;
        const float* xi = x + int64_t(i) * s.c;
        for (int64_t k = 0; k < s.c; ++k) acc[k] += xi[k] * w;
      }
      for (int64_t k = 0; k < s.c; ++k) dst[k] = WeightedMean(acc[k], wsum);
      os[j] = wsum;
    }
  });
}

TomeDeviceResult TomeMergeDevice(const TomeShape& s, TokDType dtype, const MemoryPtr& x, const MemoryPtr& metric,
                                 const MemoryPtr& sizes, const std::vector<uint8_t>& protect) {
  const uint8_t* prot = protect.empty() ? nullptr : protect.data();
  IZ_CHECK(protect.empty() || static_cast<int64_t>(protect.size()) == s.n, ShapeMismatch,
           "protected mask must have one entry per token");
  TomeValidateShape(s, prot);
  const int64_t eb = DTypeBytes(dtype);
  IZ_CHECK(x && x->bytes() >= static_cast<size_t>(s.batch * s.n * s.c * eb), ShapeMismatch, "x buffer is too small");
  IZ_CHECK(metric && metric->bytes() >= static_cast<size_t>(s.batch * s.n * s.cm * eb), ShapeMismatch,
           "metric buffer is too small");
  IZ_CHECK(!sizes || sizes->bytes() >= static_cast<size_t>(s.batch * s.n * 4), ShapeMismatch,
           "sizes buffer is too small");
  const Device dev = x->device();
  const bool same = metric->device() == dev && metric->index() == x->index() &&
                    (!sizes || (sizes->device() == dev && sizes->index() == x->index()));
  IZ_CHECK(same, DeviceMismatch,
           "x, metric and sizes must live on the same device (x is on " + x->label() + ", metric on " +
               metric->label() + (sizes ? ", sizes on " + sizes->label() : std::string()) + ")");
  DeviceScope scope(dev == Device::Cuda ? x->index() : -1);
  const int64_t n_out = s.n - s.r;
  TomeDeviceResult res;
  res.x = DeviceMemory::Allocate(dev, static_cast<size_t>(s.batch * n_out * s.c * eb), false, x->index());
  res.sizes = DeviceMemory::Allocate(dev, static_cast<size_t>(s.batch * n_out * 4), false, x->index());
  res.dest = DeviceMemory::Allocate(dev, static_cast<size_t>(s.batch * s.n * 4), false, x->index());
  if (dev == Device::Cuda) {
#if INFERZIP_WITH_CUDA
    cuda::tokens::TomeMerge(s.batch, s.n, s.c, s.cm, s.r, s.keep_order, dtype, x->data(), metric->data(),
                            sizes ? sizes->as<float>() : nullptr, prot, res.x->data(), res.sizes->as<float>(),
                            res.dest->as<int32_t>());
    return res;
#else
    Fail(ErrorCode::NoDevice, "this build has no CUDA backend");
#endif
  }
  // CPU memory: widen to f32, run, narrow back.
  auto widen = [&](const MemoryPtr& m, int64_t count) {
    std::vector<float> v(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) v[size_t(i)] = LoadAsF32(m->data(), i, dtype);
    return v;
  };
  std::vector<float> xf = widen(x, s.batch * s.n * s.c);
  std::vector<float> mf = metric == x ? std::vector<float>() : widen(metric, s.batch * s.n * s.cm);
  std::vector<float> ox(static_cast<size_t>(s.batch * n_out * s.c));
  TomeHostIn in{xf.data(), metric == x ? xf.data() : mf.data(), sizes ? sizes->as<float>() : nullptr, prot};
  TomeHostOut out{ox.data(), res.sizes->as<float>(), res.dest->as<int32_t>()};
  TomeMergeCpu(s, in, out);
  for (size_t i = 0; i < ox.size(); ++i) StoreFromF32(res.x->data(), int64_t(i), ox[i], dtype);
  return res;
}

}  // namespace iz::tokens
