// Binding for TempMe on device memory (native/core/tokens/clips.h): frames as a NativeBuffer
// on the CPU or a CUDA device; merged tokens and sizes come back as NativeBuffers on that
// device, the assignment and clip lengths as host arrays.
#include "native/napi/tokens/clips.h"

#include <string>

#include "native/core/tokens/clips.h"
#include "native/napi/options.h"
#include "native/napi/paired.h"
#include "native/napi/registry.h"
#include "native/napi/tokens/dtype.h"
#include "native/napi/util.h"

namespace iz::napi {

iz::tokens::ClipParams ParseClipParams(const Napi::Object& o) {
  iz::tokens::ClipParams p;
  p.t = OptDim(o, "t");
  p.p = OptDim(o, "p");
  p.c = OptDim(o, "c");
  IZ_CHECK(p.t * p.p <= kMaxDim, ShapeMismatch, "frames hold more than 2^31 - 1 tokens");
  p.img_keep = OptNumber(o, "imgKeep");
  p.cross_keep = OptNumber(o, "crossKeep");
  p.intra_keep = OptNumber(o, "intraKeep");
  if (Has(o, "groups")) {
    p.default_groups = false;
    const HostView g = OptView(o, "groups");
    IZ_CHECK(g.type == napi_int32_array, DtypeMismatch, "groups must be an Int32Array");
    const int32_t* gv = reinterpret_cast<const int32_t*>(g.data);
    for (size_t k = 0; k < g.bytes / 4; ++k) p.groups.push_back(gv[k]);
  }
  return p;
}

namespace {

using iz::tokens::TokDType;

// { frames: NativeBuffer, dtype, batch?, t, p, c, imgKeep, crossKeep, intraKeep, groups? }
struct ClipDeviceArgs {
  iz::tokens::ClipParams p;
  int64_t batch = 1;
  TokDType dtype = TokDType::F32;
  MemoryPtr frames;
};

ClipDeviceArgs ParseClipDevice(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  ClipDeviceArgs a;
  a.p = ParseClipParams(o);
  a.batch = OptInt(o, "batch", 1, kMaxDim, 1);
  Elements({a.batch, a.p.t, a.p.p, a.p.c}, "frames");
  a.dtype = OptTokDType(o, "dtype", "frames");
  a.frames = OptMemory(o, "frames");
  return a;
}

iz::tokens::ClipDeviceResult RunClipDevice(const ClipDeviceArgs& a) {
  return iz::tokens::MergeClipsDevice(a.p, a.batch, a.dtype, a.frames);
}

Napi::Value ClipDeviceJs(Napi::Env env, const iz::tokens::ClipDeviceResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("x", WrapMemory(env, r.x));
  o.Set("sizes", WrapMemory(env, r.sizes));
  o.Set("rows", Napi::Number::New(env, static_cast<double>(r.rows)));
  o.Set("assignment", ToInt32Array(env, r.assignment));
  o.Set("clipLengths", ToInt32Array(env, r.clip_lengths));
  return o;
}

void InitClips(Napi::Env env, Napi::Object exports) {
  ExportPaired(env, exports,
               PairedOp<ClipDeviceArgs, iz::tokens::ClipDeviceResult>{"tokensMergeClipsDevice", ParseClipDevice,
                                                                      RunClipDevice, ClipDeviceJs});
}

}  // namespace

IZ_REGISTER_MODULE(clips, InitClips);

}  // namespace iz::napi
