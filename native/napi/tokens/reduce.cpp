// Bindings for transport / attention-graph / clip-merge token reduction
// (native/core/tokens/reduce.h): TopV, Zero-TPrune, TempMe and FastV's full-matrix
// criterion. One options object per call (native/napi/options.h), sync + async twins.
// A leading batch runs item by item (each item's work is multithreaded).
#include <napi.h>

#include <memory>
#include <vector>

#include "native/core/tokens/reduce.h"
#include "native/napi/options.h"
#include "native/napi/paired.h"
#include "native/napi/registry.h"
#include "native/napi/tokens/clips.h"
#include "native/napi/tokens/reduce_params.h"
#include "native/napi/util.h"

namespace iz::napi {

namespace {

using namespace iz::tokens;

struct Selection {
  std::vector<int32_t> kept, dropped;
  std::vector<float> scores;
  void Append(const ScoredSelection& s) {
    kept.insert(kept.end(), s.kept.begin(), s.kept.end());
    dropped.insert(dropped.end(), s.dropped.begin(), s.dropped.end());
    scores.insert(scores.end(), s.scores.begin(), s.scores.end());
  }
};

Napi::Value SelectionJs(Napi::Env env, const Selection& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("kept", ToInt32Array(env, s.kept));
  o.Set("dropped", ToInt32Array(env, s.dropped));
  o.Set("scores", ToFloat32Array(env, s.scores));
  return o;
}

// --- TopV: { visual, batch, n, c, target?, text?, textRows, gridH, gridW, alpha, beta,
//             gamma, eps, iters, keep, recover } -------------------------------------------
struct TransportArgs {
  HostView visual, target, text;
  bool has_target = false, has_text = false;
  int64_t batch = 1;
  TransportParams p;
};

TransportArgs ParseTransport(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  TransportArgs a;
  a.batch = OptInt(o, "batch", 1, kMaxDim, 1);
  a.p.n = OptDim(o, "n");
  a.p.c = OptDim(o, "c");
  a.visual = OptF32(o, "visual", {a.batch, a.p.n, a.p.c});
  a.has_target = Has(o, "target");
  if (a.has_target) {
    a.target = OptF32(o, "target", {a.batch, a.p.n, a.p.c});
    a.p.targets_pos = a.p.n;
  }
  a.has_text = Has(o, "text");
  if (a.has_text) {
    a.p.text = OptDim(o, "textRows");
    a.text = OptF32(o, "text", {a.batch, a.p.text, a.p.c});
  }
  Elements({a.p.n, a.p.targets_pos + a.p.text + (a.has_target || a.has_text ? 0 : a.p.n)}, "the cost matrix");
  ReadTransportOptions(o, a.p);
  return a;
}

Selection RunTransport(const TransportArgs& a) {
  Selection out;
  const int64_t per = a.p.n * a.p.c, text_per = a.p.text * a.p.c;
  for (int64_t b = 0; b < a.batch; ++b) {
    out.Append(PruneByTransportCpu(F32(a.visual) + b * per, a.has_target ? F32(a.target) + b * per : nullptr,
                                   a.has_text ? F32(a.text) + b * text_per : nullptr, a.p));
  }
  return out;
}

// --- Zero-TPrune: { tokens, attention, batch, n, c, heads, iters, similarShare, keep } ----
struct GraphArgs {
  HostView tokens, attention;
  int64_t batch = 1;
  GraphParams p;
};

GraphArgs ParseGraph(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  GraphArgs a;
  a.batch = OptInt(o, "batch", 1, kMaxDim, 1);
  ReadGraphOptions(o, a.p);
  a.tokens = OptF32(o, "tokens", {a.batch, a.p.n, a.p.c});
  a.attention = OptF32(o, "attention", {a.batch, a.p.heads, a.p.n, a.p.n});
  return a;
}

Selection RunGraph(const GraphArgs& a) {
  Selection out;
  const int64_t per_t = a.p.n * a.p.c, per_a = a.p.heads * a.p.n * a.p.n;
  for (int64_t b = 0; b < a.batch; ++b) {
    out.Append(PruneByAttentionGraphCpu(F32(a.tokens) + b * per_t, F32(a.attention) + b * per_a, a.p));
  }
  return out;
}

// --- TempMe: { frames, batch?, t, p, c, imgKeep, crossKeep, intraKeep, groups? (Int32Array) } -
struct ClipArgs {
  HostView frames;
  int64_t batch = 1;
  ClipParams p;
};

ClipArgs ParseClips(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  ClipArgs a;
  a.batch = OptInt(o, "batch", 1, kMaxDim, 1);
  a.p = ParseClipParams(o);  // shared with the device binding (clips.cpp)
  a.frames = OptF32(o, "frames", {a.batch, a.p.t, a.p.p, a.p.c});
  return a;
}

// Batch items run one after the other and are concatenated (every item yields the same
// counts: they depend on T, P and the options only).
ClipMergeResult RunClips(const ClipArgs& a) {
  ClipMergeResult out;
  const int64_t per = a.p.t * a.p.p * a.p.c;
  for (int64_t b = 0; b < a.batch; ++b) {
    ClipMergeResult r = MergeClipsCpu(F32(a.frames) + b * per, a.p);
    out.x.insert(out.x.end(), r.x.begin(), r.x.end());
    out.sizes.insert(out.sizes.end(), r.sizes.begin(), r.sizes.end());
    out.assignment.insert(out.assignment.end(), r.assignment.begin(), r.assignment.end());
    if (b == 0) out.clip_lengths = r.clip_lengths;
  }
  return out;
}

Napi::Value ClipsJs(Napi::Env env, const ClipMergeResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("x", ToFloat32Array(env, r.x));
  o.Set("sizes", ToFloat32Array(env, r.sizes));
  o.Set("assignment", ToInt32Array(env, r.assignment));
  o.Set("clipLengths", ToInt32Array(env, r.clip_lengths));
  return o;
}

// --- FastV's criterion: { attention [heads, n, n], heads, n } -> Float32Array [n] ---------
struct ReceivedArgs {
  HostView attention;
  int64_t heads = 1, n = 0;
};

ReceivedArgs ParseReceived(const Napi::CallbackInfo& info) {
  const Napi::Object o = OptionsArg(info);
  ReceivedArgs a;
  a.heads = OptDim(o, "heads");
  a.n = OptDim(o, "n", 0);
  a.attention = OptF32(o, "attention", {a.heads, a.n, a.n});
  return a;
}

std::vector<float> RunReceived(const ReceivedArgs& a) { return ReceivedAttention(F32(a.attention), a.heads, a.n); }

Napi::Value ReceivedJs(Napi::Env env, const std::vector<float>& r) { return ToFloat32Array(env, r); }

void InitReduce(Napi::Env env, Napi::Object exports) {
  ExportPaired(env, exports,
               PairedOp<TransportArgs, Selection>{"tokensPruneByTransport", ParseTransport, RunTransport, SelectionJs});
  ExportPaired(env, exports,
               PairedOp<GraphArgs, Selection>{"tokensPruneByAttentionGraph", ParseGraph, RunGraph, SelectionJs});
  ExportPaired(env, exports, PairedOp<ClipArgs, ClipMergeResult>{"tokensMergeClips", ParseClips, RunClips, ClipsJs});
  ExportPaired(
      env, exports,
      PairedOp<ReceivedArgs, std::vector<float>>{"tokensReceivedAttention", ParseReceived, RunReceived, ReceivedJs});
}

}  // namespace

IZ_REGISTER_MODULE(reduce, InitReduce);

}  // namespace iz::napi
