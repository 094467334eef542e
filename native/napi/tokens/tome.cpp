// Bindings for token merging (native/core/tokens): ToMe steps on host typed arrays
// (sync + async) and on device memory (NativeBuffer, CPU or CUDA).
#include <napi.h>

#include <cstring>
#include <memory>
#include <vector>

#include "native/core/tokens/tome.h"
#include "native/napi/options.h"
#include "native/napi/paired.h"
#include "native/napi/registry.h"
#include "native/napi/tokens/dtype.h"
#include "native/napi/util.h"

namespace iz::napi {

namespace {

using iz::tokens::TokDType;
using iz::tokens::TomeShape;

std::vector<uint8_t> ProtectMask(const Napi::Object& o, int64_t n) {
  if (!Has(o, "protect")) return {};
  HostView v = OptView(o, "protect");
  IZ_CHECK(v.bytes == static_cast<size_t>(n), ShapeMismatch, "protected mask must hold one byte per token");
  return std::vector<uint8_t>(v.data, v.data + v.bytes);
}

// { x, metric?, sizes?, protect?, batch, n, c, cm, r, keepOrder }: the shape fields of both
// merge entry points.
TomeShape ParseShape(const Napi::Object& o) {
  TomeShape shape;
  shape.batch = OptInt(o, "batch", 1, int64_t(1) << 30);
  shape.n = OptInt(o, "n", 1, int64_t(1) << 30);
  shape.c = OptInt(o, "c", 1, int64_t(1) << 30);
  shape.cm = OptInt(o, "cm", 1, int64_t(1) << 30);
  shape.r = OptInt(o, "r", 0, int64_t(1) << 30);
  shape.keep_order = OptBool(o, "keepOrder", false);
  return shape;
}

struct HostArgs {
  TomeShape shape;
  HostView x, metric, sizes;
  bool has_metric = false, has_sizes = false;
  std::vector<uint8_t> protect;
};

HostArgs ParseHost(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  HostArgs a;
  a.shape = ParseShape(o);
  a.protect = ProtectMask(o, a.shape.n);
  iz::tokens::TomeValidateShape(a.shape, a.protect.empty() ? nullptr : a.protect.data());
  a.x = OptF32(o, "x", a.shape.batch * a.shape.n * a.shape.c);
  a.has_metric = Has(o, "metric");
  if (a.has_metric)
    a.metric = OptF32(o, "metric", a.shape.batch * a.shape.n * a.shape.cm);
  else
    IZ_CHECK(a.shape.cm == a.shape.c, ShapeMismatch, "without a metric, cm must equal c");
  a.has_sizes = Has(o, "sizes");
  if (a.has_sizes) a.sizes = OptF32(o, "sizes", a.shape.batch * a.shape.n);
  return a;
}

struct HostResult {
  std::vector<float> x, sizes;
  std::vector<int32_t> dest;
};

std::shared_ptr<HostResult> RunHost(const HostArgs& a) {
  auto res = std::make_shared<HostResult>();
  const auto& s = a.shape;
  res->x.resize(static_cast<size_t>(s.batch * (s.n - s.r) * s.c));
  res->sizes.resize(static_cast<size_t>(s.batch * (s.n - s.r)));
  res->dest.resize(static_cast<size_t>(s.batch * s.n));
  iz::tokens::TomeHostIn in;
  in.x = reinterpret_cast<const float*>(a.x.data);
  in.metric = a.has_metric ? reinterpret_cast<const float*>(a.metric.data) : in.x;
  in.sizes = a.has_sizes ? reinterpret_cast<const float*>(a.sizes.data) : nullptr;
  in.protect = a.protect.empty() ? nullptr : a.protect.data();
  iz::tokens::TomeMergeCpu(s, in, {res->x.data(), res->sizes.data(), res->dest.data()});
  return res;
}

Napi::Value HostResultJs(Napi::Env env, const HostResult& r) {
  Napi::Object o = Napi::Object::New(env);
  auto x = Napi::Float32Array::New(env, r.x.size());
  std::memcpy(x.Data(), r.x.data(), r.x.size() * 4);
  auto sizes = Napi::Float32Array::New(env, r.sizes.size());
  std::memcpy(sizes.Data(), r.sizes.data(), r.sizes.size() * 4);
  auto dest = Napi::Int32Array::New(env, r.dest.size());
  std::memcpy(dest.Data(), r.dest.data(), r.dest.size() * 4);
  o.Set("x", x);
  o.Set("sizes", sizes);
  o.Set("dest", dest);
  return o;
}

Napi::Value HostResultPtrJs(Napi::Env env, const std::shared_ptr<HostResult>& r) { return HostResultJs(env, *r); }

// the host fields with NativeBuffers for x, metric and sizes, plus dtype
struct DeviceArgs {
  TomeShape shape;
  TokDType dtype = TokDType::F32;
  MemoryPtr x, metric, sizes;
  std::vector<uint8_t> protect;
};

DeviceArgs ParseDevice(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  DeviceArgs a;
  a.shape = ParseShape(o);
  a.dtype = OptTokDType(o, "dtype", "x");
  a.protect = ProtectMask(o, a.shape.n);
  a.x = OptMemory(o, "x");
  a.metric = Has(o, "metric") ? OptMemory(o, "metric") : a.x;
  if (!Has(o, "metric")) IZ_CHECK(a.shape.cm == a.shape.c, ShapeMismatch, "without a metric, cm must equal c");
  if (Has(o, "sizes")) a.sizes = OptMemory(o, "sizes");
  iz::tokens::TomeValidateShape(a.shape, a.protect.empty() ? nullptr : a.protect.data());
  return a;
}

Napi::Value DeviceResultJs(Napi::Env env, const iz::tokens::TomeDeviceResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("x", WrapMemory(env, r.x));
  o.Set("sizes", WrapMemory(env, r.sizes));
  o.Set("dest", WrapMemory(env, r.dest));
  return o;
}

iz::tokens::TomeDeviceResult RunDevice(const DeviceArgs& a) {
  return iz::tokens::TomeMergeDevice(a.shape, a.dtype, a.x, a.metric, a.sizes, a.protect);
}

// { metric: Float32Array, protect?, batch, n, cm } -> { bestB: Int32Array, score: Float32Array }
Napi::Value TomeBestMatchJs(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    const Napi::Object o = OptionsArg(info);
    TomeShape s;
    s.batch = OptInt(o, "batch", 1, int64_t(1) << 30);
    s.n = OptInt(o, "n", 1, int64_t(1) << 30);
    s.cm = s.c = OptInt(o, "cm", 1, int64_t(1) << 30);
    std::vector<uint8_t> protect = ProtectMask(o, s.n);
    iz::tokens::TomeValidateShape(s, protect.empty() ? nullptr : protect.data());
    HostView m = OptF32(o, "metric", s.batch * s.n * s.cm);
    const int64_t na = iz::tokens::SideCountA(s.n);
    auto best = Napi::Int32Array::New(info.Env(), static_cast<size_t>(s.batch * na));
    auto score = Napi::Float32Array::New(info.Env(), static_cast<size_t>(s.batch * na));
    iz::tokens::TomeBestMatchCpu(s, reinterpret_cast<const float*>(m.data), protect.empty() ? nullptr : protect.data(),
                                 best.Data(), score.Data());
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("bestB", best);
    out.Set("score", score);
    return out;
  });
}

void InitTokens(Napi::Env env, Napi::Object exports) {
  ExportPaired(env, exports,
               PairedOp<HostArgs, std::shared_ptr<HostResult>>{"tokensTomeMerge", ParseHost, RunHost, HostResultPtrJs});
  ExportPaired(env, exports,
               PairedOp<DeviceArgs, iz::tokens::TomeDeviceResult>{"tokensTomeMergeDevice", ParseDevice, RunDevice,
                                                                  DeviceResultJs});
  exports.Set("tokensTomeBestMatch", Napi::Function::New(env, TomeBestMatchJs, "tokensTomeBestMatch"));
}

}  // namespace

IZ_REGISTER_MODULE(tokens, InitTokens);

}  // namespace iz::napi
