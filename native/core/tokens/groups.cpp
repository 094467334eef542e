// TokenGroups: see groups.h.
// The sums must round as the reference's: no multiply-add contraction (CMake also
// passes -ffp-contract=off; this covers clang builds without it, e.g. node-gyp).
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
#include "native/core/tokens/groups.h"

#include "native/core/parallel.h"

namespace iz::tokens {

TokenGroups::TokenGroups(const float* x, int64_t count, int64_t c)
    : x_(x),
      count_(count),
      c_(c),
      owner_(static_cast<size_t>(count)),
      alive_(static_cast<size_t>(count), 1),
      slot_(static_cast<size_t>(count), -1),
      size_(static_cast<size_t>(count), 1.0f) {
  for (int64_t i = 0; i < count; ++i) owner_[i] = static_cast<int32_t>(i);
}

int64_t TokenGroups::Root(int64_t i) const {
  while (i >= 0 && owner_[i] != i) i = owner_[i] >= 0 ? owner_[i] : -1;
  return i;
}

float* TokenGroups::OwnSum(int64_t r) {
  if (slot_[r] < 0) {
    slot_[r] = static_cast<int32_t>(sums_.size() / c_);
    sums_.insert(sums_.end(), x_ + r * c_, x_ + (r + 1) * c_);
  }
  return sums_.data() + slot_[r] * c_;
}

void TokenGroups::Merge(int64_t from, int64_t into) {
  const int64_t f = Root(from), t = Root(into);
  if (f < 0 || t < 0 || f == t) return;
  float* dst = OwnSum(t);  // before reading f's sum: OwnSum may move sums_
  const float* src = Sum(f);
  for (int64_t k = 0; k < c_; ++k) dst[k] += src[k];
  size_[t] += size_[f];
  owner_[f] = static_cast<int32_t>(t);
  alive_[f] = 0;
}

void TokenGroups::Drop(int64_t i) {
  const int64_t r = Root(i);
  if (r < 0) return;
  alive_[r] = 0;
  owner_[r] = static_cast<int32_t>(-1 - r);
}

TemporalResult TokenGroups::Finish(int64_t p) const {
  TemporalResult res;
  std::vector<int32_t> slot(static_cast<size_t>(count_), -1);
  for (int64_t i = 0; i < count_; ++i) {
    if (!alive_[i]) continue;
    slot[i] = static_cast<int32_t>(res.frame.size());
    res.frame.push_back(static_cast<int32_t>(i / p));
    res.position.push_back(static_cast<int32_t>(i % p));
    res.sizes.push_back(size_[i]);
  }
  const size_t m = res.frame.size();
  res.x.resize(m * static_cast<size_t>(c_));
  ParallelFor(m, 64, [&](size_t lo, size_t hi) {
    for (size_t j = lo; j < hi; ++j) {
      const int64_t id = int64_t(res.frame[j]) * p + res.position[j];
      const float s = res.sizes[j];
      float* out = res.x.data() + j * c_;
      // a token that absorbed nothing is copied bit for bit
      const float* sum = Sum(id);
      if (s == 1.0f)
        for (int64_t k = 0; k < c_; ++k) out[k] = x_[id * c_ + k];
      else
        for (int64_t k = 0; k < c_; ++k) out[k] = sum[k] / s;
    }
  });
  res.assignment.resize(static_cast<size_t>(count_));
  for (int64_t i = 0; i < count_; ++i) {
    const int64_t r = Root(i);
    res.assignment[i] = r >= 0 ? slot[r] : -1;
  }
  return res;
}

}  // namespace iz::tokens
