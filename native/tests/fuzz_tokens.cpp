// Fuzz target: the token passes (ToMe, FastV selection and gather, DyCoke KV step, HoliTom
// inner-LLM merge, DyCoke / HoliTom temporal merging, segmentation, density peaks) on small
// shapes, hostile parameters and values (NaN, +-Inf, ties). Each call must either throw
// iz::Error or return results whose indices stay in range; anything else aborts.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <vector>

#include "native/core/parallel.h"
#include "native/core/tokens/prune.h"
#include "native/core/tokens/temporal.h"
#include "native/core/tokens/tome.h"
#include "native/shared/error.h"

namespace {

using namespace iz::tokens;

struct Reader {
  const uint8_t* p;
  size_t left;
  uint8_t Byte() {
    if (!left) return 0;
    --left;
    return *p++;
  }
  // -8 .. 8 in steps of 1/16 (many ties), or NaN / +Inf / -Inf for the top three bytes.
  float Value() {
    const uint8_t b = Byte();
    if (b == 0xFF) return std::numeric_limits<float>::quiet_NaN();
    if (b == 0xFE) return std::numeric_limits<float>::infinity();
    if (b == 0xFD) return -std::numeric_limits<float>::infinity();
    return (static_cast<float>(b) - 128.0f) / 16.0f;
  }
  std::vector<float> Values(int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = Value();
    return v;
  }
  int64_t Int(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(Byte()) % (hi - lo + 1); }
};

void Require(bool ok) {
  if (!ok) std::abort();
}

void CheckIndices(const std::vector<int32_t>& v, int64_t n, bool ascending) {
  for (size_t i = 0; i < v.size(); ++i) {
    Require(v[i] >= 0 && v[i] < n);
    if (ascending && i > 0) Require(v[i] > v[i - 1]);
  }
}

void Tome(Reader& r) {
  TomeShape s;
  s.batch = r.Int(1, 2);
  s.n = r.Int(1, 24);
  s.c = r.Int(1, 6);
  s.cm = r.Byte() % 2 ? s.c : r.Int(1, 6);
  s.r = r.Int(0, 14);
  s.keep_order = r.Byte() % 2;
  std::vector<uint8_t> protect;
  if (r.Byte() % 2) {
    protect.resize(static_cast<size_t>(s.n));
    for (auto& b : protect) b = r.Byte() % 4 == 0;
  }
  const std::vector<float> x = r.Values(s.batch * s.n * s.c);
  const std::vector<float> metric = s.cm == s.c && r.Byte() % 2 ? x : r.Values(s.batch * s.n * s.cm);
  std::vector<float> sizes;
  if (r.Byte() % 2) sizes = r.Values(s.batch * s.n);
  TomeValidateShape(s, protect.empty() ? nullptr : protect.data());
  const int64_t m = s.n - s.r;
  std::vector<float> out_x(static_cast<size_t>(s.batch * m * s.c)), out_sizes(static_cast<size_t>(s.batch * m));
  std::vector<int32_t> dest(static_cast<size_t>(s.batch * s.n));
  TomeHostIn in{x.data(), metric.data(), sizes.empty() ? nullptr : sizes.data(),
                protect.empty() ? nullptr : protect.data()};
  TomeMergeCpu(s, in, TomeHostOut{out_x.data(), out_sizes.data(), dest.data()});
  CheckIndices(dest, m, false);
}

void Prune(Reader& r) {
  const int64_t heads = r.Int(1, 3), n = r.Int(0, 40);
  const std::vector<float> att = r.Values(heads * n);
  const std::vector<float> w = MeanAttention(att.data(), heads, n);
  Require(static_cast<int64_t>(w.size()) == n);
  const int64_t start = r.Int(-1, n), end = r.Int(-1, n + 1), keep = r.Int(-1, n + 1);
  const PruneSelection sel = SelectTopAttention(w.data(), n, start, end, keep);
  CheckIndices(sel.kept, n, true);
  CheckIndices(sel.dropped, n, true);
  Require(static_cast<int64_t>(sel.kept.size() + sel.dropped.size()) == n);
  const int64_t batch = r.Int(1, 2), row = r.Int(1, 5);
  std::vector<uint8_t> src(static_cast<size_t>(batch * n * row), 7),
      out(static_cast<size_t>(batch) * sel.kept.size() * row);
  GatherRows(src.data(), batch, n, row, sel.kept, out.data());
}

void KVStep(Reader& r) {
  const int64_t n = r.Int(1, 40);
  const std::vector<float> w = r.Values(n);
  // KVPruneStep is not told n: the binding checks end <= n (its precondition), so keep to it here.
  const int64_t start = r.Int(-1, n), end = r.Int(-1, n);
  std::vector<float> previous;
  const int64_t len = end - start;
  if (r.Byte() % 2 && len > 0 && len <= n) previous = r.Values(len);
  const KVStepResult res = KVPruneStep(w.data(), start, end, previous.empty() ? nullptr : previous.data(), r.Byte() % 2,
                                       r.Int(-1, n + 1), (static_cast<double>(r.Byte()) - 64.0) / 128.0);
  CheckIndices(res.kept, n, true);
}

void InnerMerge(Reader& r) {
  const int64_t n = r.Int(1, 32), c = r.Int(1, 5);
  const std::vector<float> x = r.Values(n * c), w = r.Values(n);
  std::vector<float> sizes;
  if (r.Byte() % 2) sizes = r.Values(n);
  const AttentionMergeResult res = MergeByAttentionCpu(x.data(), n, c, sizes.empty() ? nullptr : sizes.data(), w.data(),
                                                       r.Int(-1, n), r.Int(-1, n + 1), r.Int(-1, n + 1));
  CheckIndices(res.selection.kept, n, true);
  CheckIndices(res.assignment, static_cast<int64_t>(res.selection.kept.size()), false);
}

void Temporal(Reader& r) {
  VideoShape s;
  s.t = r.Int(0, 6);
  s.p = r.Int(0, 12);
  s.c = r.Int(0, 4);
  const std::vector<float> x = r.Values(s.t * s.p * s.c);
  TemporalResult res;
  if (r.Byte() % 2) {
    res = DyCokeCpu(x.data(), s, r.Int(-1, s.p + 1), r.Byte() % 2);
  } else {
    HoliTomParams o;
    o.tau = (static_cast<double>(r.Byte()) - 32.0) / 160.0;
    if (r.Byte() % 2) {
      o.grid_h = r.Int(0, 4);
      o.grid_w = r.Int(0, 4);
      o.pool = r.Int(0, 3);
    }
    o.keep_ratio = (static_cast<double>(r.Byte()) - 16.0) / 200.0;
    o.attention_share = (static_cast<double>(r.Byte()) - 16.0) / 200.0;
    o.knn = r.Int(-1, 9);
    std::vector<float> att;
    if (r.Byte() % 2) {
      att = r.Values(s.t * s.p);
      o.attention = att.data();
    }
    res = HoliTomCpu(x.data(), s, o);
  }
  const int64_t m = static_cast<int64_t>(res.frame.size());
  Require(static_cast<int64_t>(res.x.size()) == m * s.c && static_cast<int64_t>(res.assignment.size()) == s.t * s.p);
  for (int32_t a : res.assignment) Require(a >= -1 && a < m);
}

void Segments(Reader& r) {
  const int64_t t = r.Int(0, 8), p = r.Int(0, 10);
  std::vector<uint8_t> stable(static_cast<size_t>(std::max<int64_t>(0, t - 1) * p));
  for (auto& b : stable) b = r.Byte() % 2;
  const auto seg = SegmentFrames(stable.data(), t, p);
  int32_t next = 0;
  for (const auto& sg : seg) {
    Require(sg.first == next && sg.second >= sg.first && sg.second < t);
    next = sg.second + 1;
  }
  Require(next == t);
}

void Peaks(Reader& r) {
  const int64_t rows = r.Int(1, 30), c = r.Int(1, 4);
  const std::vector<float> x = r.Values(rows * c);
  std::vector<int32_t> ids(static_cast<size_t>(r.Int(0, rows)));
  for (auto& id : ids) id = static_cast<int32_t>(r.Int(0, rows - 1));
  const Clusters cl = DensityPeakClusters(x.data(), c, ids, r.Int(-1, 12), r.Int(-1, 9));
  CheckIndices(cl.centres, static_cast<int64_t>(ids.size()), false);
  Require(cl.label.size() == ids.size());
  for (int32_t l : cl.label) Require(l >= 0 && l < static_cast<int32_t>(cl.centres.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool once = (iz::SetCpuThreads(2), true);
  (void)once;
  Reader r{data, size};
  try {
    switch (r.Byte() % 8) {
      case 0:
        Tome(r);
        break;
      case 1:
        Prune(r);
        break;
      case 2:
        KVStep(r);
        break;
      case 3:
        InnerMerge(r);
        break;
      case 4:
      case 5:
        Temporal(r);
        break;
      case 6:
        Segments(r);
        break;
      default:
        Peaks(r);
        break;
    }
  } catch (const iz::Error&) {
    // a typed rejection is a fine answer to hostile input
  }
  return 0;
}
