// checksumCrc32({ data, value? }) -> number: zlib-compatible CRC-32 (native/core/checksum),
// run on the calling thread: at 5-25 GB/s even a large tensor takes milliseconds.
#include <napi.h>

#include "native/core/checksum/crc32.h"
#include "native/napi/options.h"
#include "native/napi/registry.h"
#include "native/napi/util.h"

namespace iz::napi {

namespace {

Napi::Value Crc32Js(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    const Napi::Object o = OptionsArg(info);
    const HostView data = OptView(o, "data");
    const auto value = static_cast<uint32_t>(OptInt(o, "value", 0, 0xFFFFFFFFll, 0));
    return Napi::Number::New(info.Env(), Crc32(data.data, data.bytes, value));
  });
}

void InitChecksum(Napi::Env env, Napi::Object exports) {
  exports.Set("checksumCrc32", Napi::Function::New(env, Crc32Js, "checksumCrc32"));
}

}  // namespace

IZ_REGISTER_MODULE(checksum, InitChecksum);

}  // namespace iz::napi
