// Bindings for temporal video-token reduction (native/core/tokens/temporal.h):
// DyCoke and HoliTom (sync + async), plus HoliTom's segmentation and density-peak
// clustering alone (sync, for tests and callers composing their own pipeline).
#include <napi.h>

#include <memory>
#include <vector>

#include "native/core/tokens/exact.h"
#include "native/core/tokens/temporal.h"
#include "native/napi/options.h"
#include "native/napi/paired.h"
#include "native/napi/registry.h"
#include "native/napi/util.h"

namespace iz::napi {

namespace {

using namespace iz::tokens;

struct VideoArgs {
  HostView x;
  VideoShape shape;
};

// { x, t, p, c, ... }
VideoArgs ParseVideo(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  VideoArgs a;
  a.shape.t = OptDim(o, "t");
  a.shape.p = OptDim(o, "p");
  a.shape.c = OptDim(o, "c");
  IZ_CHECK(a.shape.t * a.shape.p < (int64_t(1) << 31), ShapeMismatch, "frames holds more than 2^31 tokens");
  a.x = OptF32(o, "frames", {a.shape.t, a.shape.p, a.shape.c});
  return a;
}

Napi::Value TemporalJs(Napi::Env env, const TemporalResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("x", ToFloat32Array(env, r.x));
  o.Set("frame", ToInt32Array(env, r.frame));
  o.Set("position", ToInt32Array(env, r.position));
  o.Set("sizes", ToFloat32Array(env, r.sizes));
  o.Set("assignment", ToInt32Array(env, r.assignment));
  std::vector<int32_t> segs;
  for (const auto& [first, last] : r.segments) {
    segs.push_back(first);
    segs.push_back(last);
  }
  o.Set("segments", ToInt32Array(env, segs));
  return o;
}

// { x, t, p, c, keep, merge }
struct DyCokeArgs {
  VideoArgs v;
  int64_t keep = 0;
  bool merge = false;
};
DyCokeArgs ParseDyCoke(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  DyCokeArgs a;
  a.v = ParseVideo(info);
  a.keep = OptInt(o, "keep", 0, a.v.shape.p);
  a.merge = OptBool(o, "merge", false);
  return a;
}
TemporalResult RunDyCoke(const DyCokeArgs& a) { return DyCokeCpu(F32(a.v.x), a.v.shape, a.keep, a.merge); }

// { x, t, p, c, tau, gridH, gridW, pool, keepRatio, attentionShare, knn, attention? }
struct HoliTomArgs {
  VideoArgs v;
  HoliTomParams o;
  HostView attention;
  bool has_attention = false;
};
HoliTomArgs ParseHoliTom(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  HoliTomArgs a;
  a.v = ParseVideo(info);
  a.o.tau = OptNumber(o, "tau");
  a.o.grid_h = OptDim(o, "gridH", 0);
  a.o.grid_w = OptDim(o, "gridW", 0);
  a.o.pool = OptInt(o, "pool", 1, 1024);
  a.o.keep_ratio = OptNumber(o, "keepRatio");
  a.o.attention_share = OptNumber(o, "attentionShare");
  a.o.knn = OptInt(o, "knn", 1, 1024);
  a.has_attention = Has(o, "attention");
  if (a.has_attention) a.attention = OptF32(o, "attention", a.v.shape.t * a.v.shape.p);
  return a;
}
TemporalResult RunHoliTom(const HoliTomArgs& a) {
  HoliTomParams o = a.o;
  o.attention = a.has_attention ? F32(a.attention) : nullptr;
  return HoliTomCpu(F32(a.v.x), a.v.shape, o);
}

// { stable: Uint8Array [(t - 1) * p], t, p } -> Int32Array [first0, last0, first1, ...]
Napi::Value SegmentFramesJs(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    const Napi::Object o = OptionsArg(info);
    const int64_t t = OptInt(o, "t", 1, 1 << 20);
    const int64_t p = OptDim(o, "p", 0);
    const HostView stable = OptView(o, "stable");
    IZ_CHECK(stable.bytes == static_cast<size_t>((t - 1) * p), ShapeMismatch, "stable must hold (t - 1) * p bytes");
    std::vector<int32_t> flat;
    for (const auto& [first, last] : SegmentFrames(stable.data, t, p)) {
      flat.push_back(first);
      flat.push_back(last);
    }
    return ToInt32Array(info.Env(), flat);
  });
}

// { x: Float32Array [rows, c], c, ids: Int32Array, centres, knn } -> { centres, label }
Napi::Value DensityPeakClustersJs(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    const Napi::Object o = OptionsArg(info);
    const int64_t c = OptDim(o, "c");
    const HostView x = OptView(o, "x");
    IZ_CHECK(x.type == napi_float32_array && x.bytes % (4 * c) == 0, ShapeMismatch,
             "x must be a Float32Array [rows, c]");
    const int64_t rows = static_cast<int64_t>(x.bytes / 4) / c;
    CheckFiniteF32(F32(x), rows * c, "x");
    const HostView idv = OptView(o, "ids");
    IZ_CHECK(idv.type == napi_int32_array, DtypeMismatch, "ids must be an Int32Array");
    const int32_t* idp = reinterpret_cast<const int32_t*>(idv.data);
    std::vector<int32_t> ids(idp, idp + idv.bytes / 4);
    IZ_CHECK(!ids.empty() && ids.size() <= static_cast<size_t>(kMaxClusterChunk), InvalidArgument,
             "ids must hold 1 to " + std::to_string(kMaxClusterChunk) + " token indices");
    for (int32_t id : ids) IZ_CHECK(id >= 0 && id < rows, InvalidArgument, "ids holds an index outside x");
    const int64_t want = OptDim(o, "centres", 0);
    const int64_t knn = OptInt(o, "knn", 1, 1024);
    const Clusters cl = DensityPeakClusters(F32(x), c, ids, want, knn);
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("centres", ToInt32Array(info.Env(), cl.centres));
    out.Set("label", ToInt32Array(info.Env(), cl.label));
    return out;
  });
}

void InitTemporal(Napi::Env env, Napi::Object exports) {
  ExportPaired(env, exports,
               PairedOp<DyCokeArgs, TemporalResult>{"tokensDycokeMerge", ParseDyCoke, RunDyCoke, TemporalJs});
  ExportPaired(env, exports,
               PairedOp<HoliTomArgs, TemporalResult>{"tokensHolitomMerge", ParseHoliTom, RunHoliTom, TemporalJs});
  exports.Set("tokensSegmentFrames", Napi::Function::New(env, SegmentFramesJs, "tokensSegmentFrames"));
  exports.Set("tokensDensityPeakClusters",
              Napi::Function::New(env, DensityPeakClustersJs, "tokensDensityPeakClusters"));
}

}  // namespace

IZ_REGISTER_MODULE(temporal, InitTemporal);

}  // namespace iz::napi
