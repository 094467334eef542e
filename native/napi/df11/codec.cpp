// DFloat11 bindings: argument conversion for encoding BF16 tensors into a unit and
// decoding a unit into host memory or a NativeBuffer (device dispatch: core/df11/dispatch).
#include <napi.h>

#include <cstring>
#include <string>
#include <vector>

#include "native/core/df11/codec.h"
#include "native/core/df11/dispatch.h"
#include "native/napi/options.h"
#include "native/napi/paired.h"
#include "native/napi/registry.h"
#include "native/napi/util.h"

namespace iz::napi {

namespace {

using df11::EncodedUnit;

// ---------------------------------------------------------------------------- encode

struct EncodeArgs {
  std::vector<HostView> views;
  std::vector<df11::Span> spans;
  df11::EncodeOptions options;
};

// { tensors: Uint16Array[] (BF16 bits), threads?, maxCodeLength? }
EncodeArgs ParseEncodeArgs(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  Napi::Env env = info.Env();
  if (!Has(o, "tensors") || !o.Get("tensors").IsArray()) {
    ThrowJs(env, ErrorCode::InvalidArgument, "option 'tensors' must be an array of Uint16Array (BF16 bits)");
  }
  auto arr = o.Get("tensors").As<Napi::Array>();
  EncodeArgs a;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    std::string name = "tensors[" + std::to_string(i) + "]";
    Napi::Value v = arr.Get(i);
    HostView view = ToHostView(env, v, name.c_str());
    if (!v.IsTypedArray() || view.type != napi_uint16_array) {
      ThrowJs(env, ErrorCode::DtypeMismatch, name + " must be a Uint16Array holding BF16 bits");
    }
    a.spans.push_back(df11::Span{reinterpret_cast<const uint16_t*>(view.data), view.bytes / 2});
    a.views.push_back(std::move(view));
  }
  a.options.threads = static_cast<int>(OptInt(o, "threads", 0, 1024, 0));
  a.options.max_code_length = static_cast<uint32_t>(OptInt(o, "maxCodeLength", 8, 32, a.options.max_code_length));
  return a;
}

Napi::Uint8Array ToU8(Napi::Env env, const std::vector<uint8_t>& v) {
  auto out = Napi::Uint8Array::New(env, v.size());
  if (!v.empty()) std::memcpy(out.Data(), v.data(), v.size());
  return out;
}

// A large encoder output handed to JavaScript without a copy: the ArrayBuffer owns the vector's
// memory. Copying into a fresh (zeroed) ArrayBuffer faulted in the same bytes a second time,
// which on a VM costs as much as encoding them. Falls back to a copy where external buffers are
// not allowed (runtimes with the V8 sandbox).
Napi::Uint8Array ToU8Owned(Napi::Env env, std::vector<uint8_t>&& v) {
  if (v.size() < (size_t(1) << 16)) return ToU8(env, v);
  auto* owned = new std::vector<uint8_t>(std::move(v));
  napi_value ab = nullptr;
  const napi_status st = napi_create_external_arraybuffer(
      env, owned->data(), owned->size(),
      [](napi_env, void*, void* hint) { delete static_cast<std::vector<uint8_t>*>(hint); }, owned, &ab);
  if (st != napi_ok) {
    const bool pending = [&] {
      bool p = false;
      napi_is_exception_pending(env, &p);
      return p;
    }();
    if (pending) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
    auto out = ToU8(env, *owned);
    delete owned;
    return out;
  }
  const size_t n = owned->size();
  return Napi::Uint8Array::New(env, n, Napi::ArrayBuffer(env, ab), 0);
}

Napi::Value UnitToJs(Napi::Env env, const EncodedUnit& u) {
  Napi::Object o = Napi::Object::New(env);
  // to_js runs once per result (PairedOp), so the two large buffers can move out of it.
  auto& mu = const_cast<EncodedUnit&>(u);
  o.Set("encodedExponent", ToU8Owned(env, std::move(mu.encoded_exponent)));
  o.Set("signMantissa", ToU8Owned(env, std::move(mu.sign_mantissa)));
  o.Set("luts", ToU8(env, u.luts));
  o.Set("outputPositions", ToU8(env, u.output_positions));
  o.Set("gaps", ToU8(env, u.gaps));
  auto split = Napi::BigInt64Array::New(env, u.split_positions.size());
  for (size_t i = 0; i < u.split_positions.size(); ++i) split[i] = u.split_positions[i];
  o.Set("splitPositions", split);
  auto enc = Napi::Array::New(env, u.encoded_inputs.size());
  for (uint32_t i = 0; i < u.encoded_inputs.size(); ++i) enc.Set(i, u.encoded_inputs[i]);
  o.Set("encodedInputs", enc);
  auto raw = Napi::Array::New(env, u.raw_inputs.size());
  for (uint32_t i = 0; i < u.raw_inputs.size(); ++i) raw.Set(i, u.raw_inputs[i]);
  o.Set("rawInputs", raw);
  o.Set("nElements", static_cast<double>(u.n_elements));
  o.Set("nTables", u.n_tables);
  o.Set("maxCodeLength", u.max_code_length);
  o.Set("codeBits", static_cast<double>(u.code_bits));
  o.Set("entropyBits", u.entropy_bits);
  auto hist = Napi::Float64Array::New(env, 256);
  for (int i = 0; i < 256; ++i) hist[i] = static_cast<double>(u.histogram[i]);
  o.Set("histogram", hist);
  return o;
}

// ---------------------------------------------------------------------------- decode

// One buffer of a unit: a host typed array or a NativeBuffer (host or CUDA memory).
struct Part {
  HostView host;  // keeps a JS typed array alive for async work
  df11::UnitBuffer buffer;
};

Part ToPart(Napi::Env env, Napi::Object parts, const char* key) {
  Part p;
  if (!Has(parts, key)) ThrowJs(env, ErrorCode::InvalidArgument, std::string("the unit has no '") + key + "' buffer");
  Napi::Value v = parts.Get(key);
  if (v.IsTypedArray() || v.IsArrayBuffer() || v.IsDataView()) {
    p.host = ToHostView(env, v, key);
    p.buffer.data = p.host.data;
    p.buffer.bytes = p.host.bytes;
  } else {
    p.buffer.memory = ToMemory(env, v, key);
    p.buffer.data = static_cast<const uint8_t*>(p.buffer.memory->data());
    p.buffer.bytes = p.buffer.memory->bytes();
  }
  return p;
}

struct DecodeArgs {
  Part luts, encoded, sign_mantissa, positions, gaps;
  HostView out_host;
  MemoryPtr out_memory;
  df11::DecodeTarget target;
  int threads = 0;

  df11::UnitBuffers Unit() const {
    return {luts.buffer, encoded.buffer, sign_mantissa.buffer, positions.buffer, gaps.buffer};
  }
};

// { unit: { luts, encodedExponent, signMantissa, outputPositions, gaps }, out, offset?, elements?, threads? }
// Decodes `elements` BF16 words (default: all of out from offset) into out at `offset` (in
// elements), so a unit can land directly inside a larger tensor or model buffer.
DecodeArgs ParseDecodeArgs(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  Napi::Env env = info.Env();
  Napi::Object parts = OptObject(o, "unit");
  DecodeArgs a;
  a.luts = ToPart(env, parts, "luts");
  a.encoded = ToPart(env, parts, "encodedExponent");
  a.sign_mantissa = ToPart(env, parts, "signMantissa");
  a.positions = ToPart(env, parts, "outputPositions");
  a.gaps = ToPart(env, parts, "gaps");
  if (!Has(o, "out")) ThrowJs(env, ErrorCode::InvalidArgument, "option 'out' is required");
  Napi::Value out = o.Get("out");
  size_t out_bytes = 0;
  uint16_t* base = nullptr;
  if (out.IsTypedArray() || out.IsArrayBuffer() || out.IsDataView()) {
    a.out_host = ToHostView(env, out, "out");
    if (out.IsTypedArray() && a.out_host.type != napi_uint16_array) {
      ThrowJs(env, ErrorCode::DtypeMismatch, "'out' must be a Uint16Array (BF16 bits)");
    }
    base = reinterpret_cast<uint16_t*>(a.out_host.data);
    out_bytes = a.out_host.bytes;
  } else {
    a.out_memory = ToMemory(env, out, "out");
    base = static_cast<uint16_t*>(a.out_memory->data());
    out_bytes = a.out_memory->bytes();
    a.target.cuda = a.out_memory->device() == Device::Cuda;
    a.target.device_index = a.out_memory->index();
  }
  if (out_bytes % 2 != 0) ThrowJs(env, ErrorCode::ShapeMismatch, "'out' must hold whole BF16 elements");
  if (reinterpret_cast<uintptr_t>(base) % 2 != 0)
    ThrowJs(env, ErrorCode::InvalidArgument, "'out' must be 2-byte aligned");
  const int64_t capacity = static_cast<int64_t>(out_bytes / 2);
  const int64_t offset = OptInt(o, "offset", 0, capacity, 0);
  const int64_t elements = OptInt(o, "elements", 0, capacity - offset, capacity - offset);
  a.target.out = base + offset;
  a.target.elements = static_cast<size_t>(elements);
  a.threads = static_cast<int>(OptInt(o, "threads", 0, 1024, 0));
  return a;
}

// Decoding writes into the caller's buffer; nothing comes back but completion.
struct Decoded {};
Decoded Decode(const DecodeArgs& a) {
  df11::DecodeUnit(a.Unit(), a.target, a.threads);
  return {};
}
Napi::Value DecodedJs(Napi::Env env, const Decoded&) { return env.Undefined(); }

// The CUDA kernel's per-thread steps run serially on the CPU (tests compare it with the fast decoder).
Napi::Value SimulateKernel(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    const DecodeArgs a = ParseDecodeArgs(info);
    df11::SimulateUnit(a.Unit(), a.target);
    return info.Env().Undefined();
  });
}

// { data: Uint16Array (BF16 bits) } -> exponent histogram, Float64Array(256).
Napi::Value Histogram(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    HostView v = OptView(OptionsArg(info), "data");
    if (v.type != napi_uint16_array)
      ThrowJs(info.Env(), ErrorCode::DtypeMismatch, "'data' must be a Uint16Array (BF16 bits)");
    auto h = df11::ExponentHistogram(reinterpret_cast<const uint16_t*>(v.data), v.bytes / 2);
    auto out = Napi::Float64Array::New(info.Env(), 256);
    for (int i = 0; i < 256; ++i) out[i] = static_cast<double>(h[i]);
    return out;
  });
}

void InitDf11(Napi::Env env, Napi::Object exports) {
  ExportPaired(env, exports,
               PairedOp<EncodeArgs, EncodedUnit>{"df11Encode", ParseEncodeArgs,
                                                 [](const EncodeArgs& a) { return df11::Encode(a.spans, a.options); },
                                                 UnitToJs});
  ExportPaired(env, exports, PairedOp<DecodeArgs, Decoded>{"df11Decode", ParseDecodeArgs, Decode, DecodedJs});
  exports.Set("df11SimulateKernel", Napi::Function::New(env, SimulateKernel, "df11SimulateKernel"));
  exports.Set("df11Histogram", Napi::Function::New(env, Histogram, "df11Histogram"));
}

}  // namespace

IZ_REGISTER_MODULE(df11, InitDf11);

}  // namespace iz::napi
