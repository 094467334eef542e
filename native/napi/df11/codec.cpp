// DFloat11 bindings: encode BF16 tensors into a unit, decode a unit into host memory
// or a NativeBuffer (CPU decoder, or the CUDA kernel when the output is CUDA memory).
#include <napi.h>

#include <cstring>
#include <string>
#include <vector>

#include "native/shared/df11/format.h"
#include "native/core/df11/codec.h"
#include "native/core/parallel.h"
#include "native/napi/paired.h"
#include "native/napi/registry.h"
#include "native/napi/util.h"

#if INFERZIP_WITH_CUDA
#include "cuda/df11/decode.h"
#endif

namespace iz::napi {

namespace {

using df11::EncodedUnit;

// ---------------------------------------------------------------------------- encode

struct EncodeArgs {
  std::vector<HostView> views;
  std::vector<df11::Span> spans;
  df11::EncodeOptions options;
};

EncodeArgs ParseEncodeArgs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) ThrowJs(env, ErrorCode::InvalidArgument, "'tensors' must be an array of Uint16Array (BF16 bits)");
  auto arr = info[0].As<Napi::Array>();
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
  if (info.Length() > 1 && info[1].IsObject()) {
    auto o = info[1].As<Napi::Object>();
    if (o.Has("threads") && !o.Get("threads").IsUndefined()) {
      double t = o.Get("threads").ToNumber().DoubleValue();
      if (!(t >= 0 && t <= 1024) || t != static_cast<int>(t)) ThrowJs(env, ErrorCode::InvalidArgument, "'threads' must be an integer 0..1024");
      a.options.threads = static_cast<int>(t);
    }
    if (o.Has("maxCodeLength") && !o.Get("maxCodeLength").IsUndefined()) {
      double m = o.Get("maxCodeLength").ToNumber().DoubleValue();
      if (!(m >= 8 && m <= 32) || m != static_cast<int>(m)) ThrowJs(env, ErrorCode::InvalidArgument, "'maxCodeLength' must be an integer 8..32");
      a.options.max_code_length = static_cast<uint32_t>(m);
    }
  }
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

// One buffer of a unit: a host view or a NativeBuffer (host or CUDA memory).
struct Part {
  HostView host;
  MemoryPtr memory;
  const uint8_t* data = nullptr;
  size_t bytes = 0;
  bool cuda = false;
};

Part ToPart(Napi::Env env, Napi::Object parts, const char* key) {
  Part p;
  if (!parts.Has(key)) ThrowJs(env, ErrorCode::InvalidArgument, std::string("the unit has no '") + key + "' buffer");
  Napi::Value v = parts.Get(key);
  if (v.IsTypedArray() || v.IsArrayBuffer() || v.IsDataView()) {
    p.host = ToHostView(env, v, key);
    p.data = p.host.data;
    p.bytes = p.host.bytes;
  } else {
    p.memory = ToMemory(env, v, key);
    p.data = static_cast<const uint8_t*>(p.memory->data());
    p.bytes = p.memory->bytes();
    p.cuda = p.memory->device() == Device::Cuda;
  }
  return p;
}

struct DecodeArgs {
  Part luts, encoded, sign_mantissa, positions, gaps;
  HostView out_host;
  MemoryPtr out_memory;
  uint16_t* out = nullptr;
  size_t out_elements = 0;
  bool out_cuda = false;
  int threads = 0;
};

DecodeArgs ParseDecodeArgs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object parts = ArgObject(info, 0, "unit");
  DecodeArgs a;
  a.luts = ToPart(env, parts, "luts");
  a.encoded = ToPart(env, parts, "encodedExponent");
  a.sign_mantissa = ToPart(env, parts, "signMantissa");
  a.positions = ToPart(env, parts, "outputPositions");
  a.gaps = ToPart(env, parts, "gaps");
  if (info.Length() < 2) ThrowJs(env, ErrorCode::InvalidArgument, "missing the output buffer");
  Napi::Value out = info[1];
  size_t out_bytes = 0;
  if (out.IsTypedArray() || out.IsArrayBuffer() || out.IsDataView()) {
    a.out_host = ToHostView(env, out, "out");
    if (out.IsTypedArray() && a.out_host.type != napi_uint16_array) ThrowJs(env, ErrorCode::DtypeMismatch, "'out' must be a Uint16Array (BF16 bits)");
    a.out = reinterpret_cast<uint16_t*>(a.out_host.data);
    out_bytes = a.out_host.bytes;
  } else {
    a.out_memory = ToMemory(env, out, "out");
    a.out = static_cast<uint16_t*>(a.out_memory->data());
    out_bytes = a.out_memory->bytes();
    a.out_cuda = a.out_memory->device() == Device::Cuda;
  }
  if (out_bytes % 2 != 0) ThrowJs(env, ErrorCode::ShapeMismatch, "'out' must hold whole BF16 elements");
  if (reinterpret_cast<uintptr_t>(a.out) % 2 != 0) ThrowJs(env, ErrorCode::InvalidArgument, "'out' must be 2-byte aligned");
  a.out_elements = out_bytes / 2;
  if (info.Length() > 2 && info[2].IsNumber()) a.threads = static_cast<int>(ArgInt(info, 2, "threads", 0, 1024));
  return a;
}

// Host bytes of a part (downloads CUDA memory into `scratch`).
const uint8_t* HostBytes(const Part& p, std::vector<uint8_t>& scratch) {
  if (!p.cuda) return p.data;
  scratch.resize(p.bytes);
  if (p.bytes) p.memory->CopyToHost(0, scratch.data(), p.bytes);
  return scratch.data();
}

df11::UnitView HostUnit(const DecodeArgs& a, std::vector<std::vector<uint8_t>>& scratch) {
  scratch.resize(5);
  df11::UnitView u;
  u.luts = HostBytes(a.luts, scratch[0]);
  u.luts_bytes = a.luts.bytes;
  u.encoded_exponent = HostBytes(a.encoded, scratch[1]);
  u.encoded_bytes = a.encoded.bytes;
  u.sign_mantissa = HostBytes(a.sign_mantissa, scratch[2]);
  u.sign_mantissa_bytes = a.sign_mantissa.bytes;
  u.output_positions = HostBytes(a.positions, scratch[3]);
  u.output_positions_bytes = a.positions.bytes;
  u.gaps = HostBytes(a.gaps, scratch[4]);
  u.gaps_bytes = a.gaps.bytes;
  return u;
}

#if INFERZIP_WITH_CUDA
// Device pointer of a part, uploading host parts into `keep`.
const uint8_t* DevicePtr(const Part& p, std::vector<MemoryPtr>& keep) {
  if (p.cuda) return p.data;
  auto m = DeviceMemory::Allocate(Device::Cuda, p.bytes);
  if (p.bytes) m->CopyFromHost(0, p.data, p.bytes);
  keep.push_back(m);
  return static_cast<const uint8_t*>(m->data());
}

void DecodeOnCuda(const DecodeArgs& a) {
  // Validate the layout on host copies of the small buffers; the kernel checks the stream.
  std::vector<uint8_t> luts_host, pos_host;
  df11::UnitView v;
  v.luts = HostBytes(a.luts, luts_host);
  v.luts_bytes = a.luts.bytes;
  v.output_positions = HostBytes(a.positions, pos_host);
  v.output_positions_bytes = a.positions.bytes;
  v.encoded_exponent = a.encoded.data;
  v.encoded_bytes = a.encoded.bytes;
  v.sign_mantissa = a.sign_mantissa.data;
  v.sign_mantissa_bytes = a.sign_mantissa.bytes;
  v.gaps = a.gaps.data;
  v.gaps_bytes = a.gaps.bytes;
  df11::UnitLayout layout = df11::ValidateUnit(v);
  IZ_CHECK(a.out_elements == layout.n_elements, ShapeMismatch,
           "the output holds " + std::to_string(a.out_elements) + " elements but the unit decodes to " + std::to_string(layout.n_elements));
  if (layout.n_blocks == 0) return;
  uint32_t max_block = 0;
  for (uint64_t b = 0; b < layout.n_blocks; ++b) {
    auto rd = [&](uint64_t i) {
      const uint8_t* p = v.output_positions + 4 * i;
      return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
    };
    max_block = std::max(max_block, rd(b + 1) - rd(b));
  }
  std::vector<MemoryPtr> keep;
  cuda::df11::DeviceUnit u;
  u.luts = DevicePtr(a.luts, keep);
  u.n_tables = layout.n_tables;
  u.encoded_exponent = DevicePtr(a.encoded, keep);
  u.encoded_bytes = a.encoded.bytes;
  u.sign_mantissa = DevicePtr(a.sign_mantissa, keep);
  u.output_positions = DevicePtr(a.positions, keep);
  u.gaps = DevicePtr(a.gaps, keep);
  u.gaps_bytes = a.gaps.bytes;
  u.n_elements = layout.n_elements;
  u.n_blocks = layout.n_blocks;
  u.max_block_elements = max_block;
  cuda::df11::Decode(u, a.out);
}
#endif

void RunDecode(const DecodeArgs& a, bool simulate) {
  if (a.out_cuda) {
#if INFERZIP_WITH_CUDA
    IZ_CHECK(!simulate, InvalidArgument, "the kernel simulator decodes into host memory only");
    DecodeOnCuda(a);
    return;
#else
    Fail(ErrorCode::NoDevice, "this build has no CUDA backend");
#endif
  }
  std::vector<std::vector<uint8_t>> scratch;
  df11::UnitView u = HostUnit(a, scratch);
  if (simulate) {
    df11::DecodeSimulateKernel(u, a.out, a.out_elements);
  } else {
    df11::DecodeCpu(u, a.out, a.out_elements, a.threads);
  }
}

// Decoding writes into the caller's buffer; nothing comes back but completion.
struct Decoded {};
Decoded Decode(const DecodeArgs& a) {
  RunDecode(a, false);
  return {};
}
Napi::Value DecodedJs(Napi::Env env, const Decoded&) { return env.Undefined(); }

// The CUDA kernel's per-thread steps run serially on the CPU (tests compare it with the fast decoder).
Napi::Value SimulateKernel(const Napi::CallbackInfo& info) {
  return Guard(info, [](const Napi::CallbackInfo& info) -> Napi::Value {
    DecodeArgs a = ParseDecodeArgs(info);
    RunDecode(a, true);
    return info.Env().Undefined();
  });
}

// Exponent histogram of BF16 bits -> Float64Array(256).
Napi::Value Histogram(const Napi::CallbackInfo& info) {
  return Guard(info, [](const Napi::CallbackInfo& info) -> Napi::Value {
    HostView v = ArgHostView(info, 0, "data");
    if (!info[0].IsTypedArray() || v.type != napi_uint16_array) ThrowJs(info.Env(), ErrorCode::DtypeMismatch, "'data' must be a Uint16Array (BF16 bits)");
    auto h = df11::ExponentHistogram(reinterpret_cast<const uint16_t*>(v.data), v.bytes / 2);
    auto out = Napi::Float64Array::New(info.Env(), 256);
    for (int i = 0; i < 256; ++i) out[i] = static_cast<double>(h[i]);
    return out;
  });
}

void InitDf11(Napi::Env env, Napi::Object exports) {
  ExportPaired(env, exports,
               PairedOp<EncodeArgs, EncodedUnit>{"df11Encode", ParseEncodeArgs,
                                                 [](const EncodeArgs& a) { return df11::Encode(a.spans, a.options); }, UnitToJs});
  ExportPaired(env, exports, PairedOp<DecodeArgs, Decoded>{"df11Decode", ParseDecodeArgs, Decode, DecodedJs});
  exports.Set("df11SimulateKernel", Napi::Function::New(env, SimulateKernel, "df11SimulateKernel"));
  exports.Set("df11Histogram", Napi::Function::New(env, Histogram, "df11Histogram"));
}

}  // namespace

IZ_REGISTER_MODULE(df11, InitDf11);

}  // namespace iz::napi
