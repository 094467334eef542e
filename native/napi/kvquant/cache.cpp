// Bindings for KV-cache quantization: a KvCache handle (append / attention / dequantize /
// state for save-load), dense attention (baseline) and the scalar primitives the spec
// vectors test. Every entry point re-validates sizes: the TypeScript layer is not trusted.
#include <napi.h>

#include <cmath>
#include <memory>
#include <mutex>

#include <cstring>

#include "native/shared/kvquant/encode.h"
#include "native/core/kvquant/cache.h"
#include "native/napi/registry.h"
#include "native/napi/util.h"

namespace iz::napi {

namespace {

using kv::CacheOptions;
using kv::KvCache;

struct Shared {
  std::mutex mu;  // one operation at a time per cache (async jobs run on worker threads)
  std::unique_ptr<KvCache> cache;
};

double OptNumber(Napi::Object o, const char* key, double def) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return def;
  if (!v.IsNumber()) Fail(ErrorCode::InvalidArgument, std::string("option '") + key + "' must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) Fail(ErrorCode::InvalidArgument, std::string("option '") + key + "' must be finite");
  return d;
}
int OptInt(Napi::Object o, const char* key, int def, int lo, int hi) {
  double d = OptNumber(o, key, def);
  if (std::floor(d) != d || d < lo || d > hi)
    Fail(ErrorCode::InvalidArgument, std::string("option '") + key + "' must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int>(d);
}

CacheOptions ParseOptions(Napi::Object o) {
  CacheOptions c;
  Napi::Value scheme = o.Get("scheme");
  if (!scheme.IsString()) Fail(ErrorCode::InvalidArgument, "option 'scheme' must be a string");
  std::string s = scheme.As<Napi::String>().Utf8Value();
  if (s == "kivi") c.scheme = kv::kKivi;
  else if (s == "vidkv") c.scheme = kv::kVidKV;
  else if (s == "zipcache") c.scheme = kv::kZipCache;
  else if (s == "fp8") c.scheme = kv::kFp8;
  else Fail(ErrorCode::InvalidArgument, "unknown scheme '" + s + "': use kivi, vidkv, zipcache or fp8");
  c.bits = OptInt(o, "bits", 2, 0, 64);
  c.fp8_format = OptInt(o, "fp8Format", 0, 0, 1);
  c.batch = OptInt(o, "batch", 1, 1, 1 << 20);
  c.heads = OptInt(o, "heads", 1, 1, 4096);
  c.head_dim = OptInt(o, "headDim", 0, 0, 1 << 20);
  c.group = OptInt(o, "groupSize", 32, 1, 1 << 20);
  c.channel_group = OptInt(o, "channelGroupSize", 32, 1, 1 << 20);
  c.window = OptInt(o, "residualLength", 128, 0, 1 << 20);
  c.anomalous_fraction = OptNumber(o, "anomalousFraction", 0.5);
  c.salient_fraction = OptNumber(o, "salientFraction", 0.2);
  c.low_fraction = OptNumber(o, "lowFraction", 0.4);
  c.probe_fraction = OptNumber(o, "probeFraction", 0.05);
  c.seed = static_cast<uint64_t>(OptInt(o, "seed", 0, 0, 0x7fffffff));
  Napi::Value dev = o.Get("device");
  if (!dev.IsUndefined() && !dev.IsNull()) {
    if (!dev.IsString()) Fail(ErrorCode::InvalidArgument, "option 'device' must be 'cpu' or 'cuda'");
    c.device = ParseDevice(dev.As<Napi::String>().Utf8Value());
    if (c.device == Device::Cuda && !GetBackendInfo().cuda_available)
      Fail(ErrorCode::NoDevice, "device 'cuda' was requested but " + GetBackendInfo().reason);
  }
  kv::ValidateOptions(c);
  return c;
}

const float* F32(const HostView& v, size_t want, const char* name) {
  if (v.type != napi_float32_array) Fail(ErrorCode::DtypeMismatch, std::string(name) + " must be a Float32Array");
  if (v.bytes != want * 4)
    Fail(ErrorCode::ShapeMismatch, std::string(name) + " holds " + std::to_string(v.bytes / 4) + " values, expected " + std::to_string(want));
  return reinterpret_cast<const float*>(v.data);
}

Napi::Float32Array NewF32(Napi::Env env, const std::vector<float>& data) {
  auto arr = Napi::Float32Array::New(env, data.size());
  if (!data.empty()) std::memcpy(arr.Data(), data.data(), data.size() * 4);
  return arr;
}

Napi::Object StatsJs(Napi::Env env, const kv::CacheStats& st) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("tokens", double(st.tokens));
  o.Set("quantizedKeys", double(st.quantized_keys));
  o.Set("quantizedValues", double(st.quantized_values));
  o.Set("packedKeyBytes", double(st.packed_key_bytes));
  o.Set("packedValueBytes", double(st.packed_value_bytes));
  o.Set("residualBytes", double(st.residual_bytes));
  o.Set("capacityBytes", double(st.capacity_bytes));
  return o;
}

class KvCacheHandle : public Napi::ObjectWrap<KvCacheHandle> {
 public:
  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, "KvCacheHandle",
                                    {
                                        InstanceMethod<&KvCacheHandle::Append>("append"),
                                        InstanceMethod<&KvCacheHandle::AppendAsync>("appendAsync"),
                                        InstanceMethod<&KvCacheHandle::Finalize>("finalize"),
                                        InstanceMethod<&KvCacheHandle::Attention>("attention"),
                                        InstanceMethod<&KvCacheHandle::AttentionAsync>("attentionAsync"),
                                        InstanceMethod<&KvCacheHandle::Dequantize>("dequantize"),
                                        InstanceMethod<&KvCacheHandle::DequantizeAsync>("dequantizeAsync"),
                                        InstanceMethod<&KvCacheHandle::Stats>("stats"),
                                        InstanceMethod<&KvCacheHandle::Plane>("plane"),
                                        InstanceMethod<&KvCacheHandle::GetState>("getState"),
                                        InstanceMethod<&KvCacheHandle::SetState>("setState"),
                                        InstanceMethod<&KvCacheHandle::Dispose>("dispose"),
                                    });
    exports.Set("KvCacheHandle", fn);
  }

  explicit KvCacheHandle(const Napi::CallbackInfo& call) : Napi::ObjectWrap<KvCacheHandle>(call) {
    Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      CacheOptions opt = ParseOptions(ArgObject(info, 0, "options"));
      shared_ = std::make_shared<Shared>();
      shared_->cache = std::make_unique<KvCache>(opt);
      return info.Env().Undefined();
    });
  }

 private:
  std::shared_ptr<Shared> Get(Napi::Env env) {
    if (!shared_) ThrowJs(env, ErrorCode::Disposed, "this KV cache was disposed");
    return shared_;
  }

  // append(k, v, n, queries|null, qHeads, scores|null)
  std::function<void()> PrepareAppend(const Napi::CallbackInfo& info) {
    auto sh = Get(info.Env());
    const CacheOptions& o = sh->cache->options();
    int64_t n = ArgInt(info, 2, "tokens", 0, int64_t(1) << 31);
    size_t rows = size_t(o.batch) * size_t(o.heads) * size_t(n);
    auto k = std::make_shared<HostView>(ArgHostView(info, 0, "k"));
    auto v = std::make_shared<HostView>(ArgHostView(info, 1, "v"));
    F32(*k, rows * o.head_dim, "k");
    F32(*v, rows * o.head_dim, "v");
    std::shared_ptr<HostView> q, sc;
    int q_heads = 0;
    if (info.Length() > 3 && !info[3].IsNull() && !info[3].IsUndefined()) {
      q_heads = static_cast<int>(ArgInt(info, 4, "qHeads", 1, 1 << 16));
      q = std::make_shared<HostView>(ArgHostView(info, 3, "queries"));
      F32(*q, size_t(o.batch) * size_t(q_heads) * size_t(n) * o.head_dim, "queries");
      if (q_heads % o.heads != 0) Fail(ErrorCode::ShapeMismatch, "query heads must be a multiple of the KV heads");
    }
    if (info.Length() > 5 && !info[5].IsNull() && !info[5].IsUndefined()) {
      sc = std::make_shared<HostView>(ArgHostView(info, 5, "scores"));
      F32(*sc, rows, "scores");
    }
    return [sh, k, v, q, sc, q_heads, n]() {
      std::lock_guard<std::mutex> lock(sh->mu);
      kv::AppendInput in;
      in.k = reinterpret_cast<const float*>(k->data);
      in.v = reinterpret_cast<const float*>(v->data);
      in.n = n;
      in.queries = q ? reinterpret_cast<const float*>(q->data) : nullptr;
      in.q_heads = q_heads;
      in.scores = sc ? reinterpret_cast<const float*>(sc->data) : nullptr;
      sh->cache->Append(in);
    };
  }

  Napi::Value Append(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      PrepareAppend(info)();
      return info.Env().Undefined();
    });
  }
  Napi::Value AppendAsync(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      auto work = PrepareAppend(info);
      return RunAsync(info.Env(), "kvAppend", [work]() -> Completion {
        work();
        return nullptr;
      });
    });
  }
  Napi::Value Finalize(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      auto sh = Get(info.Env());
      std::lock_guard<std::mutex> lock(sh->mu);
      sh->cache->Finalize();
      return info.Env().Undefined();
    });
  }

  // attention(q, qHeads, nq, scale, causal)
  std::function<std::vector<float>()> PrepareAttention(const Napi::CallbackInfo& info) {
    auto sh = Get(info.Env());
    const CacheOptions& o = sh->cache->options();
    int q_heads = static_cast<int>(ArgInt(info, 1, "qHeads", 1, 1 << 16));
    int64_t nq = ArgInt(info, 2, "queries", 1, int64_t(1) << 31);
    float scale = static_cast<float>(ArgNumber(info, 3, "scale"));
    bool causal = ArgBool(info, 4, "causal");
    auto q = std::make_shared<HostView>(ArgHostView(info, 0, "q"));
    size_t n = size_t(o.batch) * size_t(q_heads) * size_t(nq) * size_t(o.head_dim);
    F32(*q, n, "q");
    return [sh, q, q_heads, nq, scale, causal, n]() {
      std::lock_guard<std::mutex> lock(sh->mu);
      std::vector<float> out(n);
      sh->cache->Attention(reinterpret_cast<const float*>(q->data), q_heads, nq, scale, causal, out.data());
      return out;
    };
  }
  Napi::Value Attention(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value { return NewF32(info.Env(), PrepareAttention(info)()); });
  }
  Napi::Value AttentionAsync(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      auto work = PrepareAttention(info);
      return RunAsync(info.Env(), "kvAttention", [work]() -> Completion {
        auto out = std::make_shared<std::vector<float>>(work());
        return [out](Napi::Env env) -> Napi::Value { return NewF32(env, *out); };
      });
    });
  }

  // Dequantizes straight into JS-owned Float32Arrays allocated here on the main thread
  // (no intermediate copy of the whole cache).
  struct DequantJob {
    std::shared_ptr<Shared> sh;
    std::shared_ptr<Napi::Reference<Napi::Object>> out;
    float* k;
    float* v;
  };
  DequantJob PrepareDequantize(Napi::Env env) {
    auto sh = Get(env);
    size_t n;
    {
      std::lock_guard<std::mutex> lock(sh->mu);
      const CacheOptions& o = sh->cache->options();
      n = size_t(o.batch) * size_t(o.heads) * size_t(sh->cache->tokens()) * size_t(o.head_dim);
    }
    auto k = Napi::Float32Array::New(env, n);
    auto v = Napi::Float32Array::New(env, n);
    Napi::Object o = Napi::Object::New(env);
    o.Set("k", k);
    o.Set("v", v);
    return {sh, std::make_shared<Napi::Reference<Napi::Object>>(Napi::Persistent(o)), k.Data(), v.Data()};
  }
  static void RunDequantize(const DequantJob& job, size_t expected) {
    std::lock_guard<std::mutex> lock(job.sh->mu);
    const CacheOptions& o = job.sh->cache->options();
    size_t n = size_t(o.batch) * size_t(o.heads) * size_t(job.sh->cache->tokens()) * size_t(o.head_dim);
    IZ_CHECK(n == expected, Internal, "the cache changed size during dequantize");
    job.sh->cache->Dequantize(job.k, job.v);
  }
  Napi::Value Dequantize(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      DequantJob job = PrepareDequantize(info.Env());
      size_t n = job.out->Value().Get("k").As<Napi::Float32Array>().ElementLength();
      RunDequantize(job, n);
      return job.out->Value();
    });
  }
  Napi::Value DequantizeAsync(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      DequantJob job = PrepareDequantize(info.Env());
      size_t n = job.out->Value().Get("k").As<Napi::Float32Array>().ElementLength();
      return RunAsync(info.Env(), "kvDequantize", [job, n]() -> Completion {
        RunDequantize(job, n);
        return [job](Napi::Env) -> Napi::Value { return job.out->Value(); };
      });
    });
  }

  Napi::Value Stats(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      auto sh = Get(info.Env());
      std::lock_guard<std::mutex> lock(sh->mu);
      return StatsJs(info.Env(), sh->cache->Stats());
    });
  }

  // plane(i) -> { buffer: NativeBuffer, stride } | null. The buffer shares the plane's
  // memory (valid until the next append grows it).
  Napi::Value Plane(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      auto sh = Get(info.Env());
      int p = static_cast<int>(ArgInt(info, 0, "plane", 0, kv::kNumPlanes - 1));
      std::lock_guard<std::mutex> lock(sh->mu);
      MemoryPtr mem = sh->cache->PlaneMemory(p);
      if (!mem) return info.Env().Null();
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("buffer", WrapMemory(info.Env(), mem));
      o.Set("stride", double(sh->cache->PlaneStride(p)));
      return o;
    });
  }

  Napi::Value GetState(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      Napi::Env env = info.Env();
      auto sh = Get(env);
      std::lock_guard<std::mutex> lock(sh->mu);
      KvCache::State st = sh->cache->GetState();
      Napi::Object o = Napi::Object::New(env);
      o.Set("tokens", double(st.tokens));
      o.Set("quantizedKeys", double(st.quantized_keys));
      o.Set("quantizedValues", double(st.quantized_values));
      o.Set("finalized", st.finalized);
      o.Set("anomalousChosen", st.anomalous_chosen);
      auto order = Napi::Int16Array::New(env, st.chan_order.size());
      for (size_t i = 0; i < st.chan_order.size(); ++i) order[i] = st.chan_order[i];
      o.Set("channelOrder", order);
      auto units = Napi::Float64Array::New(env, st.units.size());
      for (size_t i = 0; i < st.units.size(); ++i) units[i] = double(st.units[i]);
      o.Set("units", units);
      auto concat = [&](const std::vector<std::vector<float>>& parts) {
        std::vector<float> all;
        for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
        return NewF32(env, all);
      };
      o.Set("residualK", concat(st.rk));
      o.Set("residualV", concat(st.rv));
      o.Set("residualScore", concat(st.rscore));
      o.Set("residualCount", concat(st.rcount));
      Napi::Array planes = Napi::Array::New(env, kv::kNumPlanes);
      for (int p = 0; p < kv::kNumPlanes; ++p) {
        size_t stride = sh->cache->PlaneStride(p);
        const uint8_t* data = sh->cache->PlaneData(p);
        size_t bytes = data ? stride * size_t(sh->cache->options().batch) * size_t(sh->cache->options().heads) : 0;
        auto arr = Napi::Uint8Array::New(env, bytes);
        if (bytes) std::memcpy(arr.Data(), data, bytes);
        Napi::Object po = Napi::Object::New(env);
        po.Set("stride", double(data ? stride : 0));
        po.Set("data", arr);
        planes.Set(uint32_t(p), po);
      }
      o.Set("planes", planes);
      return o;
    });
  }

  Napi::Value SetState(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      Napi::Env env = info.Env();
      auto sh = Get(env);
      Napi::Object o = ArgObject(info, 0, "state");
      const CacheOptions& opt = sh->cache->options();
      const size_t S = size_t(opt.batch) * size_t(opt.heads);
      const size_t d = size_t(opt.head_dim);
      auto num = [&](const char* key) {
        Napi::Value v = o.Get(key);
        if (!v.IsNumber()) Fail(ErrorCode::CorruptData, std::string("saved KV cache: '") + key + "' is missing");
        double x = v.As<Napi::Number>().DoubleValue();
        if (!std::isfinite(x) || x < 0 || x > 9.0e15 || std::floor(x) != x) Fail(ErrorCode::CorruptData, std::string("saved KV cache: bad '") + key + "'");
        return static_cast<int64_t>(x);
      };
      KvCache::State st;
      st.tokens = num("tokens");
      st.quantized_keys = num("quantizedKeys");
      st.quantized_values = num("quantizedValues");
      st.finalized = o.Get("finalized").ToBoolean();
      st.anomalous_chosen = o.Get("anomalousChosen").ToBoolean();
      st.n_anom = sh->cache->layout().n_anom;
      IZ_CHECK(st.quantized_keys <= st.tokens && st.quantized_values <= st.tokens && st.tokens <= (int64_t(1) << 40), CorruptData,
               "saved KV cache: token counts are inconsistent");
      HostView order = ToHostView(env, o.Get("channelOrder"), "channelOrder");
      IZ_CHECK(order.type == napi_int16_array && order.bytes == d * 2, CorruptData, "saved KV cache: channel order has the wrong size");
      st.chan_order.assign(reinterpret_cast<int16_t*>(order.data), reinterpret_cast<int16_t*>(order.data) + d);
      HostView units = ToHostView(env, o.Get("units"), "units");
      IZ_CHECK(units.type == napi_float64_array && units.bytes == S * 8, CorruptData, "saved KV cache: pool units have the wrong size");
      for (size_t s = 0; s < S; ++s) {
        double u = reinterpret_cast<double*>(units.data)[s];
        IZ_CHECK(std::isfinite(u) && u >= 0 && u <= 4294967295.0 && std::floor(u) == u, CorruptData, "saved KV cache: bad pool unit count");
        st.units.push_back(uint64_t(u));
      }
      auto split = [&](const char* key, size_t per_stream) {
        HostView v = ToHostView(env, o.Get(key), key);
        IZ_CHECK(v.type == napi_float32_array && v.bytes == per_stream * S * 4, CorruptData, std::string("saved KV cache: '") + key + "' has the wrong size");
        std::vector<std::vector<float>> out(S);
        const float* f = reinterpret_cast<const float*>(v.data);
        for (size_t s = 0; s < S; ++s) out[s].assign(f + s * per_stream, f + (s + 1) * per_stream);
        return out;
      };
      st.rk = split("residualK", size_t(st.tokens - st.quantized_keys) * d);
      st.rv = split("residualV", size_t(st.tokens - st.quantized_values) * d);
      bool salience = opt.scheme == kv::kZipCache || opt.scheme == kv::kVidKV;
      st.rscore = split("residualScore", salience ? size_t(st.tokens - st.quantized_keys) : 0);
      st.rcount = split("residualCount", salience ? size_t(st.tokens - st.quantized_keys) : 0);
      Napi::Value pv = o.Get("planes");
      IZ_CHECK(pv.IsArray() && pv.As<Napi::Array>().Length() == kv::kNumPlanes, CorruptData, "saved KV cache: planes are missing");
      std::vector<std::vector<uint8_t>> planes(kv::kNumPlanes);
      std::vector<size_t> strides(kv::kNumPlanes);
      for (int p = 0; p < kv::kNumPlanes; ++p) {
        Napi::Value e = pv.As<Napi::Array>().Get(uint32_t(p));
        IZ_CHECK(e.IsObject(), CorruptData, "saved KV cache: plane entry is not an object");
        Napi::Value sv = e.As<Napi::Object>().Get("stride");
        IZ_CHECK(sv.IsNumber(), CorruptData, "saved KV cache: plane stride is missing");
        double stride = sv.As<Napi::Number>().DoubleValue();
        IZ_CHECK(std::isfinite(stride) && stride >= 0 && std::floor(stride) == stride && stride * double(S) <= double(kMaxAllocationBytes), CorruptData,
                 "saved KV cache: bad plane stride");
        strides[p] = size_t(stride);
        HostView data = ToHostView(env, e.As<Napi::Object>().Get("data"), "plane data");
        planes[p].assign(data.data, data.data + data.bytes);
      }
      std::lock_guard<std::mutex> lock(sh->mu);
      sh->cache->SetState(st, planes, strides);
      return env.Undefined();
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    shared_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<Shared> shared_;
};

// denseAttention(q, batch, qHeads, nq, k, v, heads, T, d, scale, causal, async)
Napi::Value DenseAttentionJs(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    int batch = static_cast<int>(ArgInt(info, 1, "batch", 1, 1 << 20));
    int q_heads = static_cast<int>(ArgInt(info, 2, "qHeads", 1, 1 << 16));
    int64_t nq = ArgInt(info, 3, "queries", 1, int64_t(1) << 31);
    int heads = static_cast<int>(ArgInt(info, 6, "heads", 1, 1 << 16));
    int64_t T = ArgInt(info, 7, "tokens", 1, int64_t(1) << 40);
    int d = static_cast<int>(ArgInt(info, 8, "headDim", 1, 1 << 16));
    float scale = static_cast<float>(ArgNumber(info, 9, "scale"));
    bool causal = ArgBool(info, 10, "causal");
    bool async = info.Length() > 11 && info[11].ToBoolean();
    auto q = std::make_shared<HostView>(ArgHostView(info, 0, "q"));
    auto k = std::make_shared<HostView>(ArgHostView(info, 4, "k"));
    auto v = std::make_shared<HostView>(ArgHostView(info, 5, "v"));
    size_t nout = size_t(batch) * q_heads * size_t(nq) * d;
    F32(*q, nout, "q");
    F32(*k, size_t(batch) * heads * size_t(T) * d, "k");
    F32(*v, size_t(batch) * heads * size_t(T) * d, "v");
    auto run = [=]() {
      auto out = std::make_shared<std::vector<float>>(nout);
      kv::DenseAttention(reinterpret_cast<const float*>(q->data), batch, q_heads, nq, reinterpret_cast<const float*>(k->data),
                         reinterpret_cast<const float*>(v->data), heads, T, d, scale, causal, out->data());
      return out;
    };
    if (!async) return NewF32(info.Env(), *run());
    return RunAsync(info.Env(), "kvDenseAttention", [run]() -> Completion {
      auto out = run();
      return [out](Napi::Env env) -> Napi::Value { return NewF32(env, *out); };
    });
  });
}

// --- scalar primitives (the spec's check vectors run through the shared headers) ---

// kvPackCodes(codes: Uint32Array, bits) -> Uint32Array
Napi::Value PackCodes(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    HostView codes = ArgHostView(info, 0, "codes");
    int bits = static_cast<int>(ArgInt(info, 1, "bits", 1, 16));
    IZ_CHECK(32 % bits == 0, InvalidArgument, "bits must divide 32");
    IZ_CHECK(codes.type == napi_uint32_array, DtypeMismatch, "codes must be a Uint32Array");
    size_t n = codes.bytes / 4;
    auto out = Napi::Uint32Array::New(info.Env(), kv::Words(uint64_t(n) * bits));
    std::memset(out.Data(), 0, out.ByteLength());
    for (size_t i = 0; i < n; ++i) {
      uint32_t c = reinterpret_cast<uint32_t*>(codes.data)[i];
      IZ_CHECK(c < (1u << bits), InvalidArgument, "code " + std::to_string(c) + " does not fit in " + std::to_string(bits) + " bits");
      kv::OrCode(out.Data(), uint64_t(i) * bits, bits, c);
    }
    return out;
  });
}

// kvQuantizeGroup(values: Float32Array, bits) -> { codes, scale, min, values }
Napi::Value QuantizeGroup(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    HostView v = ArgHostView(info, 0, "values");
    int bits = static_cast<int>(ArgInt(info, 1, "bits", 1, 8));
    IZ_CHECK(32 % bits == 0, InvalidArgument, "bits must divide 32");
    size_t n = v.bytes / 4;
    const float* x = F32(v, n, "values");
    IZ_CHECK(n >= 1, InvalidArgument, "a group needs at least one value");
    std::vector<uint32_t> words(kv::Words(uint64_t(n) * bits) + 1, 0);
    kv::Affine a = kv::EncodeUniformGroup(x, static_cast<int>(n), 1, bits, words.data(), 0);
    Napi::Env env = info.Env();
    auto codes = Napi::Uint32Array::New(env, n);
    auto recon = Napi::Float32Array::New(env, n);
    for (size_t i = 0; i < n; ++i) {
      codes[i] = kv::ReadCode(words.data(), uint64_t(i) * bits, bits);
      recon[i] = kv::DequantizeUniform(codes[i], a);
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("codes", codes);
    o.Set("scale", a.scale);
    o.Set("min", a.min);
    o.Set("values", recon);
    return o;
  });
}

// kvTernary(values) -> { digits, scale, values } ; kvSign(values, scale) -> values
Napi::Value Ternary(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    HostView v = ArgHostView(info, 0, "values");
    size_t n = v.bytes / 4;
    const float* x = F32(v, n, "values");
    float sum = 0;
    for (size_t i = 0; i < n; ++i) sum += std::fabs(x[i]);
    float s = kv::RoundF16(n ? sum / float(n) : 0.0f);
    std::vector<uint8_t> packed((n + 4) / 5 + 1, 0);
    for (size_t i = 0; i < n; ++i) kv::AddTrit(packed.data(), i, kv::TernaryDigit(x[i], s));
    Napi::Env env = info.Env();
    auto q = Napi::Int32Array::New(env, n);
    auto recon = Napi::Float32Array::New(env, n);
    for (size_t i = 0; i < n; ++i) {
      uint32_t dgt = kv::ReadTrit(packed.data(), i);
      q[i] = int32_t(dgt) - 1;
      recon[i] = kv::TernaryValue(dgt, s);
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("q", q);
    o.Set("scale", s);
    o.Set("values", recon);
    o.Set("packedBytes", double((n + 4) / 5));
    return o;
  });
}

Napi::Value SignCodes(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    HostView v = ArgHostView(info, 0, "values");
    float scale = static_cast<float>(ArgNumber(info, 1, "scale"));
    size_t n = v.bytes / 4;
    const float* x = F32(v, n, "values");
    auto out = Napi::Float32Array::New(info.Env(), n);
    for (size_t i = 0; i < n; ++i) out[i] = kv::SignValue(kv::SignCode(x[i]), scale);
    return out;
  });
}

// kvFp8(values, format) -> { bytes: Uint8Array, values: Float32Array }
Napi::Value Fp8(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    HostView v = ArgHostView(info, 0, "values");
    int format = static_cast<int>(ArgInt(info, 1, "format", 0, 1));
    size_t n = v.bytes / 4;
    const float* x = F32(v, n, "values");
    auto bytes = Napi::Uint8Array::New(info.Env(), n);
    auto recon = Napi::Float32Array::New(info.Env(), n);
    for (size_t i = 0; i < n; ++i) {
      bytes[i] = static_cast<uint8_t>(kv::Fp8Encode(x[i], format));
      recon[i] = kv::Fp8Decode(bytes[i], format);
    }
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("bytes", bytes);
    o.Set("values", recon);
    return o;
  });
}

void Init(Napi::Env env, Napi::Object exports) {
  KvCacheHandle::Init(env, exports);
  exports.Set("kvDenseAttention", Napi::Function::New(env, DenseAttentionJs));
  exports.Set("kvPackCodes", Napi::Function::New(env, PackCodes));
  exports.Set("kvQuantizeGroup", Napi::Function::New(env, QuantizeGroup));
  exports.Set("kvTernary", Napi::Function::New(env, Ternary));
  exports.Set("kvSignCodes", Napi::Function::New(env, SignCodes));
  exports.Set("kvFp8", Napi::Function::New(env, Fp8));
}

}  // namespace

IZ_REGISTER_MODULE(kvquant, Init);

}  // namespace iz::napi
