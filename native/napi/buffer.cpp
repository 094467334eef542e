// NativeBuffer: the JS handle of a DeviceMemory block (host or CUDA memory).
// lib/device-tensor.ts builds the typed DeviceTensor API on top of it.
#include <napi.h>

#include "native/napi/options.h"
#include "native/napi/registry.h"
#include "native/napi/util.h"

namespace iz::napi {

namespace {

class NativeBuffer : public Napi::ObjectWrap<NativeBuffer> {
 public:
  static Napi::FunctionReference* constructor;

  // Methods lib/native.ts wraps in place so that every NativeBuffer, made by JS or by the
  // addon (decode and ToMe outputs), throws InferzipError: writable + configurable.
  static constexpr napi_property_attributes kPatchable = napi_default_method;

  static void Init(Napi::Env env, Napi::Object exports) {
    Napi::Function fn =
        DefineClass(env, "NativeBuffer",
                    {
                        InstanceAccessor<&NativeBuffer::Bytes>("bytes"),
                        InstanceAccessor<&NativeBuffer::DeviceGetter>("device"),
                        InstanceAccessor<&NativeBuffer::DeviceIndex>("deviceIndex"),
                        InstanceAccessor<&NativeBuffer::Disposed>("disposed"),
                        InstanceMethod<&NativeBuffer::Transfer<true, false>>("upload", kPatchable),
                        InstanceMethod<&NativeBuffer::Transfer<false, false>>("download", kPatchable),
                        InstanceMethod<&NativeBuffer::Transfer<true, true>>("uploadAsync", kPatchable),
                        InstanceMethod<&NativeBuffer::Transfer<false, true>>("downloadAsync", kPatchable),
                        InstanceMethod<&NativeBuffer::CopyFrom>("copyFrom", kPatchable),
                        InstanceMethod<&NativeBuffer::Dispose>("dispose", kPatchable),
                    });
    constructor = new Napi::FunctionReference(Napi::Persistent(fn));
    exports.Set("NativeBuffer", fn);
  }

  // new NativeBuffer({ device, deviceIndex?, bytes, zero? }) or, internally, new NativeBuffer(External<MemoryPtr>)
  explicit NativeBuffer(const Napi::CallbackInfo& call) : Napi::ObjectWrap<NativeBuffer>(call) {
    Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      if (info.Length() == 1 && info[0].IsExternal()) {
        memory_ = *info[0].As<Napi::External<MemoryPtr>>().Data();
      } else {
        const Napi::Object o = OptionsArg(info);
        const Device device = ParseDevice(OptString(o, "device"));
        const auto bytes = static_cast<size_t>(OptInt(o, "bytes", 0, int64_t(kMaxAllocationBytes)));
        const bool zero = OptBool(o, "zero", false);
        const int index = static_cast<int>(OptInt(o, "deviceIndex", 0, kMaxCudaDevices - 1, 0));
        memory_ = DeviceMemory::Allocate(device, bytes, zero, device == Device::Cuda ? index : 0);
      }
      reported_ = static_cast<int64_t>(memory_->bytes());
      Napi::MemoryManagement::AdjustExternalMemory(info.Env(), reported_);
      return info.Env().Undefined();
    });
  }

  void Finalize(Napi::Env env) override { Release(env); }

  MemoryPtr memory(Napi::Env env) const {
    if (!memory_) ThrowJs(env, ErrorCode::Disposed, "this buffer was disposed; create a new one");
    return memory_;
  }

 private:
  void Release(Napi::Env env) {
    if (!memory_) return;
    memory_.reset();
    if (reported_) Napi::MemoryManagement::AdjustExternalMemory(env, -reported_);
    reported_ = 0;
  }

  Napi::Value Bytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), memory_ ? double(memory_->bytes()) : 0.0);
  }
  Napi::Value DeviceGetter(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), memory_ ? DeviceName(memory_->device()) : "disposed");
  }
  Napi::Value DeviceIndex(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), memory_ ? memory_->index() : 0);
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !memory_); }

  // upload({ source, offset }) / download({ destination, offset }), offset in bytes into this
  // buffer, each sync or async: one body, the direction and the runner are the parameters.
  template <bool kUpload, bool kAsync>
  Napi::Value Transfer(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      auto mem = memory(info.Env());
      const Napi::Object o = OptionsArg(info);
      const HostView host = OptView(o, kUpload ? "source" : "destination");
      const auto offset = static_cast<size_t>(OptInt(o, "offset", 0, int64_t(kMaxAllocationBytes), 0));
      auto copy = [mem, host, offset]() {
        if (kUpload)
          mem->CopyFromHost(offset, host.data, host.bytes);
        else
          mem->CopyToHost(offset, host.data, host.bytes);
      };
      if (!kAsync) {
        copy();
        return info.Env().Undefined();
      }
      return RunAsync(info.Env(), kUpload ? "inferzip.upload" : "inferzip.download", [copy]() -> Completion {
        copy();
        return nullptr;
      });
    });
  }

  // copyFrom({ source: NativeBuffer, dstOffset, srcOffset, bytes })
  Napi::Value CopyFrom(const Napi::CallbackInfo& call) {
    return Guard(call, [this](const Napi::CallbackInfo& info) -> Napi::Value {
      auto mem = memory(info.Env());
      const Napi::Object o = OptionsArg(info);
      MemoryPtr src = OptMemory(o, "source");
      const auto dst_off = static_cast<size_t>(OptInt(o, "dstOffset", 0, int64_t(kMaxAllocationBytes), 0));
      const auto src_off = static_cast<size_t>(OptInt(o, "srcOffset", 0, int64_t(kMaxAllocationBytes), 0));
      const auto n = static_cast<size_t>(OptInt(o, "bytes", 0, int64_t(kMaxAllocationBytes)));
      mem->CopyFrom(dst_off, *src, src_off, n);
      return info.Env().Undefined();
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Release(info.Env());
    return info.Env().Undefined();
  }

  MemoryPtr memory_;
  int64_t reported_ = 0;
};

Napi::FunctionReference* NativeBuffer::constructor = nullptr;

}  // namespace

MemoryPtr ToMemory(Napi::Env env, Napi::Value value, const char* name) {
  if (!value.IsObject() || !NativeBuffer::constructor ||
      !value.As<Napi::Object>().InstanceOf(NativeBuffer::constructor->Value())) {
    ThrowJs(env, ErrorCode::InvalidArgument,
            std::string("'") + name + "' must be a NativeBuffer (DeviceTensor.buffer)");
  }
  return NativeBuffer::Unwrap(value.As<Napi::Object>())->memory(env);
}

Napi::Object WrapMemory(Napi::Env env, MemoryPtr memory) {
  auto external = Napi::External<MemoryPtr>::New(env, &memory);
  return NativeBuffer::constructor->New({external});
}

static void InitBuffer(Napi::Env env, Napi::Object exports) { NativeBuffer::Init(env, exports); }
IZ_REGISTER_MODULE(buffer, InitBuffer);

}  // namespace iz::napi
