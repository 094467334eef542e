// Device dispatch of TopV and Zero-TPrune (reduce_device.h): validates the buffers, then
// runs the CPU backend on host memory or the CUDA kernels on the tensors' GPU, and gathers
// the kept rows into a new tensor on the same device.
#include "native/core/tokens/reduce_device.h"

#include <cstring>
#include <string>
#include <vector>

#include "native/core/tokens/exact.h"
#include "native/core/tokens/reduce_stages.h"
#include "native/shared/error.h"

#if INFERZIP_WITH_CUDA
#include "cuda/tokens/graph.h"
#include "cuda/tokens/rows.h"
#include "cuda/tokens/transport.h"
#endif

namespace iz::tokens {

namespace {

constexpr int64_t kMaxElements = int64_t(1) << 40;

// Product of dims, ShapeMismatch past 2^40 elements (no int64 overflow on hostile sizes).
int64_t Elements(std::initializer_list<int64_t> dims, const char* what) {
  int64_t total = 1;
  for (const int64_t d : dims) {
    IZ_CHECK(d >= 0, ShapeMismatch, std::string(what) + " has a negative dimension");
    IZ_CHECK(d == 0 || total <= kMaxElements / d, ShapeMismatch, std::string(what) + " is too large");
    total *= d;
  }
  return total;
}

void CheckBuffer(const DeviceRows& r, int64_t elements, const char* name) {
  IZ_CHECK(r.mem, InvalidArgument, std::string(name) + " is missing");
  IZ_CHECK(r.mem->bytes() >= static_cast<size_t>(elements * DTypeBytes(r.dt)), ShapeMismatch,
           std::string(name) + " buffer holds " + std::to_string(r.mem->bytes()) + " bytes, fewer than " +
               std::to_string(elements) + " elements");
}

// DeviceMismatch unless every given tensor lives on the first one's device.
void CheckSameDevice(const char* op, std::initializer_list<std::pair<const char*, const DeviceRows*>> rows) {
  const DeviceMemory* first = nullptr;
  const char* first_name = nullptr;
  for (const auto& [name, r] : rows) {
    if (!r->mem) continue;
    if (!first) {
      first = r->mem.get();
      first_name = name;
      continue;
    }
    IZ_CHECK(r->mem->device() == first->device() && r->mem->index() == first->index(), DeviceMismatch,
             std::string(op) + ": " + first_name + " is on " + first->label() + " but " + name + " is on " +
                 r->mem->label() + "; copy one to the other's device first");
  }
}

std::vector<float> Widen(const DeviceRows& r, int64_t count) {
  std::vector<float> v(static_cast<size_t>(count));
  if (r.dt == TokDType::F32) {
    std::memcpy(v.data(), r.mem->data(), v.size() * sizeof(float));
  } else {
    for (int64_t i = 0; i < count; ++i) v[static_cast<size_t>(i)] = LoadAsF32(r.mem->data(), i, r.dt);
  }
  return v;
}

void Append(ScoredSelection& out, const ScoredSelection& s) {
  out.kept.insert(out.kept.end(), s.kept.begin(), s.kept.end());
  out.dropped.insert(out.dropped.end(), s.dropped.begin(), s.dropped.end());
  out.scores.insert(out.scores.end(), s.scores.begin(), s.scores.end());
}

#if !INFERZIP_WITH_CUDA
[[noreturn]] void NoCuda() { Fail(ErrorCode::NoDevice, "this build has no CUDA backend"); }
#endif

// The kept rows [batch, keep, c] of src [batch, n, c] (dtype dt) as new memory on src's device.
MemoryPtr GatherKept(const DeviceRows& src, int64_t batch, int64_t n, int64_t c, int64_t keep,
                     const std::vector<int32_t>& kept) {
  IZ_CHECK(static_cast<int64_t>(kept.size()) == batch * keep, Internal, "one kept list of keep rows per batch item");
  const int64_t row_bytes = c * DTypeBytes(src.dt);
  const MemoryPtr& m = src.mem;
  MemoryPtr out = DeviceMemory::Allocate(m->device(), static_cast<size_t>(batch * keep * row_bytes), false, m->index());
  if (m->device() == Device::Cuda) {
#if INFERZIP_WITH_CUDA
    cuda::tokens::GatherRows(m->data(), batch, n, row_bytes, kept, keep, out->data());
    return out;
#else
    NoCuda();
#endif
  }
  const uint8_t* from = static_cast<const uint8_t*>(m->data());
  uint8_t* to = static_cast<uint8_t*>(out->data());
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t j = 0; j < keep; ++j) {
      const int64_t i = kept[static_cast<size_t>(b * keep + j)];
      std::memcpy(to + (b * keep + j) * row_bytes, from + (b * n + i) * row_bytes, static_cast<size_t>(row_bytes));
    }
  }
  return out;
}

#if INFERZIP_WITH_CUDA
// FailNonFiniteF32 for the first NaN/Inf of rows [batch][per] (the index within its item,
// as the CPU backend reports it).
void CheckFiniteOnDevice(const DeviceRows& r, int64_t count, int64_t per, const char* name) {
  float value = 0;
  const int64_t bad = cuda::tokens::FirstBadElement(r.mem->data(), r.dt, count, false, &value);
  if (bad >= 0) FailNonFiniteF32(name, value, bad % per);
}

const void* ItemPtr(const DeviceRows& r, int64_t b, int64_t per) {
  return r.mem ? static_cast<const uint8_t*>(r.mem->data()) + b * per * DTypeBytes(r.dt) : nullptr;
}
#endif

}  // namespace

DeviceSelection PruneByTransportDevice(const TransportParams& p, int64_t batch, const DeviceRows& visual,
                                       const DeviceRows& target, const DeviceRows& text) {
  CheckTransportShape(p);
  CheckTransportCounts(p);
  IZ_CHECK(batch >= 1, ShapeMismatch, "batch must be >= 1");
  IZ_CHECK(target.mem ? p.targets_pos == p.n : p.targets_pos == 0, ShapeMismatch,
           "target must hold one row per visual token");
  IZ_CHECK(text.mem ? p.text >= 1 : p.text == 0, ShapeMismatch, "text needs at least one row");
  const int64_t per = Elements({p.n, p.c}, "visual"), text_per = Elements({p.text, p.c}, "text");
  Elements({p.n, p.targets_pos + p.text + (target.mem || text.mem ? 0 : p.n), 3}, "the transport plan");
  CheckBuffer(visual, Elements({batch, per}, "visual"), "visual");
  if (target.mem) CheckBuffer(target, Elements({batch, per}, "target"), "target");
  if (text.mem) CheckBuffer(text, Elements({batch, text_per}, "text"), "text");
  CheckSameDevice("pruneByTransport", {{"visual", &visual}, {"target", &target}, {"text", &text}});

  // every allocation, launch and copy below (the gather included) goes to the tensors' device
  const Device dev = visual.mem->device();
  DeviceScope scope(dev == Device::Cuda ? visual.mem->index() : -1);
  DeviceSelection out;
  if (dev == Device::Cpu) {
    const std::vector<float> v = Widen(visual, batch * per);
    const std::vector<float> t = target.mem ? Widen(target, batch * per) : std::vector<float>();
    const std::vector<float> x = text.mem ? Widen(text, batch * text_per) : std::vector<float>();
    for (int64_t b = 0; b < batch; ++b) {
      Append(out.sel, PruneByTransportCpu(v.data() + b * per, target.mem ? t.data() + b * per : nullptr,
                                          text.mem ? x.data() + b * text_per : nullptr, p));
    }
  } else {
#if INFERZIP_WITH_CUDA
    CheckFiniteOnDevice(visual, batch * per, per, "visual");
    if (p.keep == 0) {
      for (int64_t b = 0; b < batch; ++b) Append(out.sel, DropAll(p.n));
    } else {
      if (target.mem) CheckFiniteOnDevice(target, batch * per, per, "target");
      if (text.mem) CheckFiniteOnDevice(text, batch * text_per, text_per, "text");
      cuda::tokens::TransportKnobs knobs;
      knobs.n = p.n;
      knobs.c = p.c;
      knobs.geometry = TransportGeometryOf(p.grid_h, p.grid_w, p.n);
      knobs.alpha = p.alpha;
      knobs.beta = p.beta;
      knobs.gamma = p.gamma;
      knobs.eps = p.eps;
      knobs.iters = p.iters;
      for (int64_t b = 0; b < batch; ++b) {
        cuda::tokens::TransportInputs in;
        in.visual = ItemPtr(visual, b, per);
        in.visual_dt = visual.dt;
        if (target.mem || !text.mem) {  // neither given: the visual tokens are their own targets
          const DeviceRows& pos = target.mem ? target : visual;
          in.positioned = ItemPtr(pos, b, per);
          in.positioned_dt = pos.dt;
          in.positioned_rows = p.n;
        }
        if (text.mem) {
          in.text = ItemPtr(text, b, text_per);
          in.text_dt = text.dt;
          in.text_rows = p.text;
        }
        const std::vector<double> score = cuda::tokens::TransportScores(in, knobs);
        CheckTransportScores(score, p.eps);
        Append(out.sel, SelectByTransportScores(score, p));
      }
    }
#else
    NoCuda();
#endif
  }
  out.tokens = GatherKept(visual, batch, p.n, p.c, p.keep, out.sel.kept);
  return out;
}

DeviceSelection PruneByAttentionGraphDevice(const GraphParams& p, int64_t batch, const DeviceRows& tokens,
                                            const DeviceRows& attention) {
  CheckGraphParams(p);
  CheckGraphShape(p.heads, p.n, p.iters);
  IZ_CHECK(batch >= 1, ShapeMismatch, "batch must be >= 1");
  const int64_t per_t = Elements({p.n, p.c}, "tokens"), per_a = Elements({p.heads, p.n, p.n}, "attention");
  CheckBuffer(tokens, Elements({batch, per_t}, "tokens"), "tokens");
  CheckBuffer(attention, Elements({batch, per_a}, "attention"), "attention");
  CheckSameDevice("pruneByAttentionGraph", {{"tokens", &tokens}, {"attention", &attention}});

  const Device dev = tokens.mem->device();
  DeviceScope scope(dev == Device::Cuda ? tokens.mem->index() : -1);
  DeviceSelection out;
  if (dev == Device::Cpu) {
    const std::vector<float> x = Widen(tokens, batch * per_t);
    const std::vector<float> a = Widen(attention, batch * per_a);
    for (int64_t b = 0; b < batch; ++b)
      Append(out.sel, PruneByAttentionGraphCpu(x.data() + b * per_t, a.data() + b * per_a, p));
  } else {
#if INFERZIP_WITH_CUDA
    CheckFiniteOnDevice(tokens, batch * per_t, per_t, "tokens");
    float value = 0;
    const int64_t bad = cuda::tokens::FirstBadElement(attention.mem->data(), attention.dt, batch * per_a, true, &value);
    if (bad >= 0) FailBadAttention(value, bad % per_a);
    for (int64_t b = 0; b < batch; ++b) {
      const std::vector<double> imp =
          cuda::tokens::GraphImportance(ItemPtr(attention, b, per_a), attention.dt, p.heads, p.n, p.iters);
      const GraphStages st = PlanGraphStages(imp, p);
      std::vector<double> sim;
      if (st.rs > 0)
        sim = cuda::tokens::GraphSimilarity(ItemPtr(tokens, b, per_t), tokens.dt, p.c, st.list, st.nb, st.na);
      Append(out.sel, FinishGraphStages(st, sim, imp, p));
    }
#else
    NoCuda();
#endif
  }
  out.tokens = GatherKept(tokens, batch, p.n, p.c, p.keep, out.sel.kept);
  return out;
}

}  // namespace iz::tokens
