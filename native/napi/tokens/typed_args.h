// Typed-array argument helpers shared by the token binding files.
#pragma once

#include <napi.h>

#include <string>

#include "native/napi/options.h"
#include "native/napi/util.h"

namespace iz::napi {

inline bool IsNullish(const Napi::CallbackInfo& info, size_t i) {
  return i >= info.Length() || info[i].IsNull() || info[i].IsUndefined();
}

// A Float32Array argument holding exactly `count` floats.
inline HostView F32View(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t count) {
  HostView v = ArgHostView(info, i, name);
  IZ_CHECK(v.type == napi_float32_array, DtypeMismatch, std::string(name) + " must be a Float32Array");
  IZ_CHECK(v.bytes == static_cast<size_t>(count) * 4, ShapeMismatch,
           std::string(name) + " holds " + std::to_string(v.bytes / 4) + " floats, expected " + std::to_string(count));
  return v;
}


}  // namespace iz::napi
