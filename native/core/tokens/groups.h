// Groups of original video tokens being merged or dropped (a union-find with running
// f32 sums), and the assembly of the final kept tokens. Internal to temporal.cpp.
#pragma once

#include <cstdint>
#include <vector>

#include "native/core/tokens/temporal.h"

namespace iz::tokens {

class TokenGroups {
 public:
  TokenGroups(const float* x, int64_t count, int64_t c);

  const float* x() const { return x_; }
  // Folds group `from` into group `into` (f32 sums and sizes, as the reference).
  void Merge(int64_t from, int64_t into);
  // Removes a group; its members map to -1.
  void Drop(int64_t i);
  // Kept tokens in index order (frame, then position) with their means and assignment.
  TemporalResult Finish(int64_t p) const;

 private:
  int64_t Root(int64_t i) const;  // -1 for a dropped group
  // The running sum of group root r: its own row of x until something merges into it.
  const float* Sum(int64_t r) const { return slot_[r] < 0 ? x_ + r * c_ : sums_.data() + slot_[r] * c_; }
  float* OwnSum(int64_t r);

  const float* x_;
  int64_t count_, c_;
  std::vector<int32_t> owner_;  // owner_[i] == i: a root; < 0: a dropped root
  std::vector<uint8_t> alive_;
  std::vector<int32_t> slot_;       // row of sums_ holding group r's sum, -1 while it is x's row
  std::vector<float> sums_, size_;  // sums only for groups that absorbed others (x is not copied)
};

}  // namespace iz::tokens
