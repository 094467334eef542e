// H2O / D2O KV eviction on the quantized cache (spec: docs kv-evict, papers arXiv 2306.14048
// and 2406.13035). Attention adds each probability it computes to the attended slot's score
// (attention.cpp); at the end of every attention call one round keeps, per stream (or per
// batch row with granularity 'layer'), the R newest kept tokens plus the H = B - R others with
// the largest score, and marks the rest dead. D2O first merges each evicted token into its
// most similar kept token (cosine of the keys) when the similarity reaches the EMA threshold.
//
// Storage: token slots are shared by all streams of the layer (the quantized layouts address a
// token by its slot). A slot no stream keeps is removed: residual rows one by one, quantized
// tokens by whole blocks of G (kivi key blocks, fp8 scale blocks, zipcache tokens kept in
// G-aligned groups), so a block's scale and min never change and no kept code is re-encoded.
// vidkv's quantized slots stay until the cache is dropped (their value trits are ranked across
// blocks); its residual rows are removed like the others.
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>

#include "native/core/kvquant/cache.h"
#include "native/core/parallel.h"
#include "native/shared/error.h"
#include "native/shared/kvquant/encode.h"

namespace iz::kv {

namespace {

bool Fraction(double x) { return x > 0 && x < 1; }

// Clears nbits bits from bit0 (codes are OR-ed into zeroed storage by the encoders).
void ClearBits(uint32_t* words, uint64_t bit0, uint64_t nbits) {
  for (uint64_t b = bit0; b < bit0 + nbits;) {
    const uint64_t w = b >> 5, off = b & 31u;
    const uint64_t take = std::min<uint64_t>(32 - off, bit0 + nbits - b);
    const uint32_t mask = take == 32 ? 0xffffffffu : (((1u << take) - 1u) << off);
    words[w] &= ~mask;
    b += take;
  }
}

}  // namespace

int64_t KvCache::KeptTokens() const {
  if (!evicting() || ev_.live.empty()) return T_;
  int64_t n = 0;
  for (uint8_t x : ev_.live[0]) n += x;
  return n;
}

void KvCache::EvictAppend(int64_t n) {
  if (opt_.evict_method == kEvictD2O && ev_.prefill >= 0 && !ev_.allocated) {
    ev_.allocated = true;  // a lone cache: its own budget
    EvictRound();
  }
  IZ_CHECK(ev_.next_pos + n <= int64_t(INT32_MAX), InvalidArgument,
           "an evicting KV cache holds positions below 2^31; this append would pass it");
  for (int64_t i = 0; i < n; ++i) ev_.pos.push_back(static_cast<int32_t>(ev_.next_pos + i));
  ev_.next_pos += n;
  for (size_t s = 0; s < S_; ++s) {
    ev_.live[s].resize(ev_.live[s].size() + size_t(n), 1);
    ev_.score[s].resize(ev_.score[s].size() + size_t(n), 0.0f);
  }
}

void KvCache::EvictAfterAttention() {
  if (ev_.prefill < 0) {
    const int64_t P = KeptTokens();
    ev_.prefill = P;
    const double b = opt_.evict_budget, r = opt_.evict_recent;
    ev_.budget = Fraction(b) ? std::max<int64_t>(1, int64_t(std::floor(b * double(P) + 1e-9))) : int64_t(b);
    ev_.recent = Fraction(r) ? int64_t(std::floor(r * double(ev_.budget) + 1e-9)) : std::min(int64_t(r), ev_.budget);
    // density: population variance of each stream's scores, averaged over the streams
    double density = 0;
    for (size_t s = 0; s < S_; ++s) {
      double sum = 0, sq = 0, cnt = 0;
      for (size_t t = 0; t < size_t(T_); ++t)
        if (ev_.live[s][t]) {
          sum += ev_.score[s][t];
          cnt += 1;
        }
      const double mean = cnt > 0 ? sum / cnt : 0;
      for (size_t t = 0; t < size_t(T_); ++t)
        if (ev_.live[s][t]) sq += (ev_.score[s][t] - mean) * (ev_.score[s][t] - mean);
      density += cnt > 0 ? sq / cnt : 0;
    }
    ev_.density = density / double(S_);
    if (opt_.evict_method == kEvictD2O) return;  // the budget is allocated first
  } else if (opt_.evict_method == kEvictD2O && !ev_.allocated) {
    ev_.allocated = true;
  }
  EvictRound();
}

void KvCache::AllocateBudget(int64_t budget, int64_t recent) {
  IZ_CHECK(opt_.evict_method == kEvictD2O, InvalidArgument, "layer budgets are for caches with eviction method d2o");
  IZ_CHECK(ev_.prefill >= 0, InvalidArgument,
           "allocate D2O budgets after every layer's prefill attention (this cache has not attended yet)");
  IZ_CHECK(!ev_.allocated, InvalidArgument, "this cache's D2O budget was already allocated");
  IZ_CHECK(budget >= 1 && recent >= 0 && recent <= budget, InvalidArgument,
           "a layer budget needs budget >= 1 and 0 <= recent <= budget");
  ev_.budget = budget;
  ev_.recent = recent;
  ev_.allocated = true;
  EvictRound();
}

// Keys of `slots` (ascending) of one stream; kivi key blocks decode with one affine per
// channel per block rather than per element.
void KvCache::ReadKeys(size_t s, const std::vector<int64_t>& slots, float* out) const {
  const int d = L_.d;
  const StreamView view = View(s);
  std::vector<float> scale(static_cast<size_t>(d)), mn(static_cast<size_t>(d));
  int64_t block = -1;
  for (size_t i = 0; i < slots.size(); ++i) {
    const int64_t t = slots[i];
    float* k = out + i * size_t(d);
    if (t >= Tk_) {
      std::memcpy(k, rk_[s].data() + size_t(t - Tk_) * d, sizeof(float) * size_t(d));
    } else if (L_.scheme == kKivi) {
      const uint8_t* blk = view.p[KBLK] + uint64_t(t / L_.G) * L_.kblock_bytes;
      if (t / L_.G != block) {
        block = t / L_.G;
        const uint16_t* par = reinterpret_cast<const uint16_t*>(blk + KiviKeyParamOffset(L_));
        for (int c = 0; c < d; ++c) {
          scale[size_t(c)] = F16ToF32(par[2 * c]);
          mn[size_t(c)] = F16ToF32(par[2 * c + 1]);
        }
      }
      const uint32_t* codes = reinterpret_cast<const uint32_t*>(blk);
      const uint64_t j = uint64_t(t % L_.G);
      for (int c = 0; c < d; ++c)
        k[c] = DequantizeUniform(ReadCode(codes, (uint64_t(c) * L_.G + j) * L_.bits, L_.bits),
                                 Affine{scale[size_t(c)], mn[size_t(c)]});
    } else {
      DecodeKeyToken(L_, view, uint64_t(t), basis_.data(), k);
    }
  }
}

void KvCache::ReadRow(size_t s, int64_t t, float* k, float* v) const {
  const int d = L_.d;
  const StreamView view = View(s);
  if (t >= Tk_)
    std::memcpy(k, rk_[s].data() + size_t(t - Tk_) * d, sizeof(float) * size_t(d));
  else
    DecodeKeyToken(L_, view, uint64_t(t), basis_.data(), k);
  if (t >= Tv_)
    std::memcpy(v, rv_[s].data() + size_t(t - Tv_) * d, sizeof(float) * size_t(d));
  else
    DecodeValueToken(L_, view, uint64_t(t), v);
}

// Writes a merged row: residual rows as they are; packed tokens re-encoded in place, per-token
// parts with fresh statistics at their bit width, block parts against the block's own scale.
// Marks the plane bytes it rewrites (CUDA uploads those after the round).
void KvCache::WriteRow(size_t s, int64_t t, const float* k, const float* v) {
  const int d = L_.d, G = L_.G, groups = d / L_.Cg;
  const size_t token_params = size_t(t) * groups * 4, param_bytes = size_t(groups) * 4;
  auto plane = [&](int p) { return planes_[p].mem->as<uint8_t>() + s * planes_[p].cap; };
  const uint64_t ut = uint64_t(t);
  // fp8: the token's codes against its block's scale
  auto fp8_token = [&](int code_plane, int param_plane, const float* x) {
    const float sc = reinterpret_cast<const float*>(plane(param_plane))[ut / G];
    uint8_t* code = plane(code_plane) + ut * d;
    for (int c = 0; c < d; ++c) code[c] = static_cast<uint8_t>(sc > 0.0f ? Fp8Encode(x[c] / sc, L_.fp8_format) : 0u);
    MarkChanged(code_plane, s, ut * d, (ut + 1) * d);
  };
  // zipcache: the token's pool unit(s) at its own bit width, fresh per-token group statistics
  auto zip_token = [&](int code_plane, int param_plane, const float* x) {
    bool hi = false;
    const uint64_t unit = PoolUnit(reinterpret_cast<const uint32_t*>(plane(INDEX)), ut, 1, 2, &hi);
    const int bits = hi ? 4 : 2;
    uint32_t* codes = reinterpret_cast<uint32_t*>(plane(code_plane));
    ClearBits(codes, unit * 2 * d, uint64_t(d) * bits);
    EncodeTokenGroups(x, d, L_.Cg, bits, codes, unit * 2 * d,
                      reinterpret_cast<uint16_t*>(plane(param_plane)) + ut * 2 * groups);
    MarkChangedBits(code_plane, s, unit * 2 * d, uint64_t(d) * bits);
    MarkChanged(param_plane, s, token_params, token_params + param_bytes);
  };
  if (t >= Tk_) {
    std::memcpy(rk_[s].data() + size_t(t - Tk_) * d, k, sizeof(float) * size_t(d));
  } else if (L_.scheme == kKivi) {
    uint8_t* blk = plane(KBLK) + (ut / G) * L_.kblock_bytes;
    uint32_t* codes = reinterpret_cast<uint32_t*>(blk);
    const uint16_t* par = reinterpret_cast<const uint16_t*>(blk + KiviKeyParamOffset(L_));
    for (int c = 0; c < d; ++c) {
      const Affine a{F16ToF32(par[2 * c]), F16ToF32(par[2 * c + 1])};
      const uint64_t bit = (uint64_t(c) * G + ut % G) * L_.bits;
      ClearBits(codes, bit, L_.bits);
      OrCode(codes, bit, L_.bits, QuantizeUniform(k[c], a, L_.bits));
    }
    MarkChanged(KBLK, s, (ut / G) * L_.kblock_bytes, (ut / G + 1) * L_.kblock_bytes);
  } else if (L_.scheme == kFp8) {
    fp8_token(KCODE, KPARAM, k);
  } else if (L_.scheme == kZipCache) {
    zip_token(KCODE, KPARAM, k);
  } else {
    Fail(ErrorCode::Unsupported, "d2o cannot re-encode a vidkv key block");
  }
  if (t >= Tv_) {
    std::memcpy(rv_[s].data() + size_t(t - Tv_) * d, v, sizeof(float) * size_t(d));
  } else if (L_.scheme == kKivi) {
    uint32_t* codes = reinterpret_cast<uint32_t*>(plane(VCODE));
    ClearBits(codes, ut * d * L_.bits, uint64_t(d) * L_.bits);
    EncodeTokenGroups(v, d, L_.Cg, L_.bits, codes, ut * d * L_.bits,
                      reinterpret_cast<uint16_t*>(plane(VPARAM)) + ut * 2 * groups);
    MarkChangedBits(VCODE, s, ut * d * L_.bits, uint64_t(d) * L_.bits);
    MarkChanged(VPARAM, s, token_params, token_params + param_bytes);
  } else if (L_.scheme == kFp8) {
    fp8_token(VCODE, VPARAM, v);
  } else if (L_.scheme == kZipCache) {
    zip_token(VCODE, VPARAM, v);
  } else {
    Fail(ErrorCode::Unsupported, "d2o cannot re-encode a vidkv value");
  }
}

void KvCache::EvictRound() {
  const int64_t B = ev_.budget, R = ev_.recent, H = B - R;
  const size_t T = size_t(T_);
  const int heads = opt_.heads;
  const bool layer = opt_.evict_granularity == 1;
  std::vector<std::vector<int64_t>> evicted(S_), kept(S_);
  bool any = false;
  // Decide: per stream, or per batch row from the scores summed over its heads.
  for (size_t s = 0; s < S_; ++s) {
    if (layer && s % heads != 0) continue;
    std::vector<int64_t> idx;
    for (size_t t = 0; t < T; ++t)
      if (ev_.live[s][t]) idx.push_back(int64_t(t));
    const int64_t n = int64_t(idx.size());
    if (n <= B) continue;
    std::vector<float> score(T, 0.0f);
    if (layer) {
      for (int h = 0; h < heads; ++h)
        for (int64_t t : idx) score[size_t(t)] += ev_.score[s + size_t(h)][size_t(t)];
    } else {
      for (int64_t t : idx) score[size_t(t)] = ev_.score[s][size_t(t)];
    }
    std::vector<int64_t> rest(idx.begin(), idx.end() - R);
    std::sort(rest.begin(), rest.end(), [&](int64_t a, int64_t b) {
      if (score[size_t(a)] != score[size_t(b)]) return score[size_t(a)] > score[size_t(b)];
      return ev_.pos[size_t(a)] < ev_.pos[size_t(b)];
    });
    std::vector<uint8_t> keep(T, 0);
    for (int64_t i = 0; i < H; ++i) keep[size_t(rest[size_t(i)])] = 1;
    for (int64_t i = n - R; i < n; ++i) keep[size_t(idx[size_t(i)])] = 1;
    std::vector<int64_t> ev, kp;
    for (int64_t t : idx) (keep[size_t(t)] ? kp : ev).push_back(t);
    for (int h = 0; h < (layer ? heads : 1); ++h) {
      evicted[s + size_t(h)] = ev;
      kept[s + size_t(h)] = kp;
    }
    any = true;
  }
  if (!any) return;
  if (opt_.evict_method == kEvictD2O) {
    // Token level, per stream (streams in parallel: each writes only its own rows): similarities
    // from the rows before this round's merges.
    const int d = L_.d;
    const double beta = opt_.evict_beta, E = std::exp(1.0);
    ParallelFor(S_, 1, [&](size_t s0, size_t s1) {
      for (size_t s = s0; s < s1; ++s) {
        const auto& ev = evicted[s];
        const auto& kp = kept[s];
        if (ev.empty()) continue;
        std::vector<float> ek(ev.size() * d), evv(ev.size() * d), ck(kp.size() * d), cv(d);
        for (size_t i = 0; i < ev.size(); ++i) ReadRow(s, ev[i], ek.data() + i * d, evv.data() + i * d);
        ReadKeys(s, kp, ck.data());
        auto norm = [&](const float* x) {
          double a = 0;
          for (int c = 0; c < d; ++c) a += double(x[c]) * x[c];
          return std::sqrt(a);
        };
        std::vector<double> cn(kp.size());
        for (size_t i = 0; i < kp.size(); ++i) cn[i] = norm(ck.data() + i * d);
        std::vector<size_t> best(ev.size());
        std::vector<double> m(ev.size());
        double mu = 0;
        for (size_t i = 0; i < ev.size(); ++i) {
          const double en = norm(ek.data() + i * d);
          double bm = -INFINITY;
          size_t bc = 0;
          for (size_t j = 0; j < kp.size(); ++j) {
            double u = 0;
            if (en > 0 && cn[j] > 0) {
              double dot = 0;
              for (int c = 0; c < d; ++c) dot += double(ek[i * d + c]) * ck[j * d + c];
              u = dot / (en * cn[j]);
            }
            if (u > bm) {  // ties: the lower position (kept slots ascend)
              bm = u;
              bc = j;
            }
          }
          best[i] = bc;
          m[i] = bm;
          mu += bm;
        }
        mu /= double(ev.size());
        const float tau = std::isnan(ev_.tau[s]) ? float(mu) : float(beta * mu + (1 - beta) * double(ev_.tau[s]));
        ev_.tau[s] = tau;
        // merge targets only (a round evicts few tokens): slot in kp -> den, k and v sums
        std::map<size_t, std::vector<double>> acc;  // [den, k (d), v (d)]
        for (size_t i = 0; i < ev.size(); ++i) {
          if (!(m[i] >= double(tau))) continue;
          const size_t j = best[i];
          const double w = std::exp(m[i]);
          auto it = acc.find(j);
          if (it == acc.end()) {  // first merge into this kept token: its own row, weight e
            std::vector<double> a(size_t(1 + 2 * d));
            std::vector<float> kself(d);
            ReadRow(s, kp[j], kself.data(), cv.data());
            a[0] = E;
            for (int c = 0; c < d; ++c) {
              a[size_t(1 + c)] = E * ck[j * d + c];
              a[size_t(1 + d + c)] = E * cv[c];
            }
            it = acc.emplace(j, std::move(a)).first;
          }
          std::vector<double>& a = it->second;
          a[0] += w;
          for (int c = 0; c < d; ++c) {
            a[size_t(1 + c)] += w * ek[i * d + c];
            a[size_t(1 + d + c)] += w * evv[i * d + c];
          }
        }
        std::vector<float> kr(d), vr(d);
        for (const auto& [j, a] : acc) {
          for (int c = 0; c < d; ++c) {
            kr[c] = float(a[size_t(1 + c)] / a[0]);
            vr[c] = float(a[size_t(1 + d + c)] / a[0]);
          }
          WriteRow(s, kp[j], kr.data(), vr.data());
        }
      }
    });
  }
  for (size_t s = 0; s < S_; ++s)
    for (int64_t t : evicted[s]) {
      ev_.live[s][size_t(t)] = 0;
      ev_.score[s][size_t(t)] = 0.0f;
    }
  Reclaim();
  // CUDA: the host planes are the source of truth; the mirror takes the bytes this round
  // changed (merged rows, compacted records and the zeroed tails behind them)
  if (on_cuda()) UploadChanged();
}

void KvCache::Reclaim() {
  const size_t T = size_t(T_);
  std::vector<uint8_t> dead(T, 1);
  for (size_t s = 0; s < S_; ++s)
    for (size_t t = 0; t < T; ++t)
      if (ev_.live[s][t]) dead[t] = 0;
  std::vector<uint8_t> remove(T, 0);
  const int64_t G = L_.G;
  const int64_t whole = finalized_ ? Tk_ / G * G : Tk_;  // a final partial block stays
  bool any = false;
  for (int64_t t = 0; t < T_; ++t) {
    if (!dead[size_t(t)]) continue;
    if (t >= Tk_) {
      remove[size_t(t)] = 1;
    } else if (L_.scheme != kVidKV && t < whole && t % G == 0) {
      bool all = true;
      for (int64_t j = t; j < t + G; ++j) all = all && dead[size_t(j)];
      if (all)
        for (int64_t j = t; j < t + G; ++j) remove[size_t(j)] = 1;
    }
    any = any || remove[size_t(t)];
  }
  if (any) RemoveSlots(remove);
}

void KvCache::RemoveSlots(const std::vector<uint8_t>& remove) {
  const int d = L_.d, G = L_.G, groups = d / L_.Cg;
  const size_t T = size_t(T_);
  int64_t rk = 0, rv = 0, rt = 0;
  for (size_t t = 0; t < T; ++t) {
    if (!remove[t]) continue;
    ++rt;
    rk += int64_t(t) < Tk_;
    rv += int64_t(t) < Tv_;
  }
  const int64_t nTk = Tk_ - rk, nTv = Tv_ - rv;
  auto plane = [&](int p, size_t s) { return planes_[p].mem->as<uint8_t>() + s * planes_[p].cap; };
  // Used bytes before the removal: past them a plane holds zeros (encoders write only the used
  // prefix, compaction zeroes what it frees), so a compaction changes bytes only from the
  // first record it moves up to these.
  std::vector<size_t> used[kNumPlanes];
  if (on_cuda())
    for (int p = 0; p < kNumPlanes; ++p) used[p] = UsedBytes(p);
  // Compacts `count` records of `bytes` each (record i is kept unless remove[i * per]),
  // then zeroes the freed tail so later encoders OR into clean storage.
  auto compact = [&](int p, size_t s, int64_t count, size_t bytes, int64_t per) {
    if (!planes_[p].mem || count == 0) return;
    uint8_t* base = plane(p, s);
    size_t w = 0;
    int64_t first = count;  // the first record removed
    for (int64_t i = 0; i < count; ++i) {
      if (remove[size_t(i * per)]) {
        first = std::min(first, i);
        continue;
      }
      if (w != size_t(i)) std::memmove(base + w * bytes, base + size_t(i) * bytes, bytes);
      ++w;
    }
    std::memset(base + w * bytes, 0, planes_[p].cap - w * bytes);
    if (on_cuda()) MarkChanged(p, s, size_t(first) * bytes, std::max(used[p][s], size_t(count) * bytes));
  };
  for (size_t s = 0; s < S_; ++s) {
    if (rk > 0 || rv > 0) {
      switch (L_.scheme) {
        case kKivi:
          compact(KBLK, s, Tk_ / G, L_.kblock_bytes, G);
          compact(VCODE, s, Tv_, size_t(d) * L_.bits / 8, 1);
          compact(VPARAM, s, Tv_, size_t(groups) * 4, 1);
          break;
        case kFp8:
          compact(KCODE, s, Tk_, size_t(d), 1);
          compact(VCODE, s, Tv_, size_t(d), 1);
          compact(KPARAM, s, (Tk_ + G - 1) / G, 4, G);
          compact(VPARAM, s, (Tv_ + G - 1) / G, 4, G);
          break;
        case kZipCache: {
          // per-token pools: walk the index, copy kept tokens' units, rebuild the index
          const uint32_t* index = reinterpret_cast<const uint32_t*>(plane(INDEX, s));
          const size_t unit_bytes = size_t(d) / 4;  // 2*d bits
          std::vector<uint8_t> kc(planes_[KCODE].cap, 0), vc(planes_[VCODE].cap, 0);
          std::vector<uint8_t> idx(planes_[INDEX].cap, 0);
          uint32_t* nidx = reinterpret_cast<uint32_t*>(idx.data());
          uint64_t units = 0, w = 0;
          int64_t first = Tk_;  // the first token removed: the pools and index before it stay
          uint64_t first_unit = units_[s];
          for (int64_t t = 0; t < Tk_; ++t) {
            bool hi = false;
            const uint64_t u = PoolUnit(index, uint64_t(t), 1, 2, &hi);
            if (remove[size_t(t)]) {
              if (first == Tk_) {
                first = t;
                first_unit = u;
              }
              continue;
            }
            const uint64_t nu = hi ? 2 : 1;
            std::memcpy(kc.data() + units * unit_bytes, plane(KCODE, s) + u * unit_bytes, nu * unit_bytes);
            std::memcpy(vc.data() + units * unit_bytes, plane(VCODE, s) + u * unit_bytes, nu * unit_bytes);
            if ((w & 31u) == 0) nidx[(w >> 5) * 2] = static_cast<uint32_t>(units);
            if (hi) nidx[(w >> 5) * 2 + 1] |= 1u << (w & 31u);
            units += nu;
            ++w;
          }
          std::memcpy(plane(KCODE, s), kc.data(), kc.size());
          std::memcpy(plane(VCODE, s), vc.data(), vc.size());
          std::memcpy(plane(INDEX, s), idx.data(), idx.size());
          if (on_cuda()) {
            for (int p : {KCODE, VCODE}) MarkChanged(p, s, size_t(first_unit) * unit_bytes, used[p][s]);
            MarkChanged(INDEX, s, size_t(first >> 5) * 8, used[INDEX][s]);
          }
          units_[s] = units;
          compact(KPARAM, s, Tk_, size_t(groups) * 4, 1);
          compact(VPARAM, s, Tv_, size_t(groups) * 4, 1);
          break;
        }
        default:
          Fail(ErrorCode::Internal, "vidkv quantized slots are never removed");
      }
    }
    // residual rows (and the saliency scores of residual tokens)
    auto erase_rows = [&](std::vector<float>& rows, int64_t from, size_t width) {
      size_t w = 0;
      for (size_t t = size_t(from); t < T; ++t) {
        if (remove[t]) continue;
        const size_t i = t - size_t(from);
        if (w != i) std::memmove(rows.data() + w * width, rows.data() + i * width, sizeof(float) * width);
        ++w;
      }
      rows.resize(w * width);
    };
    erase_rows(rk_[s], Tk_, size_t(d));
    erase_rows(rv_[s], Tv_, size_t(d));
    if (!rscore_[s].empty()) {
      erase_rows(rscore_[s], Tk_, 1);
      erase_rows(rcount_[s], Tk_, 1);
    }
    size_t w = 0;
    for (size_t t = 0; t < T; ++t) {
      if (remove[t]) continue;
      ev_.live[s][w] = ev_.live[s][t];
      ev_.score[s][w] = ev_.score[s][t];
      ++w;
    }
    ev_.live[s].resize(w);
    ev_.score[s].resize(w);
  }
  size_t w = 0;
  for (size_t t = 0; t < T; ++t)
    if (!remove[t]) ev_.pos[w++] = ev_.pos[t];
  ev_.pos.resize(w);
  Tk_ = nTk;
  Tv_ = nTv;
  T_ -= rt;
}

void KvCache::KeptPositions(std::vector<int32_t>& pos, std::vector<float>& score) const {
  const int64_t n = KeptTokens();
  pos.assign(S_ * size_t(n), 0);
  score.assign(S_ * size_t(n), 0.0f);
  for (size_t s = 0; s < S_; ++s) {
    size_t w = 0;
    for (size_t t = 0; t < size_t(T_); ++t) {
      const bool live = !evicting() || ev_.live.empty() || ev_.live[s][t];
      if (!live) continue;
      pos[s * size_t(n) + w] = evicting() && !ev_.pos.empty() ? ev_.pos[t] : static_cast<int32_t>(t);
      score[s * size_t(n) + w] = evicting() && !ev_.score.empty() ? ev_.score[s][t] : 0.0f;
      ++w;
    }
  }
}

void KvCache::SetEvictState(const EvictState& st) {
  IZ_CHECK(evicting(), CorruptData, "saved KV cache holds eviction state but its options have no eviction");
  const size_t T = size_t(T_);
  IZ_CHECK(st.pos.size() == T, CorruptData, "saved KV cache: eviction positions do not match the token slots");
  IZ_CHECK(st.live.size() == S_ && st.score.size() == S_ && st.tau.size() == S_, CorruptData,
           "saved KV cache: eviction state has the wrong number of streams");
  IZ_CHECK(st.next_pos >= int64_t(T) && st.next_pos <= int64_t(INT32_MAX), CorruptData,
           "saved KV cache: bad next eviction position");
  for (size_t t = 0; t < T; ++t)
    IZ_CHECK(st.pos[t] >= 0 && st.pos[t] < st.next_pos && (t == 0 || st.pos[t] > st.pos[t - 1]), CorruptData,
             "saved KV cache: eviction positions are not ascending in range");
  int64_t kept = -1;
  for (size_t s = 0; s < S_; ++s) {
    IZ_CHECK(st.live[s].size() == T && st.score[s].size() == T, CorruptData,
             "saved KV cache: eviction flags or scores do not match the token slots");
    int64_t n = 0;
    for (size_t t = 0; t < T; ++t) {
      IZ_CHECK(st.live[s][t] <= 1, CorruptData, "saved KV cache: bad eviction flag");
      IZ_CHECK(std::isfinite(st.score[s][t]) && st.score[s][t] >= 0, CorruptData,
               "saved KV cache: an eviction score is negative, NaN or Infinity");
      n += st.live[s][t];
    }
    IZ_CHECK(kept < 0 || n == kept, CorruptData, "saved KV cache: streams keep different token counts");
    kept = n;
    IZ_CHECK(std::isnan(st.tau[s]) || std::isfinite(st.tau[s]), CorruptData, "saved KV cache: bad merge threshold");
  }
  IZ_CHECK(T == 0 || kept >= 1, CorruptData, "saved KV cache: no stream keeps a token");
  IZ_CHECK(st.prefill >= -1 && st.prefill <= st.next_pos, CorruptData, "saved KV cache: bad prefill length");
  if (st.prefill >= 0) {
    IZ_CHECK(st.budget >= 1 && st.recent >= 0 && st.recent <= st.budget, CorruptData,
             "saved KV cache: bad eviction budget");
    IZ_CHECK(std::isfinite(st.density) && st.density >= 0, CorruptData, "saved KV cache: bad attention density");
  } else {
    IZ_CHECK(st.budget == 0 && st.recent == 0 && !st.allocated, CorruptData,
             "saved KV cache: eviction budget set before any attention");
  }
  ev_ = st;
}

}  // namespace iz::kv
