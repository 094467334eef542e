// One calling convention for every native entry point: a single options object whose
// fields are read by these helpers (like sharp's AttrAsInt32). Each throws
// INVALID_ARGUMENT naming the field; lib/ has already validated user input, so these
// messages only show when the binding is called wrongly.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

#include "native/napi/util.h"

namespace iz::napi {

// The options object passed as the only argument.
Napi::Object OptionsArg(const Napi::CallbackInfo& info);

// True when the field is present and neither null nor undefined.
bool Has(const Napi::Object& o, const char* name);

// A finite number.
double OptNumber(const Napi::Object& o, const char* name);
double OptNumber(const Napi::Object& o, const char* name, double fallback);
int64_t OptInt(const Napi::Object& o, const char* name, int64_t min, int64_t max);
int64_t OptInt(const Napi::Object& o, const char* name, int64_t min, int64_t max, int64_t fallback);
bool OptBool(const Napi::Object& o, const char* name, bool fallback);
std::string OptString(const Napi::Object& o, const char* name);
std::string OptString(const Napi::Object& o, const char* name, const std::string& fallback);
Napi::Object OptObject(const Napi::Object& o, const char* name);

// A TypedArray / Buffer / ArrayBuffer field (kept alive for async work).
HostView OptView(const Napi::Object& o, const char* name);
// A Float32Array field holding exactly `count` floats.
HostView OptF32(const Napi::Object& o, const char* name, int64_t count);
// A NativeBuffer field.
MemoryPtr OptMemory(const Napi::Object& o, const char* name);
// An object made by the ObjectWrap class T, recognised by T::kTypeTag (napi type tags),
// so a wrong object is an error rather than a reinterpret_cast.
template <class T>
T* OptWrapped(const Napi::Object& o, const char* name) {
  Napi::Object obj = OptObject(o, name);
  if (!obj.CheckTypeTag(&T::kTypeTag)) {
    ThrowJs(o.Env(), ErrorCode::InvalidArgument, std::string("option '") + name + "' is not a " + T::kClassName);
  }
  return T::Unwrap(obj);
}

inline const float* F32(const HostView& v) { return reinterpret_cast<const float*>(v.data); }

}  // namespace iz::napi
