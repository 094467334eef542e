// Bindings for temporal video-token reduction (native/core/tokens/temporal.h):
// DyCoke and HoliTom (sync + async), plus HoliTom's segmentation and density-peak
// clustering alone (sync, for tests and callers composing their own pipeline).
#include <napi.h>

#include <memory>
#include <vector>

#include "native/core/tokens/exact.h"
#include "native/core/tokens/temporal.h"
#include "native/napi/paired.h"
#include "native/napi/registry.h"
#include "native/napi/tokens/typed_args.h"
#include "native/napi/util.h"

namespace iz::napi {

namespace {

using namespace iz::tokens;

constexpr int64_t kMaxDim = (int64_t(1) << 31) - 1;

struct VideoArgs {
  HostView x;
  VideoShape shape;
};

// (x, t, p, c, ...)
VideoArgs ParseVideo(const Napi::CallbackInfo& info) {
  VideoArgs a;
  a.shape.t = ArgInt(info, 1, "t", 1, kMaxDim);
  a.shape.p = ArgInt(info, 2, "p", 1, kMaxDim);
  a.shape.c = ArgInt(info, 3, "c", 1, kMaxDim);
  IZ_CHECK(a.shape.t * a.shape.p < (int64_t(1) << 31), ShapeMismatch, "frames holds more than 2^31 tokens");
  IZ_CHECK(a.shape.t * a.shape.p * a.shape.c <= (int64_t(1) << 40), ShapeMismatch, "frames is too large");
  a.x = F32View(info, 0, "frames", a.shape.t * a.shape.p * a.shape.c);
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

// (x, t, p, c, keep, merge)
struct DyCokeArgs {
  VideoArgs v;
  int64_t keep = 0;
  bool merge = false;
};
DyCokeArgs ParseDyCoke(const Napi::CallbackInfo& info) {
  DyCokeArgs a;
  a.v = ParseVideo(info);
  a.keep = ArgInt(info, 4, "keep", 0, a.v.shape.p);
  a.merge = ArgBool(info, 5, "merge");
  return a;
}
TemporalResult RunDyCoke(const DyCokeArgs& a) { return DyCokeCpu(F32(a.v.x), a.v.shape, a.keep, a.merge); }

// (x, t, p, c, tau, gridH, gridW, pool, keepRatio, attentionShare, knn, attention|null)
struct HoliTomArgs {
  VideoArgs v;
  HoliTomParams o;
  HostView attention;
  bool has_attention = false;
};
HoliTomArgs ParseHoliTom(const Napi::CallbackInfo& info) {
  HoliTomArgs a;
  a.v = ParseVideo(info);
  a.o.tau = ArgNumber(info, 4, "tau");
  a.o.grid_h = ArgInt(info, 5, "gridH", 0, kMaxDim);
  a.o.grid_w = ArgInt(info, 6, "gridW", 0, kMaxDim);
  a.o.pool = ArgInt(info, 7, "pool", 1, 1024);
  a.o.keep_ratio = ArgNumber(info, 8, "keepRatio");
  a.o.attention_share = ArgNumber(info, 9, "attentionShare");
  a.o.knn = ArgInt(info, 10, "knn", 1, 1024);
  a.has_attention = !IsNullish(info, 11);
  if (a.has_attention) a.attention = F32View(info, 11, "attention", a.v.shape.t * a.v.shape.p);
  return a;
}
TemporalResult RunHoliTom(const HoliTomArgs& a) {
  HoliTomParams o = a.o;
  o.attention = a.has_attention ? F32(a.attention) : nullptr;
  return HoliTomCpu(F32(a.v.x), a.v.shape, o);
}

// (stable Uint8Array [(t - 1) * p], t, p) -> Int32Array [first0, last0, first1, ...]
Napi::Value SegmentFramesJs(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    const int64_t t = ArgInt(info, 1, "t", 1, 1 << 20);
    const int64_t p = ArgInt(info, 2, "p", 0, kMaxDim);
    const HostView stable = ArgHostView(info, 0, "stable");
    IZ_CHECK(stable.bytes == static_cast<size_t>((t - 1) * p), ShapeMismatch, "stable must hold (t - 1) * p bytes");
    std::vector<int32_t> flat;
    for (const auto& [first, last] : SegmentFrames(stable.data, t, p)) {
      flat.push_back(first);
      flat.push_back(last);
    }
    return ToInt32Array(info.Env(), flat);
  });
}

// (x Float32Array [rows, c], c, ids Int32Array, centres, knn) -> { centres, label }
Napi::Value DensityPeakClustersJs(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    const int64_t c = ArgInt(info, 1, "c", 1, kMaxDim);
    const HostView x = ArgHostView(info, 0, "x");
    IZ_CHECK(x.type == napi_float32_array && x.bytes % (4 * c) == 0, ShapeMismatch, "x must be a Float32Array [rows, c]");
    const int64_t rows = static_cast<int64_t>(x.bytes / 4) / c;
    CheckFiniteF32(F32(x), rows * c, "x");
    const HostView idv = ArgHostView(info, 2, "ids");
    IZ_CHECK(idv.type == napi_int32_array, DtypeMismatch, "ids must be an Int32Array");
    const int32_t* idp = reinterpret_cast<const int32_t*>(idv.data);
    std::vector<int32_t> ids(idp, idp + idv.bytes / 4);
    IZ_CHECK(!ids.empty() && ids.size() <= static_cast<size_t>(kMaxClusterChunk), InvalidArgument,
             "ids must hold 1 to " + std::to_string(kMaxClusterChunk) + " token indices");
    for (int32_t id : ids) IZ_CHECK(id >= 0 && id < rows, InvalidArgument, "ids holds an index outside x");
    const int64_t want = ArgInt(info, 3, "centres", 0, kMaxDim);
    const int64_t knn = ArgInt(info, 4, "knn", 1, 1024);
    const Clusters cl = DensityPeakClusters(F32(x), c, ids, want, knn);
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("centres", ToInt32Array(info.Env(), cl.centres));
    o.Set("label", ToInt32Array(info.Env(), cl.label));
    return o;
  });
}

void InitTemporal(Napi::Env env, Napi::Object exports) {
  ExportPaired(env, exports, PairedOp<DyCokeArgs, TemporalResult>{"dycokeMerge", ParseDyCoke, RunDyCoke, TemporalJs});
  ExportPaired(env, exports, PairedOp<HoliTomArgs, TemporalResult>{"holitomMerge", ParseHoliTom, RunHoliTom, TemporalJs});
  exports.Set("segmentFrames", Napi::Function::New(env, SegmentFramesJs, "segmentFrames"));
  exports.Set("densityPeakClusters", Napi::Function::New(env, DensityPeakClustersJs, "densityPeakClusters"));
}

}  // namespace

IZ_REGISTER_MODULE(temporal, InitTemporal);

}  // namespace iz::napi
