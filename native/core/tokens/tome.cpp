// CPU backend of ToMe bipartite soft matching: normalize, cache-blocked cosine
// scores with a fused row-wise argmax (the score matrix is never stored), top-r by
// a strict total order, then a deterministic size-weighted scatter-reduce.
#include "native/core/tokens/tome.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "native/shared/error.h"
#include "native/core/parallel.h"
#include "native/core/simd.h"

#if INFERZIP_WITH_CUDA
#include "cuda/tokens/tome.h"
#endif

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace iz::tokens {

namespace {

constexpr int64_t kMaxTokens = int64_t(1) << 30;

void CheckFinite(const float* v, int64_t count, const char* what) {
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(v[i])) {
      Fail(ErrorCode::InvalidArgument, std::string(what) + " holds a non-finite value (NaN or Inf) at element " +
                                           std::to_string(i) + "; clean the input before merging");
    }
  }
}

// Splits every batch row into unit-length A (even) and B (odd) rows, in one parallel pass.
void NormalizeSides(const float* metric, int64_t batch, int64_t n, int64_t cm, float* an, float* bn) {
  const int64_t na = SideCountA(n), nb = SideCountB(n);
  ParallelFor(static_cast<size_t>(batch * n), 64, [&](size_t lo, size_t hi) {
    for (size_t row = lo; row < hi; ++row) {
      const int64_t b = static_cast<int64_t>(row) / n, i = static_cast<int64_t>(row) % n;
      const float* src = metric + static_cast<int64_t>(row) * cm;
      double ss = 0;
      for (int64_t k = 0; k < cm; ++k) ss += double(src[k]) * src[k];
      const float inv = InvNorm(static_cast<float>(ss));
      float* dst = (i & 1) ? bn + (b * nb + i / 2) * cm : an + (b * na + i / 2) * cm;
      for (int64_t k = 0; k < cm; ++k) dst[k] = src[k] * inv;
    }
  });
}

// 4 A rows x 2 B rows of dot products: every loaded vector is reused 2-4 times.
inline void Dot4x2(const float* a0, const float* a1, const float* a2, const float* a3, const float* b0,
                   const float* b1, int64_t cm, float out[4][2]) {
  int64_t k = 0;
#if defined(__SSE2__)
  __m128 s00 = _mm_setzero_ps(), s01 = _mm_setzero_ps(), s10 = _mm_setzero_ps(), s11 = _mm_setzero_ps();
  __m128 s20 = _mm_setzero_ps(), s21 = _mm_setzero_ps(), s30 = _mm_setzero_ps(), s31 = _mm_setzero_ps();
  for (; k + 4 <= cm; k += 4) {
    const __m128 vb0 = _mm_loadu_ps(b0 + k), vb1 = _mm_loadu_ps(b1 + k);
    __m128 va = _mm_loadu_ps(a0 + k);
    s00 = _mm_add_ps(s00, _mm_mul_ps(va, vb0));
    s01 = _mm_add_ps(s01, _mm_mul_ps(va, vb1));
    va = _mm_loadu_ps(a1 + k);
    s10 = _mm_add_ps(s10, _mm_mul_ps(va, vb0));
    s11 = _mm_add_ps(s11, _mm_mul_ps(va, vb1));
    va = _mm_loadu_ps(a2 + k);
    s20 = _mm_add_ps(s20, _mm_mul_ps(va, vb0));
    s21 = _mm_add_ps(s21, _mm_mul_ps(va, vb1));
    va = _mm_loadu_ps(a3 + k);
    s30 = _mm_add_ps(s30, _mm_mul_ps(va, vb0));
    s31 = _mm_add_ps(s31, _mm_mul_ps(va, vb1));
  }
  auto hsum = [](__m128 v) {
    alignas(16) float t[4];
    _mm_store_ps(t, v);
    return (t[0] + t[1]) + (t[2] + t[3]);
  };
  out[0][0] = hsum(s00); out[0][1] = hsum(s01);
  out[1][0] = hsum(s10); out[1][1] = hsum(s11);
  out[2][0] = hsum(s20); out[2][1] = hsum(s21);
  out[3][0] = hsum(s30); out[3][1] = hsum(s31);
#else
  for (int i = 0; i < 4; ++i) out[i][0] = out[i][1] = 0.0f;
#endif
  const float* as[4] = {a0, a1, a2, a3};
  for (; k < cm; ++k) {
    for (int i = 0; i < 4; ++i) {
      out[i][0] += as[i][k] * b0[k];
      out[i][1] += as[i][k] * b1[k];
    }
  }
}

#if IZ_X86_SIMD
#define IZ_TOKENS_AVX2 1
#include <immintrin.h>

// The same 4x2 block with 8-wide FMA, used when the CPU has AVX2 + FMA (checked at run
// time, so the portable build still runs everywhere).
__attribute__((target("avx2,fma"))) void Dot4x2Avx2(const float* a0, const float* a1, const float* a2,
                                                    const float* a3, const float* b0, const float* b1, int64_t cm,
                                                    float out[4][2]) {
  __m256 s[4][2];
  for (int i = 0; i < 4; ++i) s[i][0] = s[i][1] = _mm256_setzero_ps();
  const float* as[4] = {a0, a1, a2, a3};
  int64_t k = 0;
  for (; k + 8 <= cm; k += 8) {
    const __m256 vb0 = _mm256_loadu_ps(b0 + k), vb1 = _mm256_loadu_ps(b1 + k);
    for (int i = 0; i < 4; ++i) {
      const __m256 va = _mm256_loadu_ps(as[i] + k);
      s[i][0] = _mm256_fmadd_ps(va, vb0, s[i][0]);
      s[i][1] = _mm256_fmadd_ps(va, vb1, s[i][1]);
    }
  }
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 2; ++j) {
      const __m128 lo = _mm256_castps256_ps128(s[i][j]), hi = _mm256_extractf128_ps(s[i][j], 1);
      alignas(16) float t[4];
      _mm_store_ps(t, _mm_add_ps(lo, hi));
      out[i][j] = (t[0] + t[1]) + (t[2] + t[3]);
    }
  }
  for (; k < cm; ++k) {
    for (int i = 0; i < 4; ++i) {
      out[i][0] += as[i][k] * b0[k];
      out[i][1] += as[i][k] * b1[k];
    }
  }
}
#endif

using Dot4x2Fn = void (*)(const float*, const float*, const float*, const float*, const float*, const float*, int64_t,
                          float[4][2]);

Dot4x2Fn PickDot4x2() {
#if IZ_TOKENS_AVX2
  if (SimdAllowed() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Dot4x2Avx2;
#endif
  return Dot4x2;
}

constexpr int64_t kABlock = 16, kBTile = 64;

// Best unprotected B for A rows [a_lo, a_hi) of one batch row (an/bn: that row's
// normalized sides). B is walked in tiles that stay in cache while 4 A rows reuse them.
void BestMatchBlock(const float* an, const float* bn, int64_t na, int64_t cm, const std::vector<int32_t>& usable_b,
                    const uint8_t* protect, int64_t a_lo, int64_t a_hi, Dot4x2Fn dot4x2, int32_t* best_b,
                    float* best_score) {
  const int64_t nu = static_cast<int64_t>(usable_b.size());
  float bs[kABlock];
  int32_t bi[kABlock];
  for (int64_t i = 0; i < kABlock; ++i) bs[i] = kProtectedScore, bi[i] = -1;
  for (int64_t t0 = 0; t0 < nu; t0 += kBTile) {
    const int64_t t1 = std::min(nu, t0 + kBTile);
    for (int64_t a = a_lo; a < a_hi; a += 4) {
      const float* ar[4];
      for (int i = 0; i < 4; ++i) ar[i] = an + std::min(a + i, na - 1) * cm;
      for (int64_t t = t0; t < t1; t += 2) {
        const int32_t b0 = usable_b[t], b1 = usable_b[std::min(t + 1, t1 - 1)];
        float d[4][2];
        dot4x2(ar[0], ar[1], ar[2], ar[3], bn + b0 * cm, bn + b1 * cm, cm, d);
        for (int i = 0; i < 4 && a + i < a_hi; ++i) {
          const int64_t s = a + i - a_lo;
          if (bi[s] < 0 || ArgmaxBetter(d[i][0], b0, bs[s], bi[s])) bs[s] = d[i][0], bi[s] = b0;
          if (ArgmaxBetter(d[i][1], b1, bs[s], bi[s])) bs[s] = d[i][1], bi[s] = b1;
        }
      }
    }
  }
  for (int64_t a = a_lo; a < a_hi; ++a) {
    const bool prot = protect && protect[2 * a];
    best_b[a] = prot ? -1 : bi[a - a_lo];
    best_score[a] = prot || bi[a - a_lo] < 0 ? kProtectedScore : bs[a - a_lo];
  }
}

// Marks the r best-scoring unprotected A tokens (score desc, index asc).
void SelectTopR(int64_t na, const int32_t* best_b, const float* best_score, int64_t r, uint8_t* merged_a) {
  std::vector<int32_t> cand;
  cand.reserve(static_cast<size_t>(na));
  for (int64_t a = 0; a < na; ++a)
    if (best_b[a] >= 0) cand.push_back(static_cast<int32_t>(a));
  IZ_CHECK(static_cast<int64_t>(cand.size()) >= r, Internal, "fewer mergeable tokens than r after validation");
  auto before = [&](int32_t x, int32_t y) { return RankBefore(best_score[x], x, best_score[y], y); };
  if (r > 0 && r < static_cast<int64_t>(cand.size())) std::nth_element(cand.begin(), cand.begin() + r, cand.end(), before);
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
           "r = " + std::to_string(s.r) + " is larger than possible: at most " + std::to_string(max_r) +
               " of " + std::to_string(s.n) + " tokens can merge in one step");
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

// The matching itself, on inputs already validated.
void BestMatchChecked(const TomeShape& s, const float* metric, const uint8_t* protect, int32_t* best_b,
                      float* best_score) {
  const int64_t na = SideCountA(s.n), nb = SideCountB(s.n);
  std::vector<float> an(static_cast<size_t>(s.batch * na * s.cm));
  std::vector<float> bn(static_cast<size_t>(s.batch * std::max<int64_t>(nb, 1) * s.cm));
  NormalizeSides(metric, s.batch, s.n, s.cm, an.data(), bn.data());
  // Protected B rows are skipped; the usable list is the same for every batch row.
  std::vector<int32_t> usable_b;
  usable_b.reserve(static_cast<size_t>(nb));
  for (int64_t b = 0; b < nb; ++b)
    if (!protect || !protect[2 * b + 1]) usable_b.push_back(static_cast<int32_t>(b));
  static const Dot4x2Fn dot4x2 = PickDot4x2();
  // One parallel loop over (batch row, A block): threads start once per call, not per row.
  const int64_t blocks = (na + kABlock - 1) / kABlock;
  ParallelFor(static_cast<size_t>(s.batch * blocks), 1, [&](size_t lo, size_t hi) {
    for (size_t job = lo; job < hi; ++job) {
      const int64_t b = static_cast<int64_t>(job) / blocks, blk = static_cast<int64_t>(job) % blocks;
      const int64_t a_lo = blk * kABlock, a_hi = std::min(na, a_lo + kABlock);
      BestMatchBlock(an.data() + b * na * s.cm, bn.data() + b * nb * s.cm, na, s.cm, usable_b, protect, a_lo, a_hi,
                     dot4x2, best_b + b * na, best_score + b * na);
    }
  });
}

}  // namespace

void TomeMergeCpu(const TomeShape& s, const TomeHostIn& in, const TomeHostOut& out) {
  TomeValidateShape(s, in.protect);
  IZ_CHECK(in.x && in.metric && out.x && out.sizes && out.dest, InvalidArgument, "missing buffer");
  CheckFinite(in.x, s.batch * s.n * s.c, "x");
  if (in.sizes) {
    for (int64_t i = 0; i < s.batch * s.n; ++i) {
      IZ_CHECK(std::isfinite(in.sizes[i]) && in.sizes[i] > 0, InvalidArgument,
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
  ParallelFor(static_cast<size_t>(s.batch * n_out), 16, [&](size_t lo, size_t hi) {
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
  IZ_CHECK(metric->device() == dev && (!sizes || sizes->device() == dev), InvalidArgument,
           "x, metric and sizes must live on the same device");
  const int64_t n_out = s.n - s.r;
  TomeDeviceResult res;
  res.x = DeviceMemory::Allocate(dev, static_cast<size_t>(s.batch * n_out * s.c * eb));
  res.sizes = DeviceMemory::Allocate(dev, static_cast<size_t>(s.batch * n_out * 4));
  res.dest = DeviceMemory::Allocate(dev, static_cast<size_t>(s.batch * s.n * 4));
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
