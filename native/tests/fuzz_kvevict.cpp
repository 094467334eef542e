// Fuzz target: restoring an evicting KV cache (H2O / D2O) from a hostile "evict" section must
// either throw CorruptData or yield a cache whose attention, eviction and dequantization run
// in bounds.
#include <cstdint>
#include <cstring>
#include <vector>

#include "native/core/kvquant/cache.h"
#include "native/core/kvquant/serialize.h"
#include "native/shared/error.h"

using namespace iz::kv;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  size_t pos = 0;
  auto byte = [&]() -> uint8_t { return pos < size ? data[pos++] : 0; };
  CacheOptions o;
  const int schemes[3] = {kKivi, kFp8, kZipCache};
  o.scheme = Scheme(schemes[byte() % 3]);
  o.bits = o.scheme == kKivi ? 2 : o.scheme == kZipCache ? 4 : 8;
  o.heads = 1 + byte() % 2;
  o.head_dim = 8;
  o.group = 4;
  o.channel_group = 8;
  o.window = 4;
  o.evict_method = 1 + byte() % 2;
  o.evict_budget = 0.5;
  try {
    KvCache cache(o);
    const size_t S = size_t(o.heads), d = 8;
    auto step = [&](KvCache& c, int n, int seed) {
      std::vector<float> k(S * size_t(n) * d), v(k.size());
      for (size_t i = 0; i < k.size(); ++i)
        k[i] = float(int((i * 7 + size_t(seed)) % 9) - 4), v[i] = float(int(i % 5) - 2);
      AppendInput in;
      in.k = k.data();
      in.v = v.data();
      in.n = n;
      c.Append(in);
      std::vector<float> out(S * size_t(n) * d);
      c.Attention(k.data(), o.heads, n, 0.5f, true, out.data());
    };
    step(cache, 16, 1);
    step(cache, 1, 2);
    Sections sec = SerializeCache(cache);
    std::vector<uint8_t>& ev = sec["evict"];
    const int edits = 1 + byte() % 6;
    for (int e = 0; e < edits && !ev.empty(); ++e) {
      switch (byte() % 3) {
        case 0:
          ev[byte() % ev.size()] ^= byte();
          break;
        case 1:
          ev[(size_t(byte()) << 8 | byte()) % ev.size()] = byte();
          break;
        default:
          ev.resize(ev.size() - std::min<size_t>(ev.size(), byte() % 4));
      }
    }
    KvCache restored(o);
    DeserializeCache(restored, sec);
    step(restored, 1, 3);
    std::vector<float> dk(S * size_t(restored.KeptTokens()) * d), dv(dk.size());
    restored.Dequantize(dk.data(), dv.data());
  } catch (const iz::Error&) {
  }
  return 0;
}
