// Helpers shared by the binding files: typed errors, JS values <-> host views and
// NativeBuffers, and running native work off the main thread. Options are read with
// native/napi/options.h (one options object per entry point).
#pragma once

#include <napi.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "native/core/device.h"
#include "native/shared/error.h"

namespace iz::napi {

// A JS Error whose `code` property is the iz::ErrorCode name; lib/errors.ts maps it.
Napi::Error MakeError(Napi::Env env, ErrorCode code, const std::string& message);
[[noreturn]] void ThrowJs(Napi::Env env, ErrorCode code, const std::string& message);

// Runs `body`, translating iz::Error and std exceptions into typed JS errors.
// Use at the top of every binding function.
Napi::Value Guard(const Napi::CallbackInfo& info, const std::function<Napi::Value(const Napi::CallbackInfo&)>& body);

// A view of a TypedArray / ArrayBuffer / Buffer passed from JS. Keeps a reference
// so the memory stays alive while an async job reads or writes it.
struct HostView {
  uint8_t* data = nullptr;
  size_t bytes = 0;
  size_t element_size = 1;
  napi_typedarray_type type = napi_uint8_array;
  std::shared_ptr<Napi::Reference<Napi::Value>> keep_alive;
};
HostView ToHostView(Napi::Env env, Napi::Value value, const char* name);

// The DeviceMemory behind a NativeBuffer (throws DISPOSED after dispose()).
MemoryPtr ToMemory(Napi::Env env, Napi::Value value, const char* name);
// Wraps memory into a new NativeBuffer JS object (reports the size to V8).
Napi::Object WrapMemory(Napi::Env env, MemoryPtr memory);

// Runs `work` on a libuv worker thread and returns a Promise. `work` returns a
// function that builds the result on the main thread (no N-API calls in `work`).
// Errors thrown by `work` reject the promise with a typed error.
using Completion = std::function<Napi::Value(Napi::Env)>;
Napi::Promise RunAsync(Napi::Env env, const char* name, std::function<Completion()> work);

}  // namespace iz::napi
