// Bindings for token merging (native/core/tokens): ToMe steps on host typed arrays
// (sync + async) and on device memory (NativeBuffer, CPU or CUDA).
#include <napi.h>

#include <cstring>
#include <memory>
#include <vector>

#include "native/core/tokens/tome.h"
#include "native/napi/paired.h"
#include "native/napi/registry.h"
#include "native/napi/tokens/typed_args.h"
#include "native/napi/util.h"

namespace iz::napi {

namespace {

using iz::tokens::TokDType;
using iz::tokens::TomeShape;

std::vector<uint8_t> ProtectMask(const Napi::CallbackInfo& info, size_t i, int64_t n) {
  if (IsNullish(info, i)) return {};
  HostView v = ArgHostView(info, i, "protected");
  IZ_CHECK(v.bytes == static_cast<size_t>(n), ShapeMismatch, "protected mask must hold one byte per token");
  return std::vector<uint8_t>(v.data, v.data + v.bytes);
}

// (x, metric|null, sizes|null, protect|null, batch, n, c, cm, r, keepOrder)
// Arguments 4..9 of both merge entry points: batch, n, c, cm, r, keepOrder.
TomeShape ParseShape(const Napi::CallbackInfo& info) {
  TomeShape shape;
  shape.batch = ArgInt(info, 4, "batch", 1, int64_t(1) << 30);
  shape.n = ArgInt(info, 5, "n", 1, int64_t(1) << 30);
  shape.c = ArgInt(info, 6, "c", 1, int64_t(1) << 30);
  shape.cm = ArgInt(info, 7, "cm", 1, int64_t(1) << 30);
  shape.r = ArgInt(info, 8, "r", 0, int64_t(1) << 30);
  shape.keep_order = ArgBool(info, 9, "keepOrder");
  return shape;
}

struct HostArgs {
  TomeShape shape;
  HostView x, metric, sizes;
  bool has_metric = false, has_sizes = false;
  std::vector<uint8_t> protect;
};

HostArgs ParseHost(const Napi::CallbackInfo& info) {
  HostArgs a;
  a.shape = ParseShape(info);
  a.protect = ProtectMask(info, 3, a.shape.n);
  iz::tokens::TomeValidateShape(a.shape, a.protect.empty() ? nullptr : a.protect.data());
  a.x = F32View(info, 0, "x", a.shape.batch * a.shape.n * a.shape.c);
  a.has_metric = !IsNullish(info, 1);
  if (a.has_metric) a.metric = F32View(info, 1, "metric", a.shape.batch * a.shape.n * a.shape.cm);
  else IZ_CHECK(a.shape.cm == a.shape.c, ShapeMismatch, "without a metric, cm must equal c");
  a.has_sizes = !IsNullish(info, 2);
  if (a.has_sizes) a.sizes = F32View(info, 2, "sizes", a.shape.batch * a.shape.n);
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

// (x, metric|null, sizes|null, protect|null, batch, n, c, cm, r, keepOrder, dtype)
struct DeviceArgs {
  TomeShape shape;
  TokDType dtype = TokDType::F32;
  MemoryPtr x, metric, sizes;
  std::vector<uint8_t> protect;
};

DeviceArgs ParseDevice(const Napi::CallbackInfo& info) {
  DeviceArgs a;
  a.shape = ParseShape(info);
  const std::string dt = ArgString(info, 10, "dtype");
  if (dt == "f32") a.dtype = TokDType::F32;
  else if (dt == "f16") a.dtype = TokDType::F16;
  else if (dt == "bf16") a.dtype = TokDType::BF16;
  else Fail(ErrorCode::DtypeMismatch, "token merging takes f32, f16 or bf16 tensors, got " + dt);
  a.protect = ProtectMask(info, 3, a.shape.n);
  a.x = ArgMemory(info, 0, "x");
  a.metric = IsNullish(info, 1) ? a.x : ArgMemory(info, 1, "metric");
  if (IsNullish(info, 1)) IZ_CHECK(a.shape.cm == a.shape.c, ShapeMismatch, "without a metric, cm must equal c");
  if (!IsNullish(info, 2)) a.sizes = ArgMemory(info, 2, "sizes");
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

// (metric Float32Array, protect|null, batch, n, cm) -> { bestB: Int32Array, score: Float32Array }
Napi::Value TomeBestMatchJs(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    TomeShape s;
    s.batch = ArgInt(info, 2, "batch", 1, int64_t(1) << 30);
    s.n = ArgInt(info, 3, "n", 1, int64_t(1) << 30);
    s.cm = s.c = ArgInt(info, 4, "cm", 1, int64_t(1) << 30);
    std::vector<uint8_t> protect = ProtectMask(info, 1, s.n);
    iz::tokens::TomeValidateShape(s, protect.empty() ? nullptr : protect.data());
    HostView m = F32View(info, 0, "metric", s.batch * s.n * s.cm);
    const int64_t na = iz::tokens::SideCountA(s.n);
    auto best = Napi::Int32Array::New(info.Env(), static_cast<size_t>(s.batch * na));
    auto score = Napi::Float32Array::New(info.Env(), static_cast<size_t>(s.batch * na));
    iz::tokens::TomeBestMatchCpu(s, reinterpret_cast<const float*>(m.data), protect.empty() ? nullptr : protect.data(),
                                 best.Data(), score.Data());
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("bestB", best);
    o.Set("score", score);
    return o;
  });
}

void InitTokens(Napi::Env env, Napi::Object exports) {
  ExportPaired(env, exports, PairedOp<HostArgs, std::shared_ptr<HostResult>>{"tomeMerge", ParseHost, RunHost, HostResultPtrJs});
  ExportPaired(env, exports, PairedOp<DeviceArgs, iz::tokens::TomeDeviceResult>{"tomeMergeDevice", ParseDevice, RunDevice, DeviceResultJs});
  exports.Set("tomeBestMatch", Napi::Function::New(env, TomeBestMatchJs, "tomeBestMatch"));
}

}  // namespace

IZ_REGISTER_MODULE(tokens, InitTokens);

}  // namespace iz::napi
