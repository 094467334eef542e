// Length-limited optimal prefix code lengths (package-merge) and exponent statistics.
#include <algorithm>
#include <cmath>
#include <mutex>

#include "native/core/df11/codec.h"
#include "native/core/parallel.h"
#include "native/shared/error.h"

namespace iz {
namespace df11 {

namespace {

// A package-merge item: a leaf (symbol index) or a package of two items of the level below.
struct Item {
  uint64_t weight;
  int32_t leaf;   // >= 0: index into the sorted symbols
  uint32_t a, b;  // packages: the two items in the previous level's list
};

}  // namespace

std::array<uint8_t, 256> LimitedCodeLengths(const std::array<uint64_t, 256>& counts, uint32_t max_length) {
  std::array<uint8_t, 256> lengths{};
  std::vector<uint32_t> symbols;
  for (uint32_t s = 0; s < 256; ++s) {
    if (counts[s] > 0) symbols.push_back(s);
  }
  if (symbols.empty()) return lengths;
  if (symbols.size() == 1) {
    lengths[symbols[0]] = 1;  // a lone value still needs one bit per element
    return lengths;
  }
  IZ_CHECK(max_length >= 1 && max_length <= 32 && (uint64_t(1) << max_length) >= symbols.size(), InvalidArgument,
           "a code length limit of " + std::to_string(max_length) + " bits cannot code " +
               std::to_string(symbols.size()) + " distinct exponents");
  // Leaves ordered by (count, symbol): ties broken by value so the result is deterministic.
  std::stable_sort(symbols.begin(), symbols.end(), [&](uint32_t a, uint32_t b) { return counts[a] < counts[b]; });
  const size_t m = symbols.size();
  // Package-merge (Larmore & Hirschberg): start at the deepest level with the leaves,
  // pair neighbours into packages and merge them with the leaves, max_length - 1 times.
  std::vector<std::vector<Item>> levels(max_length);
  levels[0].reserve(m);
  for (size_t i = 0; i < m; ++i) levels[0].push_back(Item{counts[symbols[i]], static_cast<int32_t>(i), 0, 0});
  for (uint32_t level = 1; level < max_length; ++level) {
    const std::vector<Item>& prev = levels[level - 1];
    std::vector<Item>& cur = levels[level];
    cur.reserve(m + prev.size() / 2);
    size_t leaf = 0, pair = 0;
    const size_t pairs = prev.size() / 2;
    while (leaf < m || pair < pairs) {
      const uint64_t pw = pair < pairs ? prev[2 * pair].weight + prev[2 * pair + 1].weight : UINT64_MAX;
      if (pair >= pairs || (leaf < m && counts[symbols[leaf]] <= pw)) {
        cur.push_back(Item{counts[symbols[leaf]], static_cast<int32_t>(leaf), 0, 0});
        ++leaf;
      } else {
        cur.push_back(Item{pw, -1, static_cast<uint32_t>(2 * pair), static_cast<uint32_t>(2 * pair + 1)});
        ++pair;
      }
    }
  }
  // The 2m - 2 lightest items of the top level: a leaf's code length is how often it
  // appears in them (counted by walking the packages down, at most max_length deep).
  std::vector<uint32_t> len(m, 0);
  std::vector<std::pair<uint32_t, uint32_t>> stack;  // (level, index)
  const uint32_t top = max_length - 1;
  for (uint32_t i = 0; i < 2 * m - 2; ++i) stack.emplace_back(top, i);
  while (!stack.empty()) {
    auto [level, index] = stack.back();
    stack.pop_back();
    const Item& it = levels[level][index];
    if (it.leaf >= 0) {
      ++len[it.leaf];
    } else {
      stack.emplace_back(level - 1, it.a);
      stack.emplace_back(level - 1, it.b);
    }
  }
  for (size_t k = 0; k < m; ++k) lengths[symbols[k]] = static_cast<uint8_t>(len[k]);
  return lengths;
}

double EntropyBits(const std::array<uint64_t, 256>& histogram) {
  uint64_t total = 0;
  for (uint64_t c : histogram) total += c;
  if (total == 0) return 0;
  double h = 0;
  for (uint64_t c : histogram) {
    if (c == 0) continue;
    double p = double(c) / double(total);
    h -= p * std::log2(p);
  }
  return h;
}

std::array<uint64_t, 256> ExponentHistogram(const uint16_t* data, size_t n, int threads) {
  std::array<uint64_t, 256> total{};
  std::mutex mutex;
  ParallelFor(
      n, size_t(1) << 18,
      [&](size_t begin, size_t end) {
        // Four sub-histograms break the store-to-load chain on runs of equal exponents.
        std::array<std::array<uint32_t, 256>, 4> h{};
        size_t i = begin;
        while (i < end) {
          size_t stop = std::min(end, i + (size_t(1) << 30));
          for (; i + 4 <= stop; i += 4) {
            ++h[0][(data[i] >> 7) & 0xFF];
            ++h[1][(data[i + 1] >> 7) & 0xFF];
            ++h[2][(data[i + 2] >> 7) & 0xFF];
            ++h[3][(data[i + 3] >> 7) & 0xFF];
          }
          for (; i < stop; ++i) ++h[0][(data[i] >> 7) & 0xFF];
          std::lock_guard<std::mutex> lock(mutex);
          for (int s = 0; s < 256; ++s) {
            total[s] += uint64_t(h[0][s]) + h[1][s] + h[2][s] + h[3][s];
            h[0][s] = h[1][s] = h[2][s] = h[3][s] = 0;
          }
        }
      },
      threads);
  return total;
}

}  // namespace df11
}  // namespace iz
