// Attention over the quantized cache on the CPU, computed from packed codes: tokens are
// split into chunks across cores, each chunk keeps an online-softmax state per query row
// (all query heads of a GQA group share one pass over the codes), and chunks merge at the end.
// KIVI keys take a fast path: per group of G tokens the inner loop is a table lookup
// (4 codes per byte -> 4 floats) times q*scale, plus one q.min term per group.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "native/core/kvquant/cache.h"
#include "native/core/kvquant/kivi_cpu.h"
#include "native/core/parallel.h"
#include "native/shared/error.h"

namespace iz::kv {

const cpu::Luts cpu::kLuts;

namespace {

// Online softmax over a block of nb logits for each row; writes probabilities into p and
// rescales the row's accumulator.
void SoftmaxBlock(int rows, int nb, int d, const float* logits, float* m, float* l, float* acc, float* p) {
  for (int r = 0; r < rows; ++r) {
    const float* lg = logits + size_t(r) * nb;
    float* pr = p + size_t(r) * nb;
    const float mb = cpu::Max(lg, nb);
    if (mb == -INFINITY) {
      for (int j = 0; j < nb; ++j) pr[j] = 0.0f;
      continue;
    }
    float mn = std::max(m[r], mb);
    if (mn != m[r]) {
      float corr = m[r] == -INFINITY ? 0.0f : std::exp(m[r] - mn);
      l[r] *= corr;
      float* a = acc + size_t(r) * d;
      for (int c = 0; c < d; ++c) a[c] *= corr;
      m[r] = mn;
    }
    l[r] += cpu::ExpShifted(lg, nb, mn, pr);
  }
}

// Rows of one stream: row r is query head (h*gq + r/nq), query r%nq.
struct Rows {
  int count;
  int nq;
  int gq;
  std::vector<float> q;        // [rows][d] scaled queries
  std::vector<int64_t> limit;  // last visible token per row
};

Rows MakeRows(const float* q, int q_heads, int heads, int64_t nq, int d, size_t b, size_t h, float scale, bool causal,
              int64_t T) {
  Rows rows;
  rows.gq = q_heads / heads;
  rows.nq = static_cast<int>(nq);
  rows.count = rows.gq * rows.nq;
  rows.q.resize(size_t(rows.count) * d);
  rows.limit.resize(size_t(rows.count));
  for (int r = 0; r < rows.count; ++r) {
    int hq = static_cast<int>(h) * rows.gq + r / rows.nq;
    int i = r % rows.nq;
    const float* src = q + ((b * q_heads + size_t(hq)) * size_t(nq) + size_t(i)) * d;
    for (int c = 0; c < d; ++c) rows.q[size_t(r) * d + c] = src[c] * scale;
    rows.limit[size_t(r)] = causal ? T - nq + i : T - 1;
  }
  return rows;
}

struct Partial {
  std::vector<float> m, l, acc;
  void Init(int rows, int d) {
    m.assign(size_t(rows), -INFINITY);
    l.assign(size_t(rows), 0.0f);
    acc.assign(size_t(rows) * d, 0.0f);
  }
};

// Merges chunk partials of one stream and writes the rows' outputs.
void MergeAndStore(const std::vector<Partial>& parts, const Rows& rows, int q_heads, int64_t nq, int d, size_t b,
                   size_t h, float* out) {
  for (int r = 0; r < rows.count; ++r) {
    float M = -INFINITY;
    for (const Partial& p : parts) M = std::max(M, p.m[size_t(r)]);
    int hq = static_cast<int>(h) * rows.gq + r / rows.nq;
    float* o = out + ((b * q_heads + size_t(hq)) * size_t(nq) + size_t(r % rows.nq)) * d;
    std::fill(o, o + d, 0.0f);
    if (M == -INFINITY) continue;
    float L = 0;
    for (const Partial& p : parts) {
      if (p.m[size_t(r)] == -INFINITY) continue;
      float w = std::exp(p.m[size_t(r)] - M);
      L += p.l[size_t(r)] * w;
      cpu::Axpy(w, p.acc.data() + size_t(r) * d, o, d);
    }
    float inv = 1.0f / L;
    for (int c = 0; c < d; ++c) o[c] *= inv;
  }
}

// How to split T tokens into chunks (multiples of `align`) so every core has work.
int64_t ChunkSize(int64_t T, size_t streams, int rows, int64_t align) {
  int64_t want = std::max<int64_t>(1, (int64_t(CpuThreads()) * 4 + int64_t(streams) - 1) / int64_t(streams));
  if (rows > 64) want = 1;  // many rows: partial states get large; streams give the parallelism
  int64_t ch = std::max<int64_t>(256, (T + want - 1) / want);
  return (ch + align - 1) / align * align;
}

void CheckAttentionArgs(int q_heads, int heads, int64_t nq, int64_t T, bool causal, const float* q, int d, int batch) {
  IZ_CHECK(q_heads >= heads && q_heads % heads == 0, ShapeMismatch,
           "query heads (" + std::to_string(q_heads) + ") must be a multiple of the KV heads (" +
               std::to_string(heads) + ")");
  IZ_CHECK(nq >= 1, ShapeMismatch, "attention needs at least one query");
  IZ_CHECK(T >= 1, InvalidArgument, "the KV cache is empty: append keys and values first");
  IZ_CHECK(!causal || nq <= T, ShapeMismatch,
           "causal attention with " + std::to_string(nq) + " queries needs at least as many cached tokens (have " +
               std::to_string(T) + ")");
  size_t n = size_t(batch) * size_t(q_heads) * size_t(nq) * size_t(d);
  for (size_t i = 0; i < n; ++i) IZ_CHECK(std::isfinite(q[i]), InvalidArgument, "queries hold NaN or Infinity");
}

// The chunked online-softmax driver shared by packed and dense attention: tokens of each
// stream are cut into chunks spread over the cores, each chunk walks blocks of `blk` tokens
// (logits, causal mask, softmax update, P.V) and chunk partials merge at the end. `Source`
// supplies a per-thread Scratch and, per block, Logits(scratch, s, R, a, e, logits) writing
// [rows][e - a] and Values(scratch, s, R, a, e, probs, acc) adding P.V into acc [rows][d];
// BeginChunk(scratch, s, R) runs before a chunk's first block.
//
// Eviction hooks: `live` (per stream, per token; null = all live) masks dead slots like the
// causal mask, and `scores` (per stream, per token; null = none) receives every token's
// probability summed over the stream's rows. The probabilities of the pass are kept with the
// running max they were taken against; once the chunks merge (final max M and sum L per row)
// each is rescaled by exp(m - M) / L: no second pass over the keys or values.
template <class Source>
void ChunkedAttention(const Source& src, size_t S, int heads, int q_heads, int64_t nq, int64_t T, int d, int64_t blk,
                      float scale, bool causal, const float* q, float* out,
                      const std::vector<std::vector<uint8_t>>* live = nullptr,
                      std::vector<std::vector<float>>* scores = nullptr, int64_t causal_end = -1) {
  const int rows_per_stream = (q_heads / heads) * static_cast<int>(nq);
  const int64_t ch = ChunkSize(T, S, rows_per_stream, blk);
  const size_t nchunks = size_t((T + ch - 1) / ch);
  const size_t nblk_chunk = size_t((ch + blk - 1) / blk);
  std::vector<Rows> rows(S);
  std::vector<std::vector<Partial>> parts(S, std::vector<Partial>(nchunks));
  // score accumulation: per stream [rows][T] probabilities and [rows][chunks*blocks] maxima
  std::vector<std::vector<float>> kept_p, kept_m;
  if (scores) {
    kept_p.resize(S);
    kept_m.resize(S);
    for (size_t s = 0; s < S; ++s) {
      kept_p[s].assign(size_t(rows_per_stream) * size_t(T), 0.0f);
      kept_m[s].assign(size_t(rows_per_stream) * nchunks * nblk_chunk, -INFINITY);
    }
  }
  // query i of nq sits at causal_end - nq + i (the last query at causal_end - 1; default: the last token)
  const int64_t end = causal_end < 0 ? T : causal_end;
  for (size_t s = 0; s < S; ++s) {
    rows[s] = MakeRows(q, q_heads, heads, nq, d, s / heads, s % heads, scale, causal, end);
    if (!causal)
      for (int64_t& lim : rows[s].limit) lim = T - 1;
  }
  ParallelFor(S * nchunks, 1, [&](size_t i0, size_t i1) {
    typename Source::Scratch scratch(src);
    std::vector<float> logits, probs;
    for (size_t item = i0; item < i1; ++item) {
      const size_t s = item / nchunks, chunk = item % nchunks;
      const Rows& R = rows[s];
      Partial& P = parts[s][chunk];
      P.Init(R.count, d);
      src.BeginChunk(scratch, s, R);
      const int64_t t_begin = int64_t(chunk) * ch, t_end = std::min(T, t_begin + ch);
      logits.resize(size_t(R.count) * blk);
      probs.resize(size_t(R.count) * blk);
      for (int64_t a = t_begin; a < t_end; a += blk) {
        const int64_t e = std::min(t_end, a + blk);
        const int nb = static_cast<int>(e - a);
        src.Logits(scratch, s, R, a, e, logits.data());
        for (int r = 0; r < R.count; ++r) {  // causal mask
          const int64_t lim = R.limit[size_t(r)];
          if (lim >= e - 1) continue;
          for (int j = 0; j < nb; ++j)
            if (a + j > lim) logits[size_t(r) * nb + j] = -INFINITY;
        }
        if (live) {  // evicted slots: no probability
          const uint8_t* lv = (*live)[s].data() + a;
          for (int j = 0; j < nb; ++j)
            if (!lv[j])
              for (int r = 0; r < R.count; ++r) logits[size_t(r) * nb + j] = -INFINITY;
        }
        SoftmaxBlock(R.count, nb, d, logits.data(), P.m.data(), P.l.data(), P.acc.data(), probs.data());
        if (scores) {
          const size_t bi = chunk * nblk_chunk + size_t((a - t_begin) / blk);
          for (int r = 0; r < R.count; ++r) {
            std::memcpy(kept_p[s].data() + size_t(r) * size_t(T) + size_t(a), probs.data() + size_t(r) * nb,
                        sizeof(float) * size_t(nb));
            kept_m[s][size_t(r) * nchunks * nblk_chunk + bi] = P.m[size_t(r)];
          }
        }
        src.Values(scratch, s, R, a, e, probs.data(), P.acc.data());
      }
    }
  });
  ParallelFor(S, 1, [&](size_t s0, size_t s1) {
    for (size_t s = s0; s < s1; ++s) {
      MergeAndStore(parts[s], rows[s], q_heads, nq, d, s / heads, s % heads, out);
      if (!scores) continue;
      float* acc = (*scores)[s].data();
      for (int r = 0; r < rows[s].count; ++r) {
        float M = -INFINITY, L = 0;
        for (const Partial& p : parts[s]) M = std::max(M, p.m[size_t(r)]);
        if (M == -INFINITY) continue;
        for (const Partial& p : parts[s])
          if (p.m[size_t(r)] != -INFINITY) L += p.l[size_t(r)] * std::exp(p.m[size_t(r)] - M);
        const float* pr = kept_p[s].data() + size_t(r) * size_t(T);
        const float* mr = kept_m[s].data() + size_t(r) * nchunks * nblk_chunk;
        for (size_t c = 0; c < nchunks; ++c) {
          const int64_t t0 = int64_t(c) * ch, t1 = std::min(T, t0 + ch);
          for (int64_t a = t0; a < t1; a += blk) {
            const float m = mr[c * nblk_chunk + size_t((a - t0) / blk)];
            if (m == -INFINITY) continue;
            const float w = std::exp(m - M) / L;
            const int64_t e = std::min(t1, a + blk);
            for (int64_t t = a; t < e; ++t) acc[t] += pr[t] * w;
          }
        }
      }
    }
  });
}

// Dense f32 K and V [S][T][d]: the baseline the packed path is measured against.
struct DenseSource {
  const float* k;
  const float* v;
  int64_t T;
  int d;
  struct Scratch {
    explicit Scratch(const DenseSource&) {}
  };
  void BeginChunk(Scratch&, size_t, const Rows&) const {}
  void Logits(Scratch&, size_t s, const Rows& R, int64_t a, int64_t e, float* logits) const {
    const int nb = static_cast<int>(e - a);
    const float* ks = k + s * size_t(T) * d;
    for (int64_t t = a; t < e; ++t)
      for (int r = 0; r < R.count; ++r)
        logits[size_t(r) * nb + size_t(t - a)] = cpu::Dot(R.q.data() + size_t(r) * d, ks + size_t(t) * d, d);
  }
  void Values(Scratch&, size_t s, const Rows& R, int64_t a, int64_t e, const float* probs, float* acc) const {
    const int nb = static_cast<int>(e - a);
    const float* vs = v + s * size_t(T) * d;
    for (int64_t t = a; t < e; ++t)
      for (int r = 0; r < R.count; ++r) {
        const float p = probs[size_t(r) * nb + size_t(t - a)];
        if (p != 0.0f) cpu::Axpy(p, vs + size_t(t) * d, acc + size_t(r) * d, d);
      }
  }
};

}  // namespace

void KvCache::Attention(const float* q, int q_heads, int64_t nq, float scale, bool causal, float* out) {
  const int d = L_.d;
  CheckAttentionArgs(q_heads, opt_.heads, nq, evicting() ? KeptTokens() : T_, causal, q, d, opt_.batch);
  IZ_CHECK(std::isfinite(scale), InvalidArgument, "scale must be finite");
  if (!evicting()) {
    if (on_cuda()) return AttentionCuda(q, q_heads, nq, scale, causal, out);
    return AttendPacked(q, q_heads, nq, scale, causal, out, nullptr, nullptr);
  }
  // Queries are the newest tokens, which every stream keeps: the causal limit by slot works.
  // Score accumulation holds each query row's probabilities until the call's rows merge
  // ([rows][T] floats per stream), so a long prefill runs in slices of queries that bound it
  // to about 64 MiB; every query row still reads the codes once.
  const int gq = q_heads / opt_.heads;
  const int64_t per_query = int64_t(S_) * gq * std::max<int64_t>(T_, 1) * int64_t(sizeof(float));
  int64_t budget = int64_t(64) << 20;
  if (const char* env = std::getenv("INFERZIP_KV_SCORE_SLICE_BYTES")) {  // tests force small slices
    const long long v = std::atoll(env);
    if (v > 0) budget = v;
  }
  const int64_t slice = std::max<int64_t>(1, budget / per_query);
  if (slice >= nq) {
    if (on_cuda())
      AttentionCuda(q, q_heads, nq, scale, causal, out, &ev_.live, &ev_.score);
    else
      AttendPacked(q, q_heads, nq, scale, causal, out, &ev_.live, &ev_.score);
  } else {
    const size_t rows_all = size_t(opt_.batch) * size_t(q_heads);
    for (int64_t i0 = 0; i0 < nq; i0 += slice) {
      const int64_t n = std::min(slice, nq - i0);
      std::vector<float> qs(rows_all * size_t(n) * d), os(qs.size());
      for (size_t r = 0; r < rows_all; ++r)
        std::memcpy(qs.data() + r * size_t(n) * d, q + (r * size_t(nq) + size_t(i0)) * d,
                    sizeof(float) * size_t(n) * d);
      const int64_t end = T_ - (nq - (i0 + n));  // the slice's last query sits at end - 1
      if (on_cuda())
        AttentionCuda(qs.data(), q_heads, n, scale, causal, os.data(), &ev_.live, &ev_.score, end);
      else
        AttendPacked(qs.data(), q_heads, n, scale, causal, os.data(), &ev_.live, &ev_.score, end);
      for (size_t r = 0; r < rows_all; ++r)
        std::memcpy(out + (r * size_t(nq) + size_t(i0)) * d, os.data() + r * size_t(n) * d,
                    sizeof(float) * size_t(n) * d);
    }
  }
  EvictAfterAttention();
}

void KvCache::AttendPacked(const float* q, int q_heads, int64_t nq, float scale, bool causal, float* out,
                           const std::vector<std::vector<uint8_t>>* live, std::vector<std::vector<float>>* scores,
                           int64_t causal_end) const {
  const int d = L_.d;
  const bool fast_kivi = L_.scheme == kKivi && (L_.G * L_.bits) % 32 == 0 && (d * L_.bits) % 32 == 0 && L_.Cg % 4 == 0;
  const int64_t blk = L_.scheme == kKivi ? L_.G : std::max(1, std::min(L_.G, 32));

  // Logits and P.V straight from the packed planes (plus the full-precision residual).
  struct PackedSource {
    const KvCache& c;
    bool fast_kivi;
    int64_t blk;
    struct Scratch {
      std::vector<float> qp, minsum, krow, vrow, qs, vscratch;
      explicit Scratch(const PackedSource& p)
          : krow(size_t(p.c.L_.d)),
            vrow(size_t(p.c.L_.d)),
            qs(size_t(4 * p.c.L_.d)),
            vscratch(size_t(2 * p.blk * (p.c.L_.d / p.c.L_.Cg) + 8)) {}
    };
    void BeginChunk(Scratch& x, size_t, const Rows& R) const {
      const int d = c.L_.d;
      x.qp.resize(size_t(R.count) * d);
      for (int r = 0; r < R.count; ++r)
        PrepareQuery(c.L_, R.q.data() + size_t(r) * d, c.basis_.data(), x.qp.data() + size_t(r) * d);
    }
    void Logits(Scratch& x, size_t s, const Rows& R, int64_t a, int64_t e, float* logits) const {
      const Layout& L = c.L_;
      const int d = L.d;
      const int nb = static_cast<int>(e - a);
      const StreamView view = c.View(s);
      if (fast_kivi && e <= c.Tk_ && nb == L.G) {
        const uint8_t* block = view.p[KBLK] + uint64_t(a / L.G) * L.kblock_bytes;
        int r = 0;
        if (L.bits == 2 && cpu::HasAvx2())  // pairs of GQA rows share each code lookup
          for (; r + 1 < R.count; r += 2)
            if (!cpu::KeyGroupPairAvx2(block, KiviKeyParamOffset(L), d, L.G * L.bits / 8, R.q.data() + size_t(r) * d,
                                       R.q.data() + size_t(r + 1) * d, x.qs.data(), logits + size_t(r) * nb,
                                       logits + size_t(r + 1) * nb))
              break;
        for (; r < R.count; ++r)
          cpu::KiviKeyGroupLogits(block, KiviKeyParamOffset(L), d, L.G, L.bits, R.q.data() + size_t(r) * d, x.qs.data(),
                                  logits + size_t(r) * nb);
        return;
      }
      for (int64_t t = a; t < e; ++t) {
        const int j = static_cast<int>(t - a);
        const float* kr = nullptr;
        bool direct = false;
        if (t >= c.Tk_) {
          kr = c.rk_[s].data() + size_t(t - c.Tk_) * d;
        } else if (L.scheme == kVidKV) {
          direct = true;
        } else {
          DecodeKeyToken(L, view, uint64_t(t), nullptr, x.krow.data());
          kr = x.krow.data();
        }
        for (int r = 0; r < R.count; ++r)
          logits[size_t(r) * nb + j] = direct ? KeyDot(L, view, uint64_t(t), x.qp.data() + size_t(r) * d)
                                              : cpu::Dot(R.q.data() + size_t(r) * d, kr, d);
      }
    }
    void Values(Scratch& x, size_t s, const Rows& R, int64_t a, int64_t e, const float* probs, float* acc) const {
      const Layout& L = c.L_;
      const int d = L.d;
      const int nb = static_cast<int>(e - a);
      const int groups = d / L.Cg;
      const StreamView view = c.View(s);
      if (fast_kivi && e <= c.Tv_) {
        // whole block of packed values: channel groups in registers, tokens streamed
        const uint8_t* codes = view.p[VCODE] + uint64_t(a) * d * L.bits / 8;
        const uint16_t* par = reinterpret_cast<const uint16_t*>(view.p[VPARAM]) + uint64_t(a) * 2 * groups;
        bool done = true;
        int r = 0;
        if (L.bits == 2 && cpu::HasAvx2())
          for (; r + 1 < R.count; r += 2)
            if (!cpu::ValueBlockPairAvx2(codes, par, d, L.Cg, nb, probs + size_t(r) * nb, probs + size_t(r + 1) * nb,
                                         acc + size_t(r) * d, acc + size_t(r + 1) * d, x.vscratch.data()))
              break;
        for (; r < R.count && done; ++r)
          done = cpu::ValueBlockFast(codes, par, d, L.Cg, L.bits, nb, probs + size_t(r) * nb, acc + size_t(r) * d,
                                     x.vscratch.data());
        if (done) return;
      }
      bool any_min = false;
      for (int64_t t = a; t < e; ++t) {
        const int j = static_cast<int>(t - a);
        const float* vr = nullptr;
        if (t >= c.Tv_) {
          vr = c.rv_[s].data() + size_t(t - c.Tv_) * d;
        } else if (fast_kivi) {
          // straight from the codes: acc += (p*scale)*code per group, p*min summed per block
          if (!any_min) x.minsum.assign(size_t(R.count) * groups, 0.0f);
          any_min = true;
          const uint8_t* codes = view.p[VCODE] + uint64_t(t) * d * L.bits / 8;
          const uint16_t* par = reinterpret_cast<const uint16_t*>(view.p[VPARAM]) + uint64_t(t) * 2 * groups;
          for (int r = 0; r < R.count; ++r) {
            const float p = probs[size_t(r) * nb + j];
            if (p != 0.0f)
              cpu::KiviValueAccumulate(codes, par, d, L.Cg, L.bits, p, acc + size_t(r) * d,
                                       x.minsum.data() + size_t(r) * groups);
          }
          continue;
        } else {
          DecodeValueToken(L, view, uint64_t(t), x.vrow.data());
          vr = x.vrow.data();
        }
        for (int r = 0; r < R.count; ++r) {
          const float p = probs[size_t(r) * nb + j];
          if (p != 0.0f) cpu::Axpy(p, vr, acc + size_t(r) * d, d);
        }
      }
      if (any_min) {
        for (int r = 0; r < R.count; ++r) {
          float* ar = acc + size_t(r) * d;
          const float* ms = x.minsum.data() + size_t(r) * groups;
          for (int ch = 0; ch < d; ++ch) ar[ch] += ms[ch / L.Cg];
        }
      }
    }
  };
  ChunkedAttention(PackedSource{*this, fast_kivi, blk}, S_, opt_.heads, q_heads, nq, T_, d, blk, scale, causal, q, out,
                   live, scores, causal_end);
}

void DenseAttention(const float* q, int batch, int q_heads, int64_t nq, const float* k, const float* v, int heads,
                    int64_t T, int d, float scale, bool causal, float* out) {
  IZ_CHECK(batch >= 1 && heads >= 1 && d >= 1, InvalidArgument, "attention needs batch, heads and head_dim >= 1");
  CheckAttentionArgs(q_heads, heads, nq, T, causal, q, d, batch);
  ChunkedAttention(DenseSource{k, v, T, d}, size_t(batch) * size_t(heads), heads, q_heads, nq, T, d, 32, scale, causal,
                   q, out);
}

}  // namespace iz::kv
