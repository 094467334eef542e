#include "tome.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "../../../cuda/tokens/similarity.h"
#include "../error.h"
#include "../parallel.h"

namespace iz::tokens {

namespace {

constexpr size_t kATile = 16;  // A rows sharing one pass over a B tile
constexpr size_t kBTile = 32;  // B rows kept hot in L2 (32 x 1024 floats = 128 KB)

void NormalizeRows(const float* src, size_t rows, size_t cols, float* dst) {
  ParallelFor(rows, 64, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const float* s = src + i * cols;
      float ss = 0.f;
      for (size_t k = 0; k < cols; ++k) ss += s[k] * s[k];
      float inv = InverseNorm(ss);
      float* d = dst + i * cols;
      for (size_t k = 0; k < cols; ++k) d[k] = s[k] * inv;
    }
  });
}

// Dot products of one row with four rows, four independent lanes each so the compiler
// vectorizes without reassociating a single sum.
inline void Dot4(const float* a, const float* b0, const float* b1, const float* b2, const float* b3, size_t c, float out[4]) {
  float s0[4] = {0, 0, 0, 0}, s1[4] = {0, 0, 0, 0}, s2[4] = {0, 0, 0, 0}, s3[4] = {0, 0, 0, 0};
  size_t k = 0;
  for (; k + 4 <= c; k += 4) {
    for (int l = 0; l < 4; ++l) {
      float av = a[k + l];
      s0[l] += av * b0[k + l];
      s1[l] += av * b1[k + l];
      s2[l] += av * b2[k + l];
      s3[l] += av * b3[k + l];
    }
  }
  float t0 = (s0[0] + s0[1]) + (s0[2] + s0[3]);
  float t1 = (s1[0] + s1[1]) + (s1[2] + s1[3]);
  float t2 = (s2[0] + s2[1]) + (s2[2] + s2[3]);
  float t3 = (s3[0] + s3[1]) + (s3[2] + s3[3]);
  for (; k < c; ++k) {
    t0 += a[k] * b0[k];
    t1 += a[k] * b1[k];
    t2 += a[k] * b2[k];
    t3 += a[k] * b3[k];
  }
  out[0] = t0, out[1] = t1, out[2] = t2, out[3] = t3;
}

inline float Dot1(const float* a, const float* b, size_t c) {
  float s[4] = {0, 0, 0, 0};
  size_t k = 0;
  for (; k + 4 <= c; k += 4)
    for (int l = 0; l < 4; ++l) s[l] += a[k + l] * b[k + l];
  float t = (s[0] + s[1]) + (s[2] + s[3]);
  for (; k < c; ++k) t += a[k] * b[k];
  return t;
}

}  // namespace

size_t TomeMaxR(size_t n, const uint8_t* protect) {
  size_t free_a = 0, free_b = 0, prot = 0;
  for (size_t i = 0; i < n; ++i) {
    bool p = protect && protect[i];
    prot += p;
    if (!p) (i % 2 == 0 ? free_a : free_b)++;
  }
  if (free_b == 0) return 0;
  return std::min(free_a, (n - prot) / 2);
}

void TomeMatch(const float* metric, size_t n, size_t cm, const uint8_t* protect, int32_t* best, float* score) {
  size_t na = (n + 1) / 2, nb = n / 2;
  // Normalized A rows then B rows, each contiguous.
  std::vector<float> rows(n * cm);
  std::vector<float> gathered(n * cm);
  for (size_t i = 0; i < n; ++i) {
    size_t dst = (i % 2 == 0) ? i / 2 : na + i / 2;
    std::copy(metric + i * cm, metric + (i + 1) * cm, gathered.begin() + dst * cm);
  }
  NormalizeRows(gathered.data(), n, cm, rows.data());
  const float* A = rows.data();
  const float* B = rows.data() + na * cm;
  const float neg_inf = -std::numeric_limits<float>::infinity();

  ParallelFor((na + kATile - 1) / kATile, 1, [&](size_t tb, size_t te) {
    for (size_t t = tb; t < te; ++t) {
      size_t a0 = t * kATile, a1 = std::min(na, a0 + kATile);
      float bs[kATile];
      int32_t bi[kATile];
      for (size_t a = a0; a < a1; ++a) bs[a - a0] = neg_inf, bi[a - a0] = -1;
      for (size_t b0 = 0; b0 < nb; b0 += kBTile) {
        size_t b1 = std::min(nb, b0 + kBTile);
        for (size_t a = a0; a < a1; ++a) {
          const float* ar = A + a * cm;
          float& best_s = bs[a - a0];
          int32_t& best_i = bi[a - a0];
          size_t b = b0;
          for (; b + 4 <= b1; b += 4) {
            float d[4];
            Dot4(ar, B + b * cm, B + (b + 1) * cm, B + (b + 2) * cm, B + (b + 3) * cm, cm, d);
            for (int l = 0; l < 4; ++l) {
              int32_t j = int32_t(b + l);
              if (protect && protect[2 * (b + l) + 1]) continue;
              if (best_i < 0 || Better(d[l], j, best_s, best_i)) best_s = d[l], best_i = j;
            }
          }
          for (; b < b1; ++b) {
            if (protect && protect[2 * b + 1]) continue;
            float d = Dot1(ar, B + b * cm, cm);
            if (best_i < 0 || Better(d, int32_t(b), best_s, best_i)) best_s = d, best_i = int32_t(b);
          }
        }
      }
      for (size_t a = a0; a < a1; ++a) {
        bool prot = protect && protect[2 * a];
        best[a] = bi[a - a0];
        score[a] = (prot || bi[a - a0] < 0) ? neg_inf : bs[a - a0];
      }
    }
  });
}

void TomeSelectAndMerge(const float* x, const float* sizes, size_t n, size_t c, size_t r, bool keep_order,
                        const int32_t* best, const float* score, float* out_x, float* out_sizes, int32_t* assign) {
  size_t na = (n + 1) / 2, nb = n / 2;
  std::vector<int32_t> order(na);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return RanksBefore(score[a], a, score[b], b); });
  std::vector<uint8_t> merged(na, 0);
  for (size_t i = 0; i < r; ++i) {
    int32_t a = order[i];
    IZ_CHECK(std::isfinite(score[a]) && best[a] >= 0 && size_t(best[a]) < nb, Internal,
             "token merge selected a token that has no partner (r exceeds what is possible)");
    merged[a] = 1;
  }
  // Output slot of every surviving token.
  size_t out_n = n - r;
  std::vector<int32_t> slot(n, -1);
  size_t k = 0;
  if (keep_order) {
    for (size_t i = 0; i < n; ++i)
      if (i % 2 == 1 || !merged[i / 2]) slot[i] = int32_t(k++);
  } else {
    for (size_t a = 0; a < na; ++a)
      if (!merged[a]) slot[2 * a] = int32_t(k++);
    for (size_t b = 0; b < nb; ++b) slot[2 * b + 1] = int32_t(k++);
  }
  IZ_CHECK(k == out_n, Internal, "token merge layout mismatch");
  for (size_t i = 0; i < n; ++i) {
    bool is_merged_a = (i % 2 == 0) && merged[i / 2];
    assign[i] = is_merged_a ? slot[2 * size_t(best[i / 2]) + 1] : slot[i];
  }
  // Size-weighted sums, then divide by the summed sizes.
  std::fill(out_x, out_x + out_n * c, 0.f);
  std::fill(out_sizes, out_sizes + out_n, 0.f);
  for (size_t i = 0; i < n; ++i) {
    float s = sizes ? sizes[i] : 1.f;
    float* dst = out_x + size_t(assign[i]) * c;
    const float* src = x + i * c;
    for (size_t j = 0; j < c; ++j) dst[j] = WeightedAdd(dst[j], src[j], s);
    out_sizes[assign[i]] += s;
  }
  for (size_t o = 0; o < out_n; ++o) {
    float inv = 1.f / out_sizes[o];
    float* dst = out_x + o * c;
    for (size_t j = 0; j < c; ++j) dst[j] *= inv;
  }
}

TomeOutput TomeMerge(const TomeInput& in) {
  IZ_CHECK(in.x && in.metric, InvalidArgument, "token merge needs x and a metric");
  IZ_CHECK(in.n > 0 && in.c > 0 && in.cm > 0 && in.batch > 0, ShapeMismatch, "token merge needs at least one token and one channel");
  size_t max_r = TomeMaxR(in.n, in.protect);
  IZ_CHECK(in.r <= max_r, InvalidArgument,
           "r = " + std::to_string(in.r) + " is larger than possible: at most " + std::to_string(max_r) + " of " +
               std::to_string(in.n) + " tokens can merge in one step");
  if (in.sizes) {
    for (size_t i = 0; i < in.batch * in.n; ++i)
      IZ_CHECK(std::isfinite(in.sizes[i]) && in.sizes[i] > 0.f, InvalidArgument, "sizes must be positive and finite (index " + std::to_string(i) + ")");
  }
  TomeOutput out;
  size_t out_n = in.n - in.r;
  out.x.resize(in.batch * out_n * in.c);
  out.sizes.resize(in.batch * out_n);
  out.assign.resize(in.batch * in.n);
  size_t na = (in.n + 1) / 2;
  std::vector<int32_t> best(na);
  std::vector<float> score(na);
  for (size_t b = 0; b < in.batch; ++b) {
    TomeMatch(in.metric + b * in.n * in.cm, in.n, in.cm, in.protect, best.data(), score.data());
    TomeSelectAndMerge(in.x + b * in.n * in.c, in.sizes ? in.sizes + b * in.n : nullptr, in.n, in.c, in.r, in.keep_order, best.data(),
                       score.data(), out.x.data() + b * out_n * in.c, out.sizes.data() + b * out_n, out.assign.data() + b * in.n);
  }
  return out;
}

void RowCosine(const float* a, const float* b, size_t m, size_t c, float* out) {
  ParallelFor(m, 256, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; ++i) {
      const float* ar = a + i * c;
      const float* br = b + i * c;
      float d = Dot1(ar, br, c), na = Dot1(ar, ar, c), nb = Dot1(br, br, c);
      out[i] = d * InverseNorm(na) * InverseNorm(nb);
    }
  });
}

}  // namespace iz::tokens
