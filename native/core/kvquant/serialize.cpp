#include "native/core/kvquant/serialize.h"

#include <cstring>

#include "native/shared/error.h"

namespace iz::kv {

const char* const kPlaneNames[kNumPlanes] = {"keyBlocks",  "keyCodes",    "keyParams", "valueBlocks",
                                             "valueCodes", "valueParams", "index",     "salientValues"};

namespace {

constexpr uint64_t kStateVersion = 2;
constexpr uint64_t kEvictVersion = 1;

class Writer {
 public:
  template <class T>
  void Put(T v) {
    const size_t at = out_.size();
    out_.resize(at + sizeof(T));
    std::memcpy(out_.data() + at, &v, sizeof(T));
  }
  template <class T>
  void PutArray(const std::vector<T>& v) {
    Put<uint64_t>(v.size());
    const size_t at = out_.size();
    out_.resize(at + v.size() * sizeof(T));
    if (!v.empty()) std::memcpy(out_.data() + at, v.data(), v.size() * sizeof(T));
  }
  std::vector<uint8_t> Take() { return std::move(out_); }

 private:
  std::vector<uint8_t> out_;
};

class Reader {
 public:
  Reader(const std::vector<uint8_t>& in, const std::string& what) : in_(in), what_(what) {}
  template <class T>
  T Get() {
    Need(sizeof(T));
    T v;
    std::memcpy(&v, in_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  template <class T>
  std::vector<T> GetArray(uint64_t max_elements) {
    const uint64_t n = Get<uint64_t>();
    IZ_CHECK(n <= max_elements, CorruptData,
             "saved KV cache: section '" + what_ + "' claims " + std::to_string(n) + " values");
    Need(n * sizeof(T));
    std::vector<T> v(n);
    if (n) std::memcpy(v.data(), in_.data() + at_, n * sizeof(T));
    at_ += n * sizeof(T);
    return v;
  }
  void End() const {
    IZ_CHECK(at_ == in_.size(), CorruptData, "saved KV cache: section '" + what_ + "' has trailing bytes");
  }

 private:
  void Need(uint64_t n) const {
    IZ_CHECK(n <= in_.size() - at_, CorruptData, "saved KV cache: section '" + what_ + "' is truncated");
  }
  const std::vector<uint8_t>& in_;
  std::string what_;
  size_t at_ = 0;
};

const std::vector<uint8_t>& Section(const Sections& s, const std::string& name) {
  auto it = s.find(name);
  IZ_CHECK(it != s.end(), CorruptData, "saved KV cache: section '" + name + "' is missing");
  return it->second;
}

std::vector<uint8_t> PerStream(const std::vector<std::vector<float>>& streams) {
  Writer w;
  w.Put<uint64_t>(streams.size());
  for (const auto& v : streams) w.PutArray(v);
  return w.Take();
}

std::vector<std::vector<float>> ReadPerStream(const Sections& s, const std::string& name, size_t streams,
                                              uint64_t max_each) {
  Reader r(Section(s, name), name);
  IZ_CHECK(r.Get<uint64_t>() == streams, CorruptData, "saved KV cache: '" + name + "' has the wrong number of streams");
  std::vector<std::vector<float>> out(streams);
  for (auto& v : out) v = r.GetArray<float>(max_each);
  r.End();
  return out;
}

}  // namespace

Sections SerializeCache(const KvCache& cache) {
  const KvCache::State st = cache.GetState();
  const CacheOptions& o = cache.options();
  const size_t streams = size_t(o.batch) * size_t(o.heads);
  Sections out;
  Writer state;
  state.Put<uint64_t>(kStateVersion);
  state.Put<int64_t>(st.tokens);
  state.Put<int64_t>(st.quantized_keys);
  state.Put<int64_t>(st.quantized_values);
  state.Put<uint8_t>(st.finalized ? 1 : 0);
  state.Put<uint8_t>(st.anomalous_chosen ? 1 : 0);
  out["state"] = state.Take();
  Writer order;
  order.PutArray(st.chan_order);
  out["channel_order"] = order.Take();
  Writer units;
  units.PutArray(st.units);
  out["units"] = units.Take();
  out["residual.k"] = PerStream(st.rk);
  out["residual.v"] = PerStream(st.rv);
  out["residual.score"] = PerStream(st.rscore);
  out["residual.count"] = PerStream(st.rcount);
  Writer strides;
  for (int p = 0; p < kNumPlanes; ++p) {
    const size_t stride = cache.PlaneData(p) ? cache.PlaneStride(p) : 0;
    strides.Put<uint64_t>(stride);
    if (stride == 0) continue;
    const uint8_t* data = cache.PlaneData(p);
    out[std::string("plane.") + kPlaneNames[p]].assign(data, data + stride * streams);
  }
  out["plane_strides"] = strides.Take();
  if (cache.evicting()) {
    // "evict": version, P, B, R, allocated, density, next position, slots, positions (i32 per
    // slot), then per stream: live flags (u8 per slot), scores (f32 per slot), tau (f32).
    const EvictState& ev = cache.evict_state();
    Writer w;
    w.Put<uint64_t>(kEvictVersion);
    w.Put<int64_t>(ev.prefill);
    w.Put<int64_t>(ev.budget);
    w.Put<int64_t>(ev.recent);
    w.Put<uint8_t>(ev.allocated ? 1 : 0);
    w.Put<double>(ev.density);
    w.Put<int64_t>(ev.next_pos);
    w.PutArray(ev.pos);
    w.Put<uint64_t>(ev.live.size());
    for (size_t s = 0; s < ev.live.size(); ++s) {
      w.PutArray(ev.live[s]);
      w.PutArray(ev.score[s]);
      w.Put<float>(ev.tau[s]);
    }
    out["evict"] = w.Take();
  }
  return out;
}

void DeserializeCache(KvCache& cache, const Sections& sections) {
  const CacheOptions& o = cache.options();
  const size_t streams = size_t(o.batch) * size_t(o.heads);
  const uint64_t d = uint64_t(o.head_dim);
  for (const auto& [name, bytes] : sections) {
    bool known = name == "state" || name == "channel_order" || name == "units" || name == "plane_strides" ||
                 (name == "evict" && cache.evicting()) || name.rfind("residual.", 0) == 0;
    for (int p = 0; p < kNumPlanes && !known; ++p) known = name == std::string("plane.") + kPlaneNames[p];
    IZ_CHECK(known, CorruptData, "saved KV cache: unknown section '" + name + "'");
  }
  KvCache::State st;
  Reader state(Section(sections, "state"), "state");
  IZ_CHECK(state.Get<uint64_t>() == kStateVersion, CorruptData, "saved KV cache: unsupported state version");
  st.tokens = state.Get<int64_t>();
  st.quantized_keys = state.Get<int64_t>();
  st.quantized_values = state.Get<int64_t>();
  const uint8_t finalized = state.Get<uint8_t>();
  const uint8_t anomalous = state.Get<uint8_t>();
  state.End();
  IZ_CHECK(finalized <= 1 && anomalous <= 1, CorruptData, "saved KV cache: bad flags");
  IZ_CHECK(st.tokens >= 0 && st.tokens <= (int64_t(1) << 40), CorruptData, "saved KV cache: bad token count");
  st.finalized = finalized == 1;
  st.anomalous_chosen = anomalous == 1;
  st.n_anom = cache.layout().n_anom;
  Reader order(Section(sections, "channel_order"), "channel_order");
  st.chan_order = order.GetArray<int16_t>(d);
  order.End();
  Reader units(Section(sections, "units"), "units");
  st.units = units.GetArray<uint64_t>(streams);
  units.End();
  const uint64_t window = uint64_t(st.tokens) * d;
  st.rk = ReadPerStream(sections, "residual.k", streams, window);
  st.rv = ReadPerStream(sections, "residual.v", streams, window);
  st.rscore = ReadPerStream(sections, "residual.score", streams, uint64_t(st.tokens));
  st.rcount = ReadPerStream(sections, "residual.count", streams, uint64_t(st.tokens));
  Reader strides(Section(sections, "plane_strides"), "plane_strides");
  std::vector<size_t> plane_strides(kNumPlanes);
  std::vector<std::vector<uint8_t>> planes(kNumPlanes);
  for (int p = 0; p < kNumPlanes; ++p) {
    const uint64_t stride = strides.Get<uint64_t>();
    IZ_CHECK(stride <= kMaxAllocationBytes / streams, CorruptData, "saved KV cache: bad plane stride");
    plane_strides[p] = size_t(stride);
    auto it = sections.find(std::string("plane.") + kPlaneNames[p]);
    if (stride == 0) {
      IZ_CHECK(it == sections.end(), CorruptData,
               std::string("saved KV cache: plane '") + kPlaneNames[p] + "' has data but no stride");
      continue;
    }
    IZ_CHECK(it != sections.end(), CorruptData,
             std::string("saved KV cache: plane '") + kPlaneNames[p] + "' is missing");
    planes[p] = it->second;
  }
  strides.End();
  // SetState cross-checks every size against the options and token counts, and the pool
  // index against the units, before it adopts anything.
  // Eviction state: read and checked in full before anything is adopted.
  EvictState ev;
  const bool evict = cache.evicting();
  if (evict) {
    Reader r(Section(sections, "evict"), "evict");
    IZ_CHECK(r.Get<uint64_t>() == kEvictVersion, CorruptData, "saved KV cache: unsupported eviction state version");
    ev.prefill = r.Get<int64_t>();
    ev.budget = r.Get<int64_t>();
    ev.recent = r.Get<int64_t>();
    const uint8_t allocated = r.Get<uint8_t>();
    IZ_CHECK(allocated <= 1, CorruptData, "saved KV cache: bad eviction flag");
    ev.allocated = allocated == 1;
    ev.density = r.Get<double>();
    ev.next_pos = r.Get<int64_t>();
    ev.pos = r.GetArray<int32_t>(uint64_t(st.tokens));
    IZ_CHECK(r.Get<uint64_t>() == streams, CorruptData, "saved KV cache: eviction state has the wrong stream count");
    ev.live.resize(streams);
    ev.score.resize(streams);
    ev.tau.resize(streams);
    for (size_t s = 0; s < streams; ++s) {
      ev.live[s] = r.GetArray<uint8_t>(uint64_t(st.tokens));
      ev.score[s] = r.GetArray<float>(uint64_t(st.tokens));
      ev.tau[s] = r.Get<float>();
    }
    r.End();
  }
  cache.SetState(st, planes, plane_strides);
  if (evict) cache.SetEvictState(ev);
}

}  // namespace iz::kv
