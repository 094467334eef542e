// Bindings for attention-ranked pruning (native/core/tokens/prune.h): FastV, the
// DyCoke decode-time KV step and HoliTom's inner-LLM merge, each sync + async.
#include <napi.h>

#include <cstring>
#include <memory>
#include <vector>

#include "native/core/tokens/prune.h"
#include "native/napi/options.h"
#include "native/napi/paired.h"
#include "native/napi/registry.h"
#include "native/napi/util.h"

namespace iz::napi {

namespace {

using namespace iz::tokens;

struct Attention {
  HostView view;
  int64_t heads = 1, n = 0;
};

// { attention: Float32Array [heads, n], heads }
Attention AttentionWithN(const Napi::Object& o, int64_t n) {
  Attention a;
  a.heads = OptDim(o, "heads");
  a.n = n;
  a.view = OptF32(o, "attention", {a.heads, a.n});
  return a;
}

// ... and n.
Attention ParseAttention(const Napi::Object& o) { return AttentionWithN(o, OptDim(o, "n", 0)); }

// attention, heads, n -> Float32Array [n]
Napi::Value MeanAttentionJs(const Napi::CallbackInfo& call) {
  return Guard(call, [](const Napi::CallbackInfo& info) -> Napi::Value {
    const Attention a = ParseAttention(OptionsArg(info));
    return ToFloat32Array(info.Env(), MeanAttention(F32(a.view), a.heads, a.n));
  });
}

// { attention, heads, n, start, end, keep, tokens?, batch, rowBytes }
struct PruneArgs {
  Attention att;
  int64_t start = 0, end = 0, keep = 0, batch = 1, row_bytes = 0;
  bool has_tokens = false;
  HostView tokens;
};
struct PruneOut {
  PruneSelection sel;
  std::vector<uint8_t> tokens;
  napi_typedarray_type type = napi_uint8_array;
  size_t element_size = 1;
  bool has_tokens = false;
};

PruneArgs ParsePrune(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  PruneArgs a;
  a.att = ParseAttention(o);
  a.start = OptInt(o, "start", 0, a.att.n);
  a.end = OptInt(o, "end", a.start, a.att.n);
  a.keep = OptInt(o, "keep", 0, a.end - a.start);
  a.has_tokens = Has(o, "tokens");
  if (a.has_tokens) {
    a.batch = OptInt(o, "batch", 1, kMaxDim);
    a.row_bytes = OptInt(o, "rowBytes", 1, int64_t(1) << 40);
    a.tokens = OptView(o, "tokens");
    IZ_CHECK(a.row_bytes % static_cast<int64_t>(a.tokens.element_size) == 0, ShapeMismatch,
             "rowBytes must be a whole number of elements");
    // compared by division: batch x n x rowBytes may not fit in 64 bits
    const uint64_t rows = static_cast<uint64_t>(a.batch * a.att.n);
    const uint64_t row_bytes = static_cast<uint64_t>(a.row_bytes);
    IZ_CHECK(a.tokens.bytes % row_bytes == 0 && a.tokens.bytes / row_bytes == rows, ShapeMismatch,
             "tokens holds " + std::to_string(a.tokens.bytes) + " bytes, not batch x n = " + std::to_string(rows) +
                 " rows of " + std::to_string(a.row_bytes) + " bytes");
  }
  return a;
}

PruneOut RunPrune(const PruneArgs& a) {
  PruneOut out;
  const std::vector<float> weight = MeanAttention(F32(a.att.view), a.att.heads, a.att.n);
  out.sel = SelectTopAttention(weight.data(), a.att.n, a.start, a.end, a.keep);
  out.has_tokens = a.has_tokens;
  if (a.has_tokens) {
    out.type = a.tokens.type;
    out.element_size = a.tokens.element_size;
    out.tokens.resize(static_cast<size_t>(a.batch) * out.sel.kept.size() * static_cast<size_t>(a.row_bytes));
    GatherRows(a.tokens.data, a.batch, a.att.n, a.row_bytes, out.sel.kept, out.tokens.data());
  }
  return out;
}

Napi::Value PruneJs(Napi::Env env, const PruneOut& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("kept", ToInt32Array(env, r.sel.kept));
  o.Set("dropped", ToInt32Array(env, r.sel.dropped));
  if (r.has_tokens) {
    auto buf = Napi::ArrayBuffer::New(env, r.tokens.size());
    if (!r.tokens.empty()) std::memcpy(buf.Data(), r.tokens.data(), r.tokens.size());
    napi_value arr = nullptr;
    const napi_status st = napi_create_typedarray(env, r.type, r.tokens.size() / r.element_size, buf, 0, &arr);
    IZ_CHECK(st == napi_ok, Internal, "could not create the pruned tokens array");
    o.Set("tokens", Napi::Value(env, arr));
  } else {
    o.Set("tokens", env.Null());
  }
  return o;
}

// { attention, heads, n, start, end, previous?, hasKept, keep, threshold }
struct KVArgs {
  Attention att;
  int64_t start = 0, end = 0, keep = 1;
  HostView previous;
  bool has_previous = false, has_kept = false;
  double threshold = 0;
};

KVArgs ParseKV(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  KVArgs a;
  a.att = ParseAttention(o);
  a.start = OptInt(o, "start", 0, kMaxDim);
  a.end = OptInt(o, "end", a.start + 1, kMaxDim);
  IZ_CHECK(
      a.end <= a.att.n, ShapeMismatch,
      "attention covers " + std::to_string(a.att.n) + " tokens but the image span ends at " + std::to_string(a.end));
  a.has_previous = Has(o, "previous");
  if (a.has_previous) a.previous = OptF32(o, "previous", a.end - a.start);
  a.has_kept = OptBool(o, "hasKept", false);
  a.keep = OptInt(o, "keep", 1, a.end - a.start);
  a.threshold = OptNumber(o, "threshold");
  return a;
}

struct KVOut {
  KVStepResult step;
};

KVOut RunKV(const KVArgs& a) {
  const std::vector<float> weight = MeanAttention(F32(a.att.view), a.att.heads, a.att.n);
  return {KVPruneStep(weight.data(), a.start, a.end, a.has_previous ? F32(a.previous) : nullptr, a.has_kept, a.keep,
                      a.threshold)};
}

Napi::Value KVJs(Napi::Env env, const KVOut& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("image", ToFloat32Array(env, r.step.image));
  o.Set("similarity", Napi::Number::New(env, r.step.similarity));
  o.Set("recomputed", Napi::Boolean::New(env, r.step.recomputed));
  o.Set("kept", r.step.recomputed ? Napi::Value(ToInt32Array(env, r.step.kept)) : env.Null());
  return o;
}

// { tokens: Float32Array [n, c], n, c, attention, heads, start, end, keep, sizes? }
struct MergeArgs {
  HostView x, sizes;
  bool has_sizes = false;
  int64_t n = 0, c = 0, start = 0, end = 0, keep = 0;
  Attention att;
};

MergeArgs ParseMerge(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  MergeArgs a;
  a.n = OptDim(o, "n");
  a.c = OptDim(o, "c");
  a.x = OptF32(o, "tokens", {a.n, a.c});
  a.att = AttentionWithN(o, a.n);
  a.start = OptInt(o, "start", 0, a.n);
  a.end = OptInt(o, "end", a.start, a.n);
  a.keep = OptInt(o, "keep", 0, a.end - a.start);
  a.has_sizes = Has(o, "sizes");
  if (a.has_sizes) a.sizes = OptF32(o, "sizes", a.n);
  return a;
}

AttentionMergeResult RunMerge(const MergeArgs& a) {
  const std::vector<float> weight = MeanAttention(F32(a.att.view), a.att.heads, a.att.n);
  return MergeByAttentionCpu(F32(a.x), a.n, a.c, a.has_sizes ? F32(a.sizes) : nullptr, weight.data(), a.start, a.end,
                             a.keep);
}

Napi::Value MergeJs(Napi::Env env, const AttentionMergeResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("x", ToFloat32Array(env, r.x));
  o.Set("sizes", ToFloat32Array(env, r.sizes));
  o.Set("assignment", ToInt32Array(env, r.assignment));
  o.Set("kept", ToInt32Array(env, r.selection.kept));
  o.Set("dropped", ToInt32Array(env, r.selection.dropped));
  return o;
}

void InitPrune(Napi::Env env, Napi::Object exports) {
  exports.Set("tokensMeanAttention", Napi::Function::New(env, MeanAttentionJs, "tokensMeanAttention"));
  ExportPaired(env, exports, PairedOp<PruneArgs, PruneOut>{"tokensPruneByAttention", ParsePrune, RunPrune, PruneJs});
  ExportPaired(env, exports, PairedOp<KVArgs, KVOut>{"tokensKvPruneStep", ParseKV, RunKV, KVJs});
  ExportPaired(env, exports,
               PairedOp<MergeArgs, AttentionMergeResult>{"tokensMergeByAttention", ParseMerge, RunMerge, MergeJs});
}

}  // namespace

IZ_REGISTER_MODULE(prune, InitPrune);

}  // namespace iz::napi
