// Bindings for TopV and Zero-TPrune on device memory (native/core/tokens/reduce_device.h):
// NativeBuffers (CPU or CUDA) in, the selection as typed arrays plus the kept rows as a new
// NativeBuffer on the inputs' device out. Sync + async twins.
#include <napi.h>

#include <string>

#include "native/core/tokens/reduce_device.h"
#include "native/napi/options.h"
#include "native/napi/paired.h"
#include "native/napi/registry.h"
#include "native/napi/tokens/dtype.h"
#include "native/napi/tokens/reduce_params.h"
#include "native/napi/util.h"

namespace iz::napi {

namespace {

using namespace iz::tokens;

// { <name>: NativeBuffer, <name>Dtype }, or nothing when the buffer is absent and optional.
DeviceRows OptRows(const Napi::Object& o, const char* name, bool optional) {
  DeviceRows r;
  if (optional && !Has(o, name)) return r;
  r.mem = OptMemory(o, name);
  r.dt = OptTokDType(o, (std::string(name) + "Dtype").c_str(), std::string(name) + "Dtype");
  return r;
}

Napi::Value DeviceSelectionJs(Napi::Env env, const DeviceSelection& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("kept", ToInt32Array(env, s.sel.kept));
  o.Set("dropped", ToInt32Array(env, s.sel.dropped));
  o.Set("scores", ToFloat32Array(env, s.sel.scores));
  o.Set("tokens", WrapMemory(env, s.tokens));
  return o;
}

// --- TopV: { visual, visualDtype, target?, targetDtype?, text?, textDtype?, textRows?, batch,
//             n, c, gridH, gridW, alpha, beta, gamma, eps, iters, keep, recover } -----------
struct TransportDeviceArgs {
  TransportParams p;
  int64_t batch = 1;
  DeviceRows visual, target, text;
};

TransportDeviceArgs ParseTransportDevice(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  TransportDeviceArgs a;
  a.batch = OptInt(o, "batch", 1, kMaxDim, 1);
  a.p.n = OptDim(o, "n");
  a.p.c = OptDim(o, "c");
  a.visual = OptRows(o, "visual", false);
  a.target = OptRows(o, "target", true);
  if (a.target.mem) a.p.targets_pos = a.p.n;
  a.text = OptRows(o, "text", true);
  if (a.text.mem) a.p.text = OptDim(o, "textRows");
  ReadTransportOptions(o, a.p);
  return a;
}

DeviceSelection RunTransportDevice(const TransportDeviceArgs& a) {
  return PruneByTransportDevice(a.p, a.batch, a.visual, a.target, a.text);
}

// --- Zero-TPrune: { tokens, tokensDtype, attention, attentionDtype, batch, n, c, heads, iters,
//                    similarShare, keep } --------------------------------------------------
struct GraphDeviceArgs {
  GraphParams p;
  int64_t batch = 1;
  DeviceRows tokens, attention;
};

GraphDeviceArgs ParseGraphDevice(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  GraphDeviceArgs a;
  a.batch = OptInt(o, "batch", 1, kMaxDim, 1);
  ReadGraphOptions(o, a.p);
  a.tokens = OptRows(o, "tokens", false);
  a.attention = OptRows(o, "attention", false);
  return a;
}

DeviceSelection RunGraphDevice(const GraphDeviceArgs& a) {
  return PruneByAttentionGraphDevice(a.p, a.batch, a.tokens, a.attention);
}

void InitReduceDevice(Napi::Env env, Napi::Object exports) {
  ExportPaired(env, exports,
               PairedOp<TransportDeviceArgs, DeviceSelection>{"tokensPruneByTransportDevice", ParseTransportDevice,
                                                              RunTransportDevice, DeviceSelectionJs});
  ExportPaired(env, exports,
               PairedOp<GraphDeviceArgs, DeviceSelection>{"tokensPruneByAttentionGraphDevice", ParseGraphDevice,
                                                          RunGraphDevice, DeviceSelectionJs});
}

}  // namespace

IZ_REGISTER_MODULE(reduce_device, InitReduceDevice);

}  // namespace iz::napi
