// One calling convention for every native entry point: a single options object whose
// fields are read by these helpers (like sharp's AttrAsInt32). Each throws
// INVALID_ARGUMENT naming the field; lib/ has already validated user input, so these
// messages only show when the binding is called wrongly.
#pragma once

#include <napi.h>

#include <cstdint>
#include <initializer_list>
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

// The largest dimension or token count a call takes (token indices travel as int32).
constexpr int64_t kMaxDim = (int64_t(1) << 31) - 1;
// A dimension field: an integer in [min, kMaxDim].
inline int64_t OptDim(const Napi::Object& o, const char* name, int64_t min = 1) {
  return OptInt(o, name, min, kMaxDim);
}
// The element count of a shape, at most 2^40 (so no later product overflows); `what` names
// the array in the SHAPE_MISMATCH error.
int64_t Elements(std::initializer_list<int64_t> dims, const char* what);

// A TypedArray / Buffer / ArrayBuffer field (kept alive for async work).
HostView OptView(const Napi::Object& o, const char* name);
// A Float32Array field holding exactly `count` floats.
HostView OptF32(const Napi::Object& o, const char* name, int64_t count);
// A Float32Array field of exactly the shape `dims` (checked with Elements).
inline HostView OptF32(const Napi::Object& o, const char* name, std::initializer_list<int64_t> dims) {
  return OptF32(o, name, Elements(dims, name));
}
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
