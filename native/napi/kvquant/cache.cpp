// Bindings for KV-cache quantization: a KvCache handle (append / attention / dequantize /
// state for save-load), dense attention (baseline) and the scalar primitives the spec
// vectors test. Every entry point re-validates sizes: the TypeScript layer is not trusted.
#include <napi.h>

#include <cmath>
#include <memory>
#include <mutex>

#include <cstring>

#include "native/core/kvquant/cache.h"
#include "native/core/kvquant/serialize.h"
#include "native/napi/options.h"
#include "native/napi/paired.h"
#include "native/napi/registry.h"
#include "native/napi/util.h"
#include "native/shared/kvquant/encode.h"

namespace iz::napi {

namespace {

using kv::CacheOptions;
using kv::KvCache;

struct Shared {
  std::mutex mu;  // one operation at a time per cache (async jobs run on worker threads)
  std::unique_ptr<KvCache> cache;
};

// Every option is required: defaults live in TypeScript (lib/kvquant/options.ts) only.
CacheOptions ParseOptions(const Napi::Object& o) {
  CacheOptions c;
  const std::string s = OptString(o, "scheme");
  if (s == "kivi")
    c.scheme = kv::kKivi;
  else if (s == "vidkv")
    c.scheme = kv::kVidKV;
  else if (s == "zipcache")
    c.scheme = kv::kZipCache;
  else if (s == "fp8")
    c.scheme = kv::kFp8;
  else
    Fail(ErrorCode::InvalidArgument, "unknown scheme '" + s + "': use kivi, vidkv, zipcache or fp8");
  c.bits = static_cast<int>(OptInt(o, "bits", 0, 64));
  c.fp8_format = static_cast<int>(OptInt(o, "fp8Format", 0, 1));
  c.batch = static_cast<int>(OptInt(o, "batch", 1, 1 << 20));
  c.heads = static_cast<int>(OptInt(o, "heads", 1, 4096));
  c.head_dim = static_cast<int>(OptInt(o, "headDim", 0, 1 << 20));
  c.group = static_cast<int>(OptInt(o, "groupSize", 1, 1 << 20));
  c.channel_group = static_cast<int>(OptInt(o, "channelGroupSize", 1, 1 << 20));
  c.window = static_cast<int>(OptInt(o, "residualLength", 0, 1 << 20));
  c.anomalous_fraction = OptNumber(o, "anomalousFraction");
  c.salient_fraction = OptNumber(o, "salientFraction");
  c.low_fraction = OptNumber(o, "lowFraction");
  c.probe_fraction = OptNumber(o, "probeFraction");
  c.seed = static_cast<uint64_t>(OptInt(o, "seed", 0, 0x7fffffff));
  c.device = ParseDevice(OptString(o, "device"));
  const std::string method = OptString(o, "evictMethod");
  if (method == "none")
    c.evict_method = kv::kEvictNone;
  else if (method == "h2o")
    c.evict_method = kv::kEvictH2O;
  else if (method == "d2o")
    c.evict_method = kv::kEvictD2O;
  else
    Fail(ErrorCode::InvalidArgument, "unknown eviction method '" + method + "': use none, h2o or d2o");
  c.evict_budget = OptNumber(o, "evictBudget");
  c.evict_recent = OptNumber(o, "evictRecent");
  c.evict_granularity = static_cast<int>(OptInt(o, "evictGranularity", 0, 1));
  c.evict_beta = OptNumber(o, "evictBeta");
  if (c.device == Device::Cuda && !GetBackendInfo().cuda_available) {
    Fail(ErrorCode::NoDevice, "device 'cuda' was requested but " + GetBackendInfo().reason);
  }
  c.device_index = static_cast<int>(OptInt(o, "deviceIndex", 0, kMaxCudaDevices - 1, 0));
  if (c.device == Device::Cuda) CheckCudaIndex(c.device_index);
  kv::ValidateOptions(c);
  return c;
}

const float* CheckF32(const HostView& v, size_t want, const char* name) {
  if (v.type != napi_float32_array) Fail(ErrorCode::DtypeMismatch, std::string(name) + " must be a Float32Array");
  if (v.bytes != want * 4)
    Fail(ErrorCode::ShapeMismatch,
         std::string(name) + " holds " + std::to_string(v.bytes / 4) + " values, expected " + std::to_string(want));
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
  o.Set("slots", double(st.slots));
  o.Set("evictionBytes", double(st.eviction_bytes));
  o.Set("liveQuantizedKeys", st.live_quantized_keys);
  o.Set("liveQuantizedValues", st.live_quantized_values);
  return o;
}

// The JS side of one KvCache. Operations are free functions (kvAppend, kvAttention, ...)
// exported through ExportPaired, taking the handle as their `cache` option.
class KvCacheHandle : public Napi::ObjectWrap<KvCacheHandle> {
 public:
  static constexpr napi_type_tag kTypeTag = {0x6b76636163686531ULL, 0x696e6665727a6970ULL};
  static constexpr const char* kClassName = "KvCacheHandle";

  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn = DefineClass(env, kClassName,
                                    {
                                        InstanceMethod<&KvCacheHandle::Finalize>("finalize"),
                                        InstanceMethod<&KvCacheHandle::Stats>("stats"),
                                        InstanceMethod<&KvCacheHandle::Plane>("plane"),
                                        InstanceMethod<&KvCacheHandle::Serialize>("serialize"),
                                        InstanceMethod<&KvCacheHandle::Deserialize>("deserialize"),
                                        InstanceMethod<&KvCacheHandle::EvictState>("evictState"),
                                        InstanceMethod<&KvCacheHandle::EvictAllocate>("evictAllocate"),
                                        InstanceMethod<&KvCacheHandle::MirrorCheck>("mirrorCheck"),
                                        InstanceMethod<&KvCacheHandle::Dispose>("dispose"),
                                    });
    exports.Set(kClassName, fn);
  }

  // new KvCacheHandle(options)
  explicit KvCacheHandle(const Napi::CallbackInfo& call) : Napi::ObjectWrap<KvCacheHandle>(call) {
    Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      const CacheOptions opt = ParseOptions(OptionsArg(info));
      shared_ = std::make_shared<Shared>();
      shared_->cache = std::make_unique<KvCache>(opt);
      info.This().As<Napi::Object>().TypeTag(&kTypeTag);
      return info.Env().Undefined();
    });
  }

  std::shared_ptr<Shared> Get(Napi::Env env) {
    if (!shared_) ThrowJs(env, ErrorCode::Disposed, "this KV cache was disposed");
    return shared_;
  }

 private:
  Napi::Value Finalize(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      auto sh = Get(info.Env());
      std::lock_guard<std::mutex> lock(sh->mu);
      sh->cache->Finalize();
      return info.Env().Undefined();
    });
  }

  Napi::Value Stats(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      auto sh = Get(info.Env());
      std::lock_guard<std::mutex> lock(sh->mu);
      return StatsJs(info.Env(), sh->cache->Stats());
    });
  }

  // plane({ index }) -> { buffer: NativeBuffer, stride } | null. The buffer shares the
  // plane's memory (valid until the next append grows it).
  Napi::Value Plane(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      auto sh = Get(info.Env());
      const int p = static_cast<int>(OptInt(OptionsArg(info), "index", 0, kv::kNumPlanes - 1));
      std::lock_guard<std::mutex> lock(sh->mu);
      MemoryPtr mem = sh->cache->PlaneMemory(p);
      if (!mem) return info.Env().Null();
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("buffer", WrapMemory(info.Env(), mem));
      o.Set("stride", double(sh->cache->PlaneStride(p)));
      return o;
    });
  }

  // serialize() -> { [section]: Uint8Array }: the saved form, made in core (kvquant/serialize.h).
  Napi::Value Serialize(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      auto sh = Get(info.Env());
      kv::Sections sections;
      {
        std::lock_guard<std::mutex> lock(sh->mu);
        sections = kv::SerializeCache(*sh->cache);
      }
      Napi::Object out = Napi::Object::New(info.Env());
      for (const auto& [name, bytes] : sections) {
        auto arr = Napi::Uint8Array::New(info.Env(), bytes.size());
        if (!bytes.empty()) std::memcpy(arr.Data(), bytes.data(), bytes.size());
        out.Set(name, arr);
      }
      return out;
    });
  }

  // deserialize({ [section]: Uint8Array }): restores a saved form; core checks every byte.
  Napi::Value Deserialize(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      auto sh = Get(info.Env());
      const Napi::Object o = OptionsArg(info);
      kv::Sections sections;
      const Napi::Array names = o.GetPropertyNames();
      for (uint32_t i = 0; i < names.Length(); ++i) {
        const std::string name = names.Get(i).As<Napi::String>().Utf8Value();
        const HostView v = OptView(o, name.c_str());
        sections[name].assign(v.data, v.data + v.bytes);
      }
      std::lock_guard<std::mutex> lock(sh->mu);
      kv::DeserializeCache(*sh->cache, sections);
      return info.Env().Undefined();
    });
  }

  // evictState() -> { prefill, budget, recent, allocated, density, kept, positions, scores, tau }
  // (positions and scores [streams][kept]; prefill -1 before the first attention call).
  Napi::Value EvictState(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      auto sh = Get(info.Env());
      std::lock_guard<std::mutex> lock(sh->mu);
      const KvCache& c = *sh->cache;
      const kv::EvictState& ev = c.evict_state();
      std::vector<int32_t> pos;
      std::vector<float> score;
      c.KeptPositions(pos, score);
      Napi::Env env = info.Env();
      Napi::Object o = Napi::Object::New(env);
      o.Set("prefill", double(ev.prefill));
      o.Set("budget", double(ev.budget));
      o.Set("recent", double(ev.recent));
      o.Set("allocated", ev.allocated);
      o.Set("density", ev.density);
      o.Set("kept", double(c.KeptTokens()));
      auto p = Napi::Int32Array::New(env, pos.size());
      if (!pos.empty()) std::memcpy(p.Data(), pos.data(), pos.size() * 4);
      o.Set("positions", p);
      o.Set("scores", NewF32(env, score));
      o.Set("tau", NewF32(env, ev.tau));
      return o;
    });
  }

  // mirrorCheck() -> { differingBytes, roundUploadBytes, wholeUploadBytes, rounds } (tests: a
  // CUDA cache's device mirror against its host planes, and what eviction rounds uploaded).
  Napi::Value MirrorCheck(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      auto sh = Get(info.Env());
      std::lock_guard<std::mutex> lock(sh->mu);
      const KvCache::MirrorCheck m = sh->cache->CheckMirror();
      Napi::Object o = Napi::Object::New(info.Env());
      o.Set("differingBytes", double(m.differing_bytes));
      o.Set("roundUploadBytes", double(m.round_upload_bytes));
      o.Set("wholeUploadBytes", double(m.whole_upload_bytes));
      o.Set("rounds", double(m.rounds));
      return o;
    });
  }

  // evictAllocate({ budget, recent }): a d2o layer budget (allocateD2OBudgets), then its round.
  Napi::Value EvictAllocate(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      auto sh = Get(info.Env());
      const Napi::Object o = OptionsArg(info);
      const int64_t budget = OptInt(o, "budget", 1, int64_t(1) << 40);
      const int64_t recent = OptInt(o, "recent", 0, int64_t(1) << 40);
      std::lock_guard<std::mutex> lock(sh->mu);
      sh->cache->AllocateBudget(budget, recent);
      return info.Env().Undefined();
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    shared_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<Shared> shared_;
};

// --- cache operations: sync + async through ExportPaired, in call order per cache (lib/ops.ts
// queues them; the mutex guards the native state against a misbehaving caller).

// { cache, k, v, tokens, queries?, qHeads?, scores? }
struct AppendArgs {
  std::shared_ptr<Shared> sh;
  HostView k, v, queries, scores;
  int64_t tokens = 0;
  int q_heads = 0;
};

AppendArgs ParseAppend(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  AppendArgs a;
  a.sh = OptWrapped<KvCacheHandle>(o, "cache")->Get(info.Env());
  const CacheOptions& opt = a.sh->cache->options();
  a.tokens = OptInt(o, "tokens", 0, int64_t(1) << 31);
  const size_t rows = size_t(opt.batch) * size_t(opt.heads) * size_t(a.tokens);
  a.k = OptView(o, "k");
  a.v = OptView(o, "v");
  CheckF32(a.k, rows * opt.head_dim, "k");
  CheckF32(a.v, rows * opt.head_dim, "v");
  if (Has(o, "queries")) {
    a.q_heads = static_cast<int>(OptInt(o, "qHeads", 1, 1 << 16));
    a.queries = OptView(o, "queries");
    CheckF32(a.queries, size_t(opt.batch) * size_t(a.q_heads) * size_t(a.tokens) * opt.head_dim, "queries");
    if (a.q_heads % opt.heads != 0) Fail(ErrorCode::ShapeMismatch, "query heads must be a multiple of the KV heads");
  }
  if (Has(o, "scores")) {
    a.scores = OptView(o, "scores");
    CheckF32(a.scores, rows, "scores");
  }
  return a;
}

struct Done {};
Done RunAppend(const AppendArgs& a) {
  std::lock_guard<std::mutex> lock(a.sh->mu);
  kv::AppendInput in;
  in.k = reinterpret_cast<const float*>(a.k.data);
  in.v = reinterpret_cast<const float*>(a.v.data);
  in.n = a.tokens;
  in.queries = a.queries.data ? reinterpret_cast<const float*>(a.queries.data) : nullptr;
  in.q_heads = a.q_heads;
  in.scores = a.scores.data ? reinterpret_cast<const float*>(a.scores.data) : nullptr;
  a.sh->cache->Append(in);
  return {};
}
Napi::Value DoneJs(Napi::Env env, const Done&) { return env.Undefined(); }

// { cache, q, qHeads, queries, scale, causal }
struct AttentionArgs {
  std::shared_ptr<Shared> sh;
  HostView q;
  int q_heads = 0;
  int64_t queries = 0;
  float scale = 1;
  bool causal = true;
  size_t out_elements = 0;
};

AttentionArgs ParseAttention(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  AttentionArgs a;
  a.sh = OptWrapped<KvCacheHandle>(o, "cache")->Get(info.Env());
  const CacheOptions& opt = a.sh->cache->options();
  a.q_heads = static_cast<int>(OptInt(o, "qHeads", 1, 1 << 16));
  a.queries = OptInt(o, "queries", 1, int64_t(1) << 31);
  a.scale = static_cast<float>(OptNumber(o, "scale"));
  a.causal = OptBool(o, "causal", true);
  a.q = OptView(o, "q");
  a.out_elements = size_t(opt.batch) * size_t(a.q_heads) * size_t(a.queries) * size_t(opt.head_dim);
  CheckF32(a.q, a.out_elements, "q");
  return a;
}

std::vector<float> RunAttention(const AttentionArgs& a) {
  std::lock_guard<std::mutex> lock(a.sh->mu);
  std::vector<float> out(a.out_elements);
  a.sh->cache->Attention(reinterpret_cast<const float*>(a.q.data), a.q_heads, a.queries, a.scale, a.causal, out.data());
  return out;
}
Napi::Value F32Js(Napi::Env env, const std::vector<float>& v) { return NewF32(env, v); }

// { cache } -> { k, v }: dequantizes straight into Float32Arrays allocated on the main thread
// when the call is parsed (no intermediate copy of the whole cache).
struct DequantArgs {
  std::shared_ptr<Shared> sh;
  std::shared_ptr<Napi::Reference<Napi::Object>> out;
  float* k = nullptr;
  float* v = nullptr;
  size_t elements = 0;
};

DequantArgs ParseDequantize(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  DequantArgs a;
  a.sh = OptWrapped<KvCacheHandle>(o, "cache")->Get(info.Env());
  {
    std::lock_guard<std::mutex> lock(a.sh->mu);
    const CacheOptions& opt = a.sh->cache->options();
    a.elements = size_t(opt.batch) * size_t(opt.heads) * size_t(a.sh->cache->KeptTokens()) * size_t(opt.head_dim);
  }
  auto k = Napi::Float32Array::New(info.Env(), a.elements);
  auto v = Napi::Float32Array::New(info.Env(), a.elements);
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("k", k);
  out.Set("v", v);
  a.out = std::make_shared<Napi::Reference<Napi::Object>>(Napi::Persistent(out));
  a.k = k.Data();
  a.v = v.Data();
  return a;
}

using DequantResult = std::shared_ptr<Napi::Reference<Napi::Object>>;
DequantResult RunDequantize(const DequantArgs& a) {
  std::lock_guard<std::mutex> lock(a.sh->mu);
  const CacheOptions& o = a.sh->cache->options();
  const size_t n = size_t(o.batch) * size_t(o.heads) * size_t(a.sh->cache->KeptTokens()) * size_t(o.head_dim);
  IZ_CHECK(n == a.elements, Internal, "the cache changed size during dequantize");
  a.sh->cache->Dequantize(a.k, a.v);
  return a.out;
}
Napi::Value DequantJs(Napi::Env, const DequantResult& r) { return r->Value(); }

// { q, batch, qHeads, queries, k, v, heads, tokens, headDim, scale, causal }
struct DenseArgs {
  HostView q, k, v;
  int batch = 1, q_heads = 1, heads = 1, d = 1;
  int64_t nq = 1, tokens = 1;
  float scale = 1;
  bool causal = true;
};

DenseArgs ParseDense(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  DenseArgs a;
  a.batch = static_cast<int>(OptInt(o, "batch", 1, 1 << 20));
  a.q_heads = static_cast<int>(OptInt(o, "qHeads", 1, 1 << 16));
  a.nq = OptInt(o, "queries", 1, int64_t(1) << 31);
  a.heads = static_cast<int>(OptInt(o, "heads", 1, 1 << 16));
  a.tokens = OptInt(o, "tokens", 1, int64_t(1) << 40);
  a.d = static_cast<int>(OptInt(o, "headDim", 1, 1 << 16));
  a.scale = static_cast<float>(OptNumber(o, "scale"));
  a.causal = OptBool(o, "causal", true);
  a.q = OptView(o, "q");
  a.k = OptView(o, "k");
  a.v = OptView(o, "v");
  CheckF32(a.q, size_t(a.batch) * a.q_heads * size_t(a.nq) * a.d, "q");
  CheckF32(a.k, size_t(a.batch) * a.heads * size_t(a.tokens) * a.d, "k");
  CheckF32(a.v, size_t(a.batch) * a.heads * size_t(a.tokens) * a.d, "v");
  return a;
}

std::vector<float> RunDense(const DenseArgs& a) {
  std::vector<float> out(size_t(a.batch) * a.q_heads * size_t(a.nq) * a.d);
  kv::DenseAttention(reinterpret_cast<const float*>(a.q.data), a.batch, a.q_heads, a.nq,
                     reinterpret_cast<const float*>(a.k.data), reinterpret_cast<const float*>(a.v.data), a.heads,
                     a.tokens, a.d, a.scale, a.causal, out.data());
  return out;
}

// --- scalar primitives (the spec's check vectors run through the shared headers) ---

// kvPackCodes({ codes: Uint32Array, bits }) -> Uint32Array
Napi::Value PackCodes(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    const Napi::Object o = OptionsArg(info);
    HostView codes = OptView(o, "codes");
    const int bits = static_cast<int>(OptInt(o, "bits", 1, 16));
    IZ_CHECK(32 % bits == 0, InvalidArgument, "bits must divide 32");
    IZ_CHECK(codes.type == napi_uint32_array, DtypeMismatch, "codes must be a Uint32Array");
    size_t n = codes.bytes / 4;
    auto out = Napi::Uint32Array::New(info.Env(), kv::Words(uint64_t(n) * bits));
    std::memset(out.Data(), 0, out.ByteLength());
    for (size_t i = 0; i < n; ++i) {
      uint32_t c = reinterpret_cast<uint32_t*>(codes.data)[i];
      IZ_CHECK(c < (1u << bits), InvalidArgument,
               "code " + std::to_string(c) + " does not fit in " + std::to_string(bits) + " bits");
      kv::OrCode(out.Data(), uint64_t(i) * bits, bits, c);
    }
    return out;
  });
}

// kvQuantizeGroup({ values: Float32Array, bits }) -> { codes, scale, min, values }
Napi::Value QuantizeGroup(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    const Napi::Object opt = OptionsArg(info);
    HostView v = OptView(opt, "values");
    const int bits = static_cast<int>(OptInt(opt, "bits", 1, 8));
    IZ_CHECK(32 % bits == 0, InvalidArgument, "bits must divide 32");
    size_t n = v.bytes / 4;
    const float* x = CheckF32(v, n, "values");
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

// kvTernary({ values }) -> { q, scale, values, packedBytes }; kvSignCodes({ values, scale }) -> values
Napi::Value Ternary(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    HostView v = OptView(OptionsArg(info), "values");
    size_t n = v.bytes / 4;
    const float* x = CheckF32(v, n, "values");
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
    const Napi::Object opt = OptionsArg(info);
    HostView v = OptView(opt, "values");
    const float scale = static_cast<float>(OptNumber(opt, "scale"));
    size_t n = v.bytes / 4;
    const float* x = CheckF32(v, n, "values");
    auto out = Napi::Float32Array::New(info.Env(), n);
    for (size_t i = 0; i < n; ++i) out[i] = kv::SignValue(kv::SignCode(x[i]), scale);
    return out;
  });
}

// kvFp8({ values, format: 0 (e4m3) | 1 (e5m2) }) -> { bytes: Uint8Array, values: Float32Array }
Napi::Value Fp8(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    const Napi::Object opt = OptionsArg(info);
    HostView v = OptView(opt, "values");
    const int format = static_cast<int>(OptInt(opt, "format", 0, 1));
    size_t n = v.bytes / 4;
    const float* x = CheckF32(v, n, "values");
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
  ExportPaired(env, exports, PairedOp<AppendArgs, Done>{"kvAppend", ParseAppend, RunAppend, DoneJs});
  ExportPaired(env, exports,
               PairedOp<AttentionArgs, std::vector<float>>{"kvAttention", ParseAttention, RunAttention, F32Js});
  ExportPaired(env, exports,
               PairedOp<DequantArgs, DequantResult>{"kvDequantize", ParseDequantize, RunDequantize, DequantJs});
  ExportPaired(env, exports, PairedOp<DenseArgs, std::vector<float>>{"kvDenseAttention", ParseDense, RunDense, F32Js});
  exports.Set("kvPackCodes", Napi::Function::New(env, PackCodes));
  exports.Set("kvQuantizeGroup", Napi::Function::New(env, QuantizeGroup));
  exports.Set("kvTernary", Napi::Function::New(env, Ternary));
  exports.Set("kvSignCodes", Napi::Function::New(env, SignCodes));
  exports.Set("kvFp8", Napi::Function::New(env, Fp8));
}

}  // namespace

IZ_REGISTER_MODULE(kvquant, Init);

}  // namespace iz::napi
