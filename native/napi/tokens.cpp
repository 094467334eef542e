// Bindings of token merging: tomeMerge (ToMe step) and rowCosine (same-position
// similarity for temporal merging). Inputs are host Float32Arrays; `device` picks the
// backend that computes the similarity matrix.
#include <napi.h>

#include <cmath>
#include <cstring>

#include "../core/tokens/tome.h"
#include "registry.h"
#include "util.h"
#if INFERZIP_WITH_CUDA
#include "../../cuda/tokens/match.h"
#endif

namespace iz::napi {

namespace {

const float* FloatView(const HostView& v, size_t count, const char* name) {
  IZ_CHECK(v.type == napi_float32_array, DtypeMismatch, std::string(name) + " must be a Float32Array");
  IZ_CHECK(v.bytes == count * sizeof(float), ShapeMismatch,
           std::string(name) + " holds " + std::to_string(v.bytes / 4) + " values, expected " + std::to_string(count));
  const float* p = reinterpret_cast<const float*>(v.data);
  for (size_t i = 0; i < count; ++i)
    IZ_CHECK(std::isfinite(p[i]), InvalidArgument, std::string(name) + " holds NaN or Inf at index " + std::to_string(i));
  return p;
}

Napi::Object ToJs(Napi::Env env, const tokens::TomeOutput& out) {
  Napi::Object o = Napi::Object::New(env);
  auto x = Napi::Float32Array::New(env, out.x.size());
  std::memcpy(x.Data(), out.x.data(), out.x.size() * sizeof(float));
  auto s = Napi::Float32Array::New(env, out.sizes.size());
  std::memcpy(s.Data(), out.sizes.data(), out.sizes.size() * sizeof(float));
  auto a = Napi::Int32Array::New(env, out.assign.size());
  std::memcpy(a.Data(), out.assign.data(), out.assign.size() * sizeof(int32_t));
  o.Set("x", x);
  o.Set("sizes", s);
  o.Set("assign", a);
  return o;
}

struct TomeJob {
  HostView x, metric, sizes, protect;
  bool has_sizes = false, has_protect = false, cuda = false;
  tokens::TomeInput in;
};

// tomeMerge(x, metric, sizes|null, protect|null, {batch, n, c, cm, r, keepOrder, device})
TomeJob ParseTome(const Napi::CallbackInfo& info) {
  TomeJob job;
  Napi::Object o = ArgObject(info, 4, "options");
  auto num = [&](const char* key, int64_t min, int64_t max) {
    Napi::Value v = o.Get(key);
    IZ_CHECK(v.IsNumber(), InvalidArgument, std::string("options.") + key + " must be a number");
    double d = v.As<Napi::Number>().DoubleValue();
    IZ_CHECK(std::floor(d) == d && d >= double(min) && d <= double(max), InvalidArgument, std::string("options.") + key + " is out of range");
    return size_t(d);
  };
  auto& in = job.in;
  in.batch = num("batch", 1, int64_t(1) << 20);
  in.n = num("n", 1, int64_t(1) << 24);
  in.c = num("c", 1, int64_t(1) << 20);
  in.cm = num("cm", 1, int64_t(1) << 20);
  in.r = num("r", 0, int64_t(1) << 24);
  in.keep_order = o.Get("keepOrder").ToBoolean().Value();
  job.cuda = o.Get("device").IsString() && o.Get("device").As<Napi::String>().Utf8Value() == "cuda";
  job.x = ArgHostView(info, 0, "x");
  job.metric = ArgHostView(info, 1, "metric");
  in.x = FloatView(job.x, in.batch * in.n * in.c, "x");
  in.metric = FloatView(job.metric, in.batch * in.n * in.cm, "metric");
  if (!info[2].IsNull() && !info[2].IsUndefined()) {
    job.sizes = ArgHostView(info, 2, "sizes");
    in.sizes = FloatView(job.sizes, in.batch * in.n, "sizes");
  }
  if (!info[3].IsNull() && !info[3].IsUndefined()) {
    job.protect = ArgHostView(info, 3, "protected");
    IZ_CHECK(job.protect.type == napi_uint8_array && job.protect.bytes == in.n, ShapeMismatch, "protected mask must be a Uint8Array of n entries");
    in.protect = job.protect.data;
  }
  return job;
}

tokens::TomeOutput RunTome(const TomeJob& job) {
#if INFERZIP_WITH_CUDA
  if (job.cuda) {
    const auto& in = job.in;
    size_t max_r = tokens::TomeMaxR(in.n, in.protect);
    IZ_CHECK(in.r <= max_r, InvalidArgument, "r = " + std::to_string(in.r) + " is larger than possible: at most " + std::to_string(max_r));
    tokens::TomeOutput out;
    size_t out_n = in.n - in.r, na = (in.n + 1) / 2;
    out.x.resize(in.batch * out_n * in.c);
    out.sizes.resize(in.batch * out_n);
    out.assign.resize(in.batch * in.n);
    std::vector<int32_t> best(na);
    std::vector<float> score(na);
    for (size_t b = 0; b < in.batch; ++b) {
      tokens::cuda::TomeMatch(in.metric + b * in.n * in.cm, in.n, in.cm, in.protect, best.data(), score.data());
      tokens::TomeSelectAndMerge(in.x + b * in.n * in.c, in.sizes ? in.sizes + b * in.n : nullptr, in.n, in.c, in.r, in.keep_order,
                                 best.data(), score.data(), out.x.data() + b * out_n * in.c, out.sizes.data() + b * out_n,
                                 out.assign.data() + b * in.n);
    }
    return out;
  }
#endif
  IZ_CHECK(!job.cuda, NoDevice, "token merging on CUDA needs a build with the CUDA backend");
  return tokens::TomeMerge(job.in);
}

Napi::Value TomeMergeSync(const Napi::CallbackInfo& info) {
  return Guard(info, [](const Napi::CallbackInfo& info) -> Napi::Value {
    TomeJob job = ParseTome(info);
    return ToJs(info.Env(), RunTome(job));
  });
}

Napi::Value TomeMergeAsync(const Napi::CallbackInfo& info) {
  return Guard(info, [](const Napi::CallbackInfo& info) -> Napi::Value {
    auto job = std::make_shared<TomeJob>(ParseTome(info));
    return RunAsync(info.Env(), "inferzip.tomeMerge", [job]() -> Completion {
      auto out = std::make_shared<tokens::TomeOutput>(RunTome(*job));
      return [out, job](Napi::Env env) { return ToJs(env, *out); };
    });
  });
}

// rowCosine(a, b, m, c) -> Float32Array[m]
Napi::Value RowCosineJs(const Napi::CallbackInfo& info) {
  return Guard(info, [](const Napi::CallbackInfo& info) -> Napi::Value {
    auto m = size_t(ArgInt(info, 2, "rows", 0, int64_t(1) << 32));
    auto c = size_t(ArgInt(info, 3, "channels", 1, int64_t(1) << 24));
    HostView a = ArgHostView(info, 0, "a"), b = ArgHostView(info, 1, "b");
    const float* pa = FloatView(a, m * c, "a");
    const float* pb = FloatView(b, m * c, "b");
    auto out = Napi::Float32Array::New(info.Env(), m);
    tokens::RowCosine(pa, pb, m, c, out.Data());
    return out;
  });
}

void InitTokens(Napi::Env env, Napi::Object exports) {
  exports.Set("tomeMergeSync", Napi::Function::New(env, TomeMergeSync, "tomeMergeSync"));
  exports.Set("tomeMerge", Napi::Function::New(env, TomeMergeAsync, "tomeMerge"));
  exports.Set("rowCosine", Napi::Function::New(env, RowCosineJs, "rowCosine"));
}

}  // namespace

IZ_REGISTER_MODULE(tokens, InitTokens);

}  // namespace iz::napi
