#include "native/napi/util.h"

#include <cmath>
#include <limits>

namespace iz::napi {

Napi::Error MakeError(Napi::Env env, ErrorCode code, const std::string& message) {
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, ErrorCodeName(code)));
  return err;
}

void ThrowJs(Napi::Env env, ErrorCode code, const std::string& message) { throw MakeError(env, code, message); }

Napi::Value Guard(const Napi::CallbackInfo& info, const std::function<Napi::Value(const Napi::CallbackInfo&)>& body) {
  Napi::Env env = info.Env();
  try {
    return body(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const Error& e) {
    throw MakeError(env, e.code(), e.what());
  } catch (const std::bad_alloc&) {
    throw MakeError(env, ErrorCode::OutOfMemory, "out of host memory");
  } catch (const std::exception& e) {
    throw MakeError(env, ErrorCode::Internal, std::string("internal error: ") + e.what());
  }
}

static size_t ElementSize(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array:
    case napi_uint8_array:
    case napi_uint8_clamped_array:
      return 1;
    case napi_int16_array:
    case napi_uint16_array:
      return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array:
      return 4;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array:
      return 8;
    default:
      return 1;
  }
}

HostView ToHostView(Napi::Env env, Napi::Value value, const char* name) {
  HostView view;
  if (value.IsTypedArray()) {
    auto ta = value.As<Napi::TypedArray>();
    view.type = ta.TypedArrayType();
    view.element_size = ElementSize(view.type);
    auto ab = ta.ArrayBuffer();
    view.data = static_cast<uint8_t*>(ab.Data()) + ta.ByteOffset();
    view.bytes = ta.ByteLength();
  } else if (value.IsArrayBuffer()) {
    auto ab = value.As<Napi::ArrayBuffer>();
    view.data = static_cast<uint8_t*>(ab.Data());
    view.bytes = ab.ByteLength();
  } else if (value.IsDataView()) {
    auto dv = value.As<Napi::DataView>();
    view.data = static_cast<uint8_t*>(dv.ArrayBuffer().Data()) + dv.ByteOffset();
    view.bytes = dv.ByteLength();
  } else {
    ThrowJs(env, ErrorCode::InvalidArgument, std::string("'") + name + "' must be a TypedArray, Buffer or ArrayBuffer");
  }
  view.keep_alive = std::make_shared<Napi::Reference<Napi::Value>>(Napi::Persistent(value));
  return view;
}

namespace {

class AsyncJob : public Napi::AsyncWorker {
 public:
  AsyncJob(Napi::Env env, const char* name, std::function<Completion()> work)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      completion_ = work_();
    } catch (const Error& e) {
      code_ = e.code();
      message_ = e.what();
      failed_ = true;
    } catch (const std::bad_alloc&) {
      code_ = ErrorCode::OutOfMemory;
      message_ = "out of host memory";
      failed_ = true;
    } catch (const std::exception& e) {
      code_ = ErrorCode::Internal;
      message_ = std::string("internal error: ") + e.what();
      failed_ = true;
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      deferred_.Reject(MakeError(env, code_, message_).Value());
      return;
    }
    try {
      deferred_.Resolve(completion_ ? completion_(env) : env.Undefined());
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const Error& e) {
      deferred_.Reject(MakeError(env, e.code(), e.what()).Value());
    } catch (const std::exception& e) {
      deferred_.Reject(MakeError(env, ErrorCode::Internal, e.what()).Value());
    }
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<Completion()> work_;
  Completion completion_;
  bool failed_ = false;
  ErrorCode code_ = ErrorCode::Internal;
  std::string message_;
};

}  // namespace

Napi::Promise RunAsync(Napi::Env env, const char* name, std::function<Completion()> work) {
  auto* job = new AsyncJob(env, name, std::move(work));
  Napi::Promise promise = job->Promise();
  job->Queue();
  return promise;
}

}  // namespace iz::napi
