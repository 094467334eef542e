// backendInfo(), thread control and build facts.
#include <napi.h>

#include <algorithm>

#include "native/core/checksum/crc32.h"
#include "native/core/parallel.h"
#include "native/core/simd.h"
#include "native/napi/options.h"
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
  out.Set("crc32", Crc32ImplName(Crc32Best()));
#ifdef INFERZIP_BUILD_SYSTEM
  out.Set("buildSystem", INFERZIP_BUILD_SYSTEM);
#endif
  return out;
}

// Bytes inferzip holds per device: host memory owned by the addon, then one entry per CUDA
// device that answered.
Napi::Value MemoryStatsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto entry = [&](const std::string& device, const MemoryCounters& c) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("device", device);
    o.Set("bytes", static_cast<double>(c.bytes));
    o.Set("peakBytes", static_cast<double>(c.peak));
    o.Set("allocations", static_cast<double>(c.allocations));
    return o;
  };
  const BackendInfo& b = GetBackendInfo();
  const size_t n = std::min<size_t>(b.devices.size(), kMaxCudaDevices);
  Napi::Array out = Napi::Array::New(env, n + 1);
  out.Set(uint32_t(0), entry("cpu", HostMemoryCounters()));
  for (size_t i = 0; i < n; ++i)
    out.Set(static_cast<uint32_t>(i + 1), entry(DeviceLabel(Device::Cuda, int(i)), CudaMemoryCounters(int(i))));
  return out;
}

Napi::Value SetThreadsJs(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    SetCpuThreads(static_cast<int>(OptInt(OptionsArg(info), "threads", 0, kMaxThreads)));
    return Napi::Number::New(info.Env(), CpuThreads());
  });
}

// The limits the native layer enforces, exported once so TypeScript validates against the
// same numbers instead of restating them (lib/limits.ts).
Napi::Value LimitsJs(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("maxThreads", kMaxThreads);
    o.Set("maxAllocationBytes", static_cast<double>(kMaxAllocationBytes));
    return o;
  });
}

void InitBackend(Napi::Env env, Napi::Object exports) {
  exports.Set("limits", Napi::Function::New(env, LimitsJs, "limits"));
  exports.Set("backendInfo", Napi::Function::New(env, BackendInfoJs, "backendInfo"));
  exports.Set("memoryStats", Napi::Function::New(env, MemoryStatsJs, "memoryStats"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreadsJs, "setThreads"));
}

}  // namespace

IZ_REGISTER_MODULE(backend, InitBackend);

}  // namespace iz::napi
