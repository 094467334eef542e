// Arithmetic shared by the pruning and temporal passes, written to reproduce the
// TypeScript reference bit for bit: f64 accumulation in index order (no FMA: these
// files build with -ffp-contract=off), JavaScript's Math.round, and rankings by a
// strict total order (value, then lower index first), so any sort gives one answer.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "native/shared/error.h"

namespace iz::tokens {

// The InvalidArgument for element i of `name` holding the non-finite `value`.
[[noreturn]] inline void FailNonFiniteF32(const std::string& name, float value, int64_t i) {
  Fail(ErrorCode::InvalidArgument, name + " holds a non-finite value (" + std::to_string(value) + ") at element " +
                                       std::to_string(i) + "; clean the input first");
}

// Throws InvalidArgument naming the first NaN/Inf element of v.
inline void CheckFiniteF32(const float* v, int64_t count, const std::string& name) {
  for (int64_t i = 0; i < count; ++i) {
    if (!std::isfinite(v[i])) FailNonFiniteF32(name, v[i], i);
  }
}

// Math.round: nearest integer, halves towards +infinity.
inline double JsRound(double x) {
  const double r = std::floor(x);
  return x - r >= 0.5 ? r + 1 : r;
}

// Cosine of two f32 rows with f64 sums, 0 when either is a zero vector.
inline double CosineF64(const float* a, const float* b, int64_t c) {
  double dot = 0, na = 0, nb = 0;
  for (int64_t k = 0; k < c; ++k) {
    const double x = a[k], y = b[k];
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na > 0 && nb > 0 ? dot / std::sqrt(na * nb) : 0;
}

// Four CosineF64 at once: independent f64 chains, so the CPU overlaps their latencies
// (one pair at a time waits on its adds); each result equals CosineF64's.
inline void Cosine4F64(const float* const a[4], const float* const b[4], int64_t c, double out[4]) {
  double dot[4] = {}, na[4] = {}, nb[4] = {};
  for (int64_t k = 0; k < c; ++k) {
    for (int l = 0; l < 4; ++l) {
      const double x = a[l][k], y = b[l][k];
      dot[l] += x * y;
      na[l] += x * x;
      nb[l] += y * y;
    }
  }
  for (int l = 0; l < 4; ++l) out[l] = na[l] > 0 && nb[l] > 0 ? dot[l] / std::sqrt(na[l] * nb[l]) : 0;
}

// Squared norm with the same f64 summation order as CosineF64's na.
inline double SquaredNormF64(const float* a, int64_t c) {
  double s = 0;
  for (int64_t k = 0; k < c; ++k) s += double(a[k]) * a[k];
  return s;
}

// The first `count` indices of 0..n-1 ranked by value (descending or ascending), ties
// to the lower index: the prefix of the reference's full stable ranking.
template <typename T>
std::vector<int32_t> RankPrefix(const T* values, int64_t n, int64_t count, bool descending) {
  std::vector<int32_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  auto before = [&](int32_t p, int32_t q) {
    const double a = values[p], b = values[q];
    if (a != b) return descending ? a > b : a < b;
    return p < q;
  };
  count = std::max<int64_t>(0, std::min(count, n));
  std::partial_sort(idx.begin(), idx.begin() + count, idx.end(), before);
  idx.resize(static_cast<size_t>(count));
  return idx;
}

}  // namespace iz::tokens
