// backendInfo(), thread control and build facts.
#include <napi.h>

#include "native/core/simd.h"
#include "native/core/parallel.h"
#include "native/napi/registry.h"
#include "native/napi/util.h"

namespace iz::napi {

namespace {

Napi::Value BackendInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const BackendInfo& b = GetBackendInfo();
  Napi::Object out = Napi::Object::New(env);
  out.Set("cudaCompiled", b.cuda_compiled);
  out.Set("cudaAvailable", b.cuda_available);
  out.Set("reason", b.reason);
  Napi::Array devices = Napi::Array::New(env, b.devices.size());
  for (size_t i = 0; i < b.devices.size(); ++i) {
    const auto& d = b.devices[i];
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", d.name);
    o.Set("memory", static_cast<double>(d.memory));
    o.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    devices.Set(static_cast<uint32_t>(i), o);
  }
  out.Set("devices", devices);
  out.Set("cpuThreads", CpuThreads());
  out.Set("simd", SimdLevelName(CpuSimdLevel()));
  out.Set("maxAllocationBytes", static_cast<double>(kMaxAllocationBytes));
#ifdef INFERZIP_BUILD_SYSTEM
  out.Set("buildSystem", INFERZIP_BUILD_SYSTEM);
#endif
  return out;
}

Napi::Value SetThreadsJs(const Napi::CallbackInfo& info) {
  return Guard(info, [](const Napi::CallbackInfo& info) -> Napi::Value {
    SetCpuThreads(static_cast<int>(ArgInt(info, 0, "threads", 0, 1024)));
    return Napi::Number::New(info.Env(), CpuThreads());
  });
}

void InitBackend(Napi::Env env, Napi::Object exports) {
  exports.Set("backendInfo", Napi::Function::New(env, BackendInfoJs, "backendInfo"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreadsJs, "setThreads"));
}

}  // namespace

IZ_REGISTER_MODULE(backend, InitBackend);

}  // namespace iz::napi
