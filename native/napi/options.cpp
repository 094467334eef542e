#include "native/napi/options.h"

#include <cmath>

namespace iz::napi {

namespace {

[[noreturn]] void Bad(Napi::Env env, const char* name, const std::string& what) {
  ThrowJs(env, ErrorCode::InvalidArgument, std::string("option '") + name + "' " + what);
}

Napi::Value Field(const Napi::Object& o, const char* name) {
  if (!Has(o, name)) Bad(o.Env(), name, "is required");
  return o.Get(name);
}

}  // namespace

Napi::Object OptionsArg(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) {
    ThrowJs(info.Env(), ErrorCode::InvalidArgument, "expected one options object");
  }
  return info[0].As<Napi::Object>();
}

bool Has(const Napi::Object& o, const char* name) {
  if (!o.Has(name)) return false;
  Napi::Value v = o.Get(name);
  return !v.IsNull() && !v.IsUndefined();
}

double OptNumber(const Napi::Object& o, const char* name) {
  Napi::Value v = Field(o, name);
  if (!v.IsNumber()) Bad(o.Env(), name, "must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) Bad(o.Env(), name, "must be finite, got " + std::to_string(d));
  return d;
}

double OptNumber(const Napi::Object& o, const char* name, double fallback) {
  return Has(o, name) ? OptNumber(o, name) : fallback;
}

int64_t OptInt(const Napi::Object& o, const char* name, int64_t min, int64_t max) {
  const double d = OptNumber(o, name);
  if (!std::isfinite(d) || std::floor(d) != d || d < static_cast<double>(min) || d > static_cast<double>(max)) {
    Bad(o.Env(), name,
        "must be an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "], got " + std::to_string(d));
  }
  return static_cast<int64_t>(d);
}

int64_t OptInt(const Napi::Object& o, const char* name, int64_t min, int64_t max, int64_t fallback) {
  return Has(o, name) ? OptInt(o, name, min, max) : fallback;
}

bool OptBool(const Napi::Object& o, const char* name, bool fallback) {
  if (!Has(o, name)) return fallback;
  Napi::Value v = o.Get(name);
  if (!v.IsBoolean()) Bad(o.Env(), name, "must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string OptString(const Napi::Object& o, const char* name) {
  Napi::Value v = Field(o, name);
  if (!v.IsString()) Bad(o.Env(), name, "must be a string");
  return v.As<Napi::String>().Utf8Value();
}

std::string OptString(const Napi::Object& o, const char* name, const std::string& fallback) {
  return Has(o, name) ? OptString(o, name) : fallback;
}

Napi::Object OptObject(const Napi::Object& o, const char* name) {
  Napi::Value v = Field(o, name);
  if (!v.IsObject()) Bad(o.Env(), name, "must be an object");
  return v.As<Napi::Object>();
}

HostView OptView(const Napi::Object& o, const char* name) { return ToHostView(o.Env(), Field(o, name), name); }

int64_t Elements(std::initializer_list<int64_t> dims, const char* what) {
  constexpr int64_t kMaxElements = int64_t(1) << 40;
  int64_t n = 1;
  for (int64_t d : dims) {
    IZ_CHECK(d >= 0 && (d == 0 || n <= kMaxElements / d), ShapeMismatch,
             std::string(what) + " is too large (more than 2^40 elements)");
    n *= d;
  }
  return n;
}

HostView OptF32(const Napi::Object& o, const char* name, int64_t count) {
  HostView v = OptView(o, name);
  if (v.type != napi_float32_array)
    ThrowJs(o.Env(), ErrorCode::DtypeMismatch, std::string("option '") + name + "' must be a Float32Array");
  if (v.bytes != static_cast<size_t>(count) * 4) {
    ThrowJs(o.Env(), ErrorCode::ShapeMismatch,
            std::string("option '") + name + "' holds " + std::to_string(v.bytes / 4) + " floats, expected " +
                std::to_string(count));
  }
  return v;
}

MemoryPtr OptMemory(const Napi::Object& o, const char* name) { return ToMemory(o.Env(), Field(o, name), name); }

}  // namespace iz::napi
