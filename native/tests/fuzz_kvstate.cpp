// Fuzz target: restoring a KV cache from hostile saved state must either throw CorruptData
// or yield a cache whose attention and dequantization stay in bounds.
#include <cstdint>
#include <cstring>
#include <vector>

#include "native/core/kvquant/cache.h"
#include "native/shared/error.h"

using namespace iz::kv;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  size_t pos = 0;
  auto byte = [&]() -> uint8_t { return pos < size ? data[pos++] : 0; };
  CacheOptions o;
  o.scheme = Scheme(byte() % 4);
  o.bits = o.scheme == kKivi ? (byte() % 2 ? 4 : 2) : o.scheme == kZipCache ? 4 : o.scheme == kFp8 ? 8 : 2;
  o.heads = 1 + byte() % 2;
  o.head_dim = 8 * (1 + byte() % 2);
  o.group = 8;
  o.channel_group = 8;
  o.window = 8 * (byte() % 3);
  try {
    KvCache cache(o);
    // a real state as the starting point, then mutate its numbers and bytes from the input
    std::vector<float> k(size_t(o.heads) * 20 * o.head_dim, 0.5f), v(k.size(), -0.25f);
    for (size_t i = 0; i < k.size(); ++i) k[i] = float(int(i % 7) - 3), v[i] = float(int(i % 5) - 2);
    AppendInput in;
    in.k = k.data();
    in.v = v.data();
    in.n = 20;
    cache.Append(in);
    KvCache::State st = cache.GetState();
    std::vector<std::vector<uint8_t>> planes(kNumPlanes);
    std::vector<size_t> strides(kNumPlanes);
    const size_t S = size_t(o.heads);
    for (int p = 0; p < kNumPlanes; ++p) {
      strides[p] = cache.PlaneStride(p);
      if (cache.PlaneData(p)) planes[p].assign(cache.PlaneData(p), cache.PlaneData(p) + strides[p] * S);
    }
    int edits = byte() % 8;
    for (int e = 0; e < edits; ++e) {
      switch (byte() % 6) {
        case 0:
          st.tokens += int8_t(byte());
          break;
        case 1:
          st.quantized_keys += int8_t(byte());
          break;
        case 2:
          st.quantized_values += int8_t(byte());
          break;
        case 3:
          if (!st.units.empty()) st.units[0] += int8_t(byte());
          break;
        case 4: {
          int p = byte() % kNumPlanes;
          strides[p] = byte();
          break;
        }
        default: {
          int p = byte() % kNumPlanes;
          if (!planes[p].empty()) planes[p][byte() % planes[p].size()] ^= byte();
        }
      }
    }
    for (int p = 0; p < kNumPlanes; ++p)
      planes[p].resize(std::min<size_t>(planes[p].size(), strides[p] * S), 0), planes[p].resize(strides[p] * S, 0);
    KvCache restored(o);
    restored.SetState(st, planes, strides);
    if (restored.tokens() > 0) {
      std::vector<float> q(size_t(o.heads) * o.head_dim, 0.3f), out(q.size());
      restored.Attention(q.data(), o.heads, 1, 0.5f, true, out.data());
      std::vector<float> dk(size_t(restored.tokens()) * S * o.head_dim), dv(dk.size());
      restored.Dequantize(dk.data(), dv.data());
    }
  } catch (const iz::Error&) {
  }
  return 0;
}
