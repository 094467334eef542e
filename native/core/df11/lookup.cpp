// Builds the fast decoder's lookup tables (lookup.h) from a unit's decode tables.
#include "native/core/df11/lookup.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

namespace iz {
namespace df11 {

namespace {

// For each 12-bit prefix: the exponent the tables give when it is fixed by those bits
// alone (a code's length comes from the length row, so it may exceed the bits read).
void BuildFast(const Tables& tables, uint16_t* fast) {
  const uint8_t* luts = tables.luts;
  const uint8_t* lengths = luts + tables.n_tables * 256;
  for (uint32_t p = 0; p < (1u << kFastBits); ++p) {
    uint32_t v = luts[p >> 4];
    uint32_t sym = 256;
    if (v < kFirstPointer) {
      sym = v;
    } else {
      const uint8_t* row = luts + (256 - v) * 256 + ((p & 15) << 4);  // child index checked by ValidateUnit
      bool same = row[0] < kFirstPointer;
      for (int k = 1; k < 16 && same; ++k) same = row[k] == row[0];
      if (same) sym = row[0];
    }
    uint32_t len = sym < 256 ? lengths[sym] : 0;
    fast[p] = (len >= 1 && len <= kFastMaxLength) ? static_cast<uint16_t>(sym | (len << 8)) : 0;
  }
}

}  // namespace

void BuildFastTables(const Tables& tables, FastTables& out) {
  BuildFast(tables, out.fast);
  // same[node] over the binary tree of 12-bit prefixes (node = 1 << depth | prefix):
  // every 12-bit completion of the prefix has the same, valid fast entry.
  constexpr uint32_t kLeaves = 1u << kFastBits;
  std::vector<uint8_t> same(2 * kLeaves, 0);
  for (uint32_t p = 0; p < kLeaves; ++p) same[kLeaves + p] = out.fast[p] != 0;
  for (uint32_t node = kLeaves - 1; node >= 1; --node) {
    const uint32_t depth = 31 - __builtin_clz(node);
    const uint32_t l = 2 * node, r = 2 * node + 1;
    const uint32_t leaf_l = (l << (kFastBits - depth - 1)) - kLeaves, leaf_r = (r << (kFastBits - depth - 1)) - kLeaves;
    same[node] = same[l] && same[r] && out.fast[leaf_l] == out.fast[leaf_r];
  }
  // Quad entries: take codes while the bits still known after the previous ones fix the
  // next code and the entry stays within kQuadMaxBits.
  for (uint32_t p = 0; p < (1u << kQuadBits); ++p) {
    uint64_t syms = 0;
    uint32_t count = 0, pos = 0, starts[kQuadMaxCodes] = {};
    while (count < kQuadMaxCodes && pos < kQuadBits) {
      const uint32_t known = kQuadBits - pos;
      const uint32_t prefix = p & ((1u << known) - 1);
      if (!same[(1u << known) | prefix]) break;
      const uint32_t e = out.fast[prefix << (kFastBits - known)];
      const uint32_t len = e >> 8;
      if (pos + len > kQuadMaxBits) break;
      syms |= uint64_t(e & 0xFF) << (8 * count);
      starts[count] = pos;
      pos += len;
      ++count;
    }
    uint64_t mask = 0;
    for (uint32_t i = 0; i < count; ++i) mask |= uint64_t(1) << starts[i];
    out.quad[p] = count == 0 ? 0 : pos | syms << 8 | mask << 48;
  }
}

std::shared_ptr<const FastTables> CachedFastTables(const Tables& tables) {
  struct Entry {
    std::vector<uint8_t> key;  // the unit's tables and length row
    std::shared_ptr<const FastTables> value;
  };
  constexpr size_t kEntries = 8;  // ~24 KiB each
  static std::mutex mutex;
  static std::vector<Entry> cache;  // most recently used last
  const size_t bytes = size_t(tables.n_tables + 1) * 256;
  {
    std::lock_guard<std::mutex> lock(mutex);
    for (size_t i = 0; i < cache.size(); ++i) {
      if (cache[i].key.size() == bytes && std::memcmp(cache[i].key.data(), tables.luts, bytes) == 0) {
        std::rotate(cache.begin() + long(i), cache.begin() + long(i) + 1, cache.end());
        return cache.back().value;
      }
    }
  }
  auto built = std::make_shared<FastTables>();
  BuildFastTables(tables, *built);
  std::lock_guard<std::mutex> lock(mutex);
  if (cache.size() == kEntries) cache.erase(cache.begin());
  cache.push_back(Entry{std::vector<uint8_t>(tables.luts, tables.luts + bytes), built});
  return built;
}

}  // namespace df11
}  // namespace iz
