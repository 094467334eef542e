#include "native/core/kvquant/cache.h"
#include "native/core/kvquant/kivi_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "native/core/parallel.h"
#include "native/shared/error.h"
#include "native/shared/kvquant/encode.h"

namespace iz::kv {

namespace {

std::string Str(double v) {
  std::string s = std::to_string(v);
  return s;
}

uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t CeilDiv(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

// Flags the `count` tokens with the lowest (or highest) score; ties go to the earlier token.
std::vector<uint8_t> SelectByScore(const float* score, size_t n, size_t count, bool highest) {
  std::vector<uint8_t> flags(n, 0);
  if (count == 0) return flags;
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), size_t(0));
  auto less = [&](size_t a, size_t b) {
    float sa = score[a], sb = score[b];
    if (sa != sb) return highest ? sa > sb : sa < sb;
    return a < b;
  };
  std::nth_element(idx.begin(), idx.begin() + static_cast<ptrdiff_t>(count - 1), idx.end(), less);
  for (size_t i = 0; i < count; ++i) flags[idx[i]] = 1;
  return flags;
}

}  // namespace

void ValidateOptions(const CacheOptions& o) {
  IZ_CHECK(o.batch >= 1 && o.batch <= (1 << 20), InvalidArgument, "batch must be in [1, 2^20]");
  IZ_CHECK(o.heads >= 1 && o.heads <= 4096, InvalidArgument, "heads must be in [1, 4096]");
  IZ_CHECK(int64_t(o.batch) * o.heads <= (int64_t(1) << 20), InvalidArgument,
           "batch x heads must be at most 2^20 streams");
  IZ_CHECK(o.head_dim >= 8 && o.head_dim <= kMaxHeadDim && o.head_dim % 8 == 0, InvalidArgument,
           "headDim must be a multiple of 8 in [8, 256], got " + std::to_string(o.head_dim));
  IZ_CHECK(o.group >= 1 && o.group <= 4096, InvalidArgument,
           "groupSize must be in [1, 4096], got " + std::to_string(o.group));
  IZ_CHECK(
      o.channel_group >= 1 && o.head_dim % o.channel_group == 0, InvalidArgument,
      "channelGroupSize " + std::to_string(o.channel_group) + " does not divide headDim " + std::to_string(o.head_dim));
  IZ_CHECK(o.channel_group % 2 == 0 || o.scheme == kFp8, InvalidArgument, "channelGroupSize must be even");
  IZ_CHECK(
      o.window >= 0 && o.window <= (1 << 20) && o.window % o.group == 0, InvalidArgument,
      "residualLength " + std::to_string(o.window) + " must be a multiple of groupSize " + std::to_string(o.group));
  switch (o.scheme) {
    case kKivi:
      IZ_CHECK(o.bits == 2 || o.bits == 4, InvalidArgument, "kivi supports bits 2 or 4, got " + std::to_string(o.bits));
      break;
    case kZipCache:
      IZ_CHECK(
          o.bits == 4, InvalidArgument,
          "zipcache stores salient tokens at 4 bits and the rest at 2; bits must be 4, got " + std::to_string(o.bits));
      IZ_CHECK(o.low_fraction >= 0 && o.low_fraction <= 1, InvalidArgument,
               "lowFraction must be in [0, 1], got " + Str(o.low_fraction));
      IZ_CHECK(o.probe_fraction > 0 && o.probe_fraction <= 0.5, InvalidArgument,
               "probeFraction must be in (0, 0.5], got " + Str(o.probe_fraction));
      break;
    case kVidKV:
      IZ_CHECK(o.bits == 2, InvalidArgument,
               "vidkv keeps salient values and anomalous key channels at 2 bits; bits must be 2, got " +
                   std::to_string(o.bits));
      IZ_CHECK(o.anomalous_fraction >= 0 && o.anomalous_fraction <= 1, InvalidArgument,
               "anomalousFraction must be in [0, 1], got " + Str(o.anomalous_fraction));
      IZ_CHECK(o.salient_fraction >= 0 && o.salient_fraction <= 1, InvalidArgument,
               "salientFraction must be in [0, 1], got " + Str(o.salient_fraction));
      IZ_CHECK(o.probe_fraction > 0 && o.probe_fraction <= 0.5, InvalidArgument,
               "probeFraction must be in (0, 0.5], got " + Str(o.probe_fraction));
      break;
    case kFp8:
      IZ_CHECK(o.bits == 8, InvalidArgument, "fp8 stores 8 bits, got bits " + std::to_string(o.bits));
      IZ_CHECK(o.fp8_format == kE4M3 || o.fp8_format == kE5M2, InvalidArgument, "fp8 format must be e4m3 or e5m2");
      break;
    default:
      Fail(ErrorCode::InvalidArgument, "unknown scheme");
  }
  if (o.evict_method == kEvictNone) return;
  IZ_CHECK(o.evict_method == kEvictH2O || o.evict_method == kEvictD2O, InvalidArgument,
           "eviction method must be h2o or d2o");
  auto frac = [](double x) { return x > 0 && x < 1; };
  auto integral = [](double x) { return std::isfinite(x) && x == std::floor(x); };
  IZ_CHECK(std::isfinite(o.evict_budget) && o.evict_budget > 0 && (frac(o.evict_budget) || integral(o.evict_budget)) &&
               o.evict_budget <= double(int64_t(1) << 40),
           InvalidArgument,
           "eviction.budget must be a fraction in (0, 1) or a whole token count >= 1, got " + Str(o.evict_budget));
  IZ_CHECK(std::isfinite(o.evict_recent) && o.evict_recent >= 0 && (frac(o.evict_recent) || integral(o.evict_recent)) &&
               o.evict_recent <= double(int64_t(1) << 40),
           InvalidArgument,
           "eviction.recent must be a fraction in (0, 1) or a whole token count >= 0, got " + Str(o.evict_recent));
  IZ_CHECK(frac(o.evict_budget) || frac(o.evict_recent) || o.evict_recent <= o.evict_budget, InvalidArgument,
           "eviction.recent (" + Str(o.evict_recent) + " tokens) exceeds eviction.budget (" + Str(o.evict_budget) +
               " tokens)");
  IZ_CHECK(o.evict_granularity == 0 || o.evict_granularity == 1, InvalidArgument,
           "eviction.granularity must be 'head' or 'layer'");
  IZ_CHECK(o.evict_beta >= 0 && o.evict_beta <= 1, InvalidArgument,
           "eviction.emaBeta must be in [0, 1], got " + Str(o.evict_beta));
  IZ_CHECK(o.evict_method != kEvictD2O || o.scheme != kVidKV, Unsupported,
           "d2o merges re-encode kept tokens, which vidkv's spectrum-coded key blocks do not support: use h2o with "
           "vidkv, or d2o with kivi, zipcache or fp8");
}

KvCache::KvCache(const CacheOptions& options) : opt_(options) {
  ValidateOptions(opt_);
  IZ_CHECK(opt_.device == Device::Cpu || CudaCompiled(), NoDevice, "this inferzip build has no CUDA backend");
  S_ = size_t(opt_.batch) * size_t(opt_.heads);
  L_.scheme = opt_.scheme;
  L_.bits = opt_.bits;
  L_.fp8_format = opt_.fp8_format;
  L_.d = opt_.head_dim;
  L_.G = opt_.group;
  L_.Cg = opt_.channel_group;
  L_.n_anom = 0;
  L_.n_norm = 0;
  for (int c = 0; c < kMaxHeadDim; ++c) L_.chan_order[c] = static_cast<int16_t>(c);
  if (opt_.scheme == kKivi) {
    L_.kblock_bytes = KiviKeyParamOffset(L_) + 4u * L_.d;
  } else if (opt_.scheme == kVidKV) {
    L_.n_anom = static_cast<int>(std::lround(opt_.anomalous_fraction * L_.d));
    L_.n_norm = L_.d - L_.n_anom;
    L_.kblock_bytes = VidTokScaleOffset(L_) + 4u * L_.G;
    L_.vblock_bytes = VidValueRefOffset(L_) + 2u;  // u8 scale code per channel + f16 reference
    L_.vsal_unit_bits = 2u * L_.d + 32u;           // 2-bit codes + one (scale, min) pair
    int n = L_.n_norm;
    fwd_.resize(size_t(n) * n);
    basis_.resize(size_t(n) * n);
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < n; ++i) {
        fwd_[size_t(j) * n + i] = SpecForward(j, i, n);
        basis_[size_t(j) * n + i] = SpecForward(j, i, n) * SpecWeight(j, n);
      }
  }
  if (on_cuda()) {
    EnsureDevice();  // uploads the vidkv spectrum table the kernels read
    for (auto& c : changed_) c.resize(S_);
  }
  units_.assign(S_, 0);
  rk_.resize(S_);
  rv_.resize(S_);
  rscore_.resize(S_);
  rcount_.resize(S_);
  if (evicting()) {
    ev_.live.resize(S_);
    ev_.score.resize(S_);
    ev_.tau.assign(S_, NAN);
  }
}

StreamView KvCache::View(size_t s) const {
  StreamView v{};
  for (int p = 0; p < kNumPlanes; ++p)
    v.p[p] = planes_[p].mem ? planes_[p].mem->as<uint8_t>() + s * planes_[p].cap : nullptr;
  return v;
}

size_t KvCache::PlaneNeed(int p, int64_t tk, int64_t tv, uint64_t units) const {
  const uint64_t d = L_.d, G = L_.G, groups = d / L_.Cg;
  switch (L_.scheme) {
    case kKivi:
      if (p == KBLK) return CeilDiv(tk, G) * L_.kblock_bytes;
      if (p == VCODE) return Words(uint64_t(tv) * d * L_.bits) * 4ull;
      if (p == VPARAM) return uint64_t(tv) * groups * 4;
      return 0;
    case kFp8:
      if (p == KCODE) return Pad4(uint64_t(tk) * d);
      if (p == KPARAM) return CeilDiv(tk, G) * 4;
      if (p == VCODE) return Pad4(uint64_t(tv) * d);
      if (p == VPARAM) return CeilDiv(tv, G) * 4;
      return 0;
    case kZipCache:
      if (p == KPARAM || p == VPARAM) return uint64_t(tk) * groups * 4;
      if (p == INDEX) return CeilDiv(tk, 32) * 8;
      if (p == KCODE || p == VCODE) return Words(units * 2 * d) * 4ull;
      return 0;
    default:
      if (p == KBLK) return CeilDiv(tk, G) * L_.kblock_bytes;
      if (p == VBLK) return CeilDiv(tv, G) * L_.vblock_bytes;
      if (p == VCODE)
        return Pad4(CeilDiv((uint64_t(tv) - std::min<uint64_t>(units, uint64_t(tv))) * d, 5));  // non-salient trits
      if (p == INDEX) return CeilDiv(tk, 32) * 8;
      if (p == VSAL) return Words(units * L_.vsal_unit_bits) * 4ull;
      return 0;
  }
}

void KvCache::Ensure(int p, size_t need) {
  PlaneBuf& pb = planes_[p];
  if (need <= pb.cap && pb.mem) return;
  if (need == 0) return;
  size_t cap = std::max<size_t>({need, pb.cap * 2, 256});
  cap = (cap + 63) / 64 * 64;
  IZ_CHECK(cap <= kMaxAllocationBytes / S_, OutOfMemory, "the quantized KV cache would exceed the allocation limit");
  MemoryPtr mem = DeviceMemory::Allocate(Device::Cpu, cap * S_, true);
  if (pb.mem) {
    for (size_t s = 0; s < S_; ++s)
      std::memcpy(mem->as<uint8_t>() + s * cap, pb.mem->as<uint8_t>() + s * pb.cap, pb.cap);
  }
  pb.mem = mem;
  pb.cap = cap;
}

void KvCache::ProbeScores(const AppendInput& in) {
  const int64_t n = in.n;
  const int d = L_.d;
  const int gq = in.queries ? in.q_heads / opt_.heads : 1;
  // Probe queries: the last probe_fraction of the new tokens plus as many seeded random earlier ones.
  int64_t nlast = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(opt_.probe_fraction * double(n))));
  nlast = std::min(nlast, n);
  std::vector<int64_t> probes;
  for (int64_t i = n - nlast; i < n; ++i) probes.push_back(i);
  int64_t earlier = n - nlast;
  int64_t nrand = std::min<int64_t>(earlier, static_cast<int64_t>(std::ceil(opt_.probe_fraction * double(n))));
  if (nrand > 0) {
    uint64_t state = opt_.seed ^ (uint64_t(T_) * 0x2545F4914F6CDD1Dull);
    std::vector<int64_t> pool(static_cast<size_t>(earlier));
    std::iota(pool.begin(), pool.end(), int64_t(0));
    for (int64_t i = 0; i < nrand; ++i) {  // partial Fisher-Yates
      int64_t j = i + static_cast<int64_t>(SplitMix(state) % uint64_t(earlier - i));
      std::swap(pool[size_t(i)], pool[size_t(j)]);
      probes.push_back(pool[size_t(i)]);
    }
  }
  const float inv_sqrt_d = 1.0f / std::sqrt(float(d));
  ParallelFor(S_, 1, [&](size_t s0, size_t s1) {
    std::vector<float> p, lg;
    for (size_t s = s0; s < s1; ++s) {
      const size_t b = s / opt_.heads, h = s % opt_.heads;
      const std::vector<float>& rows = rk_[s];
      const int64_t m = static_cast<int64_t>(rows.size() / d);  // residual tokens incl. the new ones
      const int64_t first_new = m - n;
      for (int64_t pi : probes) {
        const int64_t qi = first_new + pi;  // residual index of the probe token
        const int64_t visible = qi + 1;
        p.assign(size_t(visible), 0.0f);
        for (int r = 0; r < gq; ++r) {
          const float* q =
              in.queries ? in.queries + ((b * in.q_heads + h * gq + r) * uint64_t(n) + pi) * d : rows.data() + qi * d;
          float mx = -INFINITY;
          lg.resize(static_cast<size_t>(visible));
          for (int64_t j = 0; j < visible; ++j) {
            lg[size_t(j)] = cpu::Dot(q, rows.data() + size_t(j) * d, d) * inv_sqrt_d;
            mx = std::max(mx, lg[size_t(j)]);
          }
          const float sum = cpu::ExpShifted(lg.data(), static_cast<int>(visible), mx, lg.data());
          const float w = 1.0f / (sum * float(gq));
          for (int64_t j = 0; j < visible; ++j) p[size_t(j)] += lg[size_t(j)] * w;
        }
        for (int64_t j = 0; j < visible; ++j) {
          rscore_[s][size_t(j)] += p[size_t(j)];
          rcount_[s][size_t(j)] += 1.0f;
        }
      }
    }
  });
}

void KvCache::Append(const AppendInput& in) {
  IZ_CHECK(!finalized_, InvalidArgument,
           "this quantized KV is final (made by quantizeKV); use a QuantizedKVCache to append");
  IZ_CHECK(in.n >= 0 && in.k && in.v, InvalidArgument, "append needs keys and values");
  if (in.n == 0) return;
  IZ_CHECK(!in.queries || (in.q_heads >= opt_.heads && in.q_heads % opt_.heads == 0), ShapeMismatch,
           "query heads must be a multiple of the KV heads");
  const int d = L_.d;
  const size_t n = static_cast<size_t>(in.n);
  // Validate everything before touching state, so a rejected append leaves the cache as it was.
  for (size_t i = 0; i < S_ * n * d; ++i) {
    if (!std::isfinite(in.k[i]) || !std::isfinite(in.v[i])) {
      size_t s = i / (n * d), t = (i / d) % n;
      Fail(ErrorCode::InvalidArgument, std::string(std::isfinite(in.k[i]) ? "V" : "K") +
                                           " holds NaN or Infinity at batch " + std::to_string(s / opt_.heads) +
                                           ", head " + std::to_string(s % opt_.heads) + ", token " + std::to_string(t) +
                                           ": quantization needs finite values");
    }
  }
  if (in.scores)
    for (size_t i = 0; i < S_ * n; ++i)
      IZ_CHECK(std::isfinite(in.scores[i]), InvalidArgument, "scores hold NaN or Infinity");
  if (in.queries)
    for (size_t i = 0; i < size_t(opt_.batch) * in.q_heads * n * d; ++i)
      IZ_CHECK(std::isfinite(in.queries[i]), InvalidArgument, "queries hold NaN or Infinity");
  if (evicting()) EvictAppend(int64_t(n));  // d2o: the round skipped at the prefill, then the new slots
  for (size_t s = 0; s < S_; ++s) {
    rk_[s].insert(rk_[s].end(), in.k + s * n * d, in.k + (s + 1) * n * d);
    rv_[s].insert(rv_[s].end(), in.v + s * n * d, in.v + (s + 1) * n * d);
  }
  const bool salience = opt_.scheme == kZipCache || opt_.scheme == kVidKV;
  if (salience) {
    for (size_t s = 0; s < S_; ++s) {
      rscore_[s].resize(rscore_[s].size() + n, 0.0f);
      rcount_[s].resize(rcount_[s].size() + n, 0.0f);
    }
    if (in.scores) {
      for (size_t s = 0; s < S_; ++s)
        for (size_t i = 0; i < n; ++i) {
          rscore_[s][rscore_[s].size() - n + i] = in.scores[s * n + i];
          rcount_[s][rcount_[s].size() - n + i] = 1.0f;
        }
    } else {
      ProbeScores(in);
    }
  }
  T_ += in.n;
  const int64_t block = std::max(opt_.window, opt_.group);
  int64_t nk = (T_ - Tk_) / block * block;
  if (opt_.scheme == kKivi) {
    int64_t nv = std::max<int64_t>(0, (T_ - Tv_) - opt_.window);
    Flush(nk, nv, false);
  } else {
    Flush(nk, nk, false);
  }
}

void KvCache::Finalize() {
  if (finalized_) return;
  Flush(T_ - Tk_, T_ - Tv_, true);
  finalized_ = true;
}

void KvCache::Flush(int64_t nk, int64_t nv, bool) {
  if (nk == 0 && nv == 0) return;
  std::vector<std::vector<size_t>> before;
  if (on_cuda())
    for (int p = 0; p < kNumPlanes; ++p) before.push_back(UsedBytes(p));
  if (opt_.scheme == kKivi) {
    if (on_cuda())
      FlushKiviCuda(nk, nv);
    else
      FlushKivi(nk, nv);
  } else if (opt_.scheme == kFp8 && on_cuda()) {
    FlushFp8Cuda(nk);
  } else {
    FlushJoint(nk);
  }
  const bool host_encoded = on_cuda() && opt_.scheme != kKivi && opt_.scheme != kFp8;
  const size_t d = L_.d;
  for (size_t s = 0; s < S_; ++s) {
    rk_[s].erase(rk_[s].begin(), rk_[s].begin() + static_cast<ptrdiff_t>(size_t(nk) * d));
    rv_[s].erase(rv_[s].begin(), rv_[s].begin() + static_cast<ptrdiff_t>(size_t(nv) * d));
    if (!rscore_[s].empty()) {
      rscore_[s].erase(rscore_[s].begin(), rscore_[s].begin() + nk);
      rcount_[s].erase(rcount_[s].begin(), rcount_[s].begin() + nk);
    }
  }
  Tk_ += nk;
  Tv_ += nv;
  if (host_encoded) {  // encoded on the host: mirror the new bytes (ranges use the new counts)
    EnsureDevice();
    for (int p = 0; p < kNumPlanes; ++p) SyncRange(p, before[size_t(p)], true);
  }
}

void KvCache::FlushKivi(int64_t nk, int64_t nv) {
  for (int p : {KBLK, VCODE, VPARAM}) Ensure(p, PlaneNeed(p, Tk_ + nk, Tv_ + nv, 0));
  const int d = L_.d, G = L_.G, b = L_.bits, groups = d / L_.Cg;
  const int64_t nblocks = static_cast<int64_t>(CeilDiv(uint64_t(nk), uint64_t(G)));
  // Keys: whole blocks are independent (block bytes are word aligned).
  ParallelFor(S_ * size_t(nblocks), 1, [&](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) {
      size_t s = i / size_t(nblocks), blk = i % size_t(nblocks);
      int ntok = static_cast<int>(std::min<int64_t>(G, nk - int64_t(blk) * G));
      uint8_t* out =
          planes_[KBLK].mem->as<uint8_t>() + s * planes_[KBLK].cap + (uint64_t(Tk_) / G + blk) * L_.kblock_bytes;
      EncodeKiviKeyBlock(L_, rk_[s].data() + blk * G * d, d, ntok, out);
    }
  });
  // Values: per stream (tokens of tiny heads can share a word).
  if (nv == 0) return;  // (the value planes may not exist yet)
  ParallelFor(S_, 1, [&](size_t s0, size_t s1) {
    for (size_t s = s0; s < s1; ++s) {
      uint32_t* codes = reinterpret_cast<uint32_t*>(planes_[VCODE].mem->as<uint8_t>() + s * planes_[VCODE].cap);
      uint16_t* params = reinterpret_cast<uint16_t*>(planes_[VPARAM].mem->as<uint8_t>() + s * planes_[VPARAM].cap);
      for (int64_t i = 0; i < nv; ++i) {
        uint64_t t = uint64_t(Tv_ + i);
        EncodeTokenGroups(rv_[s].data() + i * d, d, L_.Cg, b, codes, t * d * b, params + t * 2 * groups);
      }
    }
  });
}

void KvCache::ChooseAnomalous(int64_t n) {
  const int d = L_.d;
  std::vector<float> lo(d, INFINITY), hi(d, -INFINITY);
  for (size_t s = 0; s < S_; ++s)
    for (int64_t t = 0; t < n; ++t)
      for (int c = 0; c < d; ++c) {
        float x = rk_[s][size_t(t) * d + c];
        lo[c] = std::min(lo[c], x);
        hi[c] = std::max(hi[c], x);
      }
  std::vector<float> range(d);
  for (int c = 0; c < d; ++c) range[c] = hi[c] - lo[c];
  std::vector<uint8_t> anom = SelectByScore(range.data(), size_t(d), size_t(L_.n_anom), true);
  int a = 0, r = L_.n_anom;
  for (int c = 0; c < d; ++c) L_.chan_order[anom[c] ? a++ : r++] = static_cast<int16_t>(c);
  anom_chosen_ = true;
}

void KvCache::FlushJoint(int64_t n) {
  if (n == 0) return;
  const int d = L_.d, G = L_.G, groups = d / L_.Cg;
  const int64_t T0 = Tk_;
  const int64_t nblocks = static_cast<int64_t>(CeilDiv(uint64_t(n), uint64_t(G)));
  if (L_.scheme == kFp8) {
    for (int p : {KCODE, KPARAM, VCODE, VPARAM}) Ensure(p, PlaneNeed(p, T0 + n, T0 + n, 0));
    ParallelFor(S_ * size_t(nblocks), 1, [&](size_t i0, size_t i1) {
      for (size_t i = i0; i < i1; ++i) {
        size_t s = i / size_t(nblocks), blk = i % size_t(nblocks);
        int ntok = static_cast<int>(std::min<int64_t>(G, n - int64_t(blk) * G));
        uint64_t t0 = uint64_t(T0) + blk * G;
        for (int kv = 0; kv < 2; ++kv) {
          const PlaneBuf& pc = planes_[kv ? VCODE : KCODE];
          const PlaneBuf& pp = planes_[kv ? VPARAM : KPARAM];
          const float* rows = (kv ? rv_[s] : rk_[s]).data() + blk * G * d;
          EncodeFp8Block(L_, rows, d, ntok, pc.mem->as<uint8_t>() + s * pc.cap + t0 * d,
                         reinterpret_cast<float*>(pp.mem->as<uint8_t>() + s * pp.cap) + t0 / G);
        }
      }
    });
    return;
  }
  if (L_.scheme == kVidKV && !anom_chosen_) ChooseAnomalous(n);
  // Token precision per stream from the normalized attention score (received / causal count).
  const bool zip = L_.scheme == kZipCache;
  const double frac = zip ? opt_.low_fraction : opt_.salient_fraction;
  const size_t count = static_cast<size_t>(std::llround(frac * double(n)));
  std::vector<std::vector<uint8_t>> hi(S_);
  std::vector<uint64_t> start_units(units_);
  // The index plane must exist before it is written; size it first.
  Ensure(INDEX, PlaneNeed(INDEX, T0 + n, T0 + n, 0));
  for (size_t s = 0; s < S_; ++s) {
    std::vector<float> norm(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      float cnt = rcount_[s][size_t(i)];
      norm[size_t(i)] = cnt > 0 ? rscore_[s][size_t(i)] / cnt : 0.0f;
    }
    std::vector<uint8_t> sel = SelectByScore(norm.data(), size_t(n), count, !zip);
    hi[s].resize(size_t(n));
    uint32_t* index = reinterpret_cast<uint32_t*>(planes_[INDEX].mem->as<uint8_t>() + s * planes_[INDEX].cap);
    for (int64_t i = 0; i < n; ++i) {
      // zipcache: selected = least salient -> 2 bits, others 4 bits. vidkv: selected = salient.
      uint8_t h = zip ? uint8_t(!sel[size_t(i)]) : sel[size_t(i)];
      hi[s][size_t(i)] = h;
      uint64_t t = uint64_t(T0 + i);
      if ((t & 31u) == 0) {
        IZ_CHECK(units_[s] <= 0xffffffffull, OutOfMemory, "the quantized KV cache exceeds 2^32 pool units per stream");
        index[(t >> 5) * 2] = static_cast<uint32_t>(units_[s]);
        index[(t >> 5) * 2 + 1] = 0;
      }
      if (h) index[(t >> 5) * 2 + 1] |= 1u << (t & 31u);
      units_[s] += zip ? (h ? 2 : 1) : (h ? 1 : 0);
    }
  }
  for (int p = 0; p < kNumPlanes; ++p) {
    if (p == INDEX) continue;
    size_t need = 0;  // per stream: the pools grow with the salient count, vidkv's trits shrink
    for (size_t s = 0; s < S_; ++s) need = std::max(need, PlaneNeed(p, T0 + n, T0 + n, units_[s]));
    Ensure(p, need);
  }
  auto plane = [&](int p, size_t s) { return planes_[p].mem->as<uint8_t>() + s * planes_[p].cap; };
  ParallelFor(S_, 1, [&](size_t s0, size_t s1) {
    std::vector<float> spec(static_cast<size_t>(2 * std::max(1, L_.n_norm)));
    for (size_t s = s0; s < s1; ++s) {
      if (zip) {
        uint64_t unit = start_units[s];
        for (int64_t i = 0; i < n; ++i) {
          uint64_t t = uint64_t(T0 + i);
          int bits = hi[s][size_t(i)] ? 4 : 2;
          EncodeTokenGroups(rk_[s].data() + i * d, d, L_.Cg, bits, reinterpret_cast<uint32_t*>(plane(KCODE, s)),
                            unit * 2 * d, reinterpret_cast<uint16_t*>(plane(KPARAM, s)) + t * 2 * groups);
          EncodeTokenGroups(rv_[s].data() + i * d, d, L_.Cg, bits, reinterpret_cast<uint32_t*>(plane(VCODE, s)),
                            unit * 2 * d, reinterpret_cast<uint16_t*>(plane(VPARAM, s)) + t * 2 * groups);
          unit += bits == 4 ? 2 : 1;
        }
        continue;
      }
      uint64_t rank = uint64_t(T0) - start_units[s];  // non-salient tokens stored so far
      for (int64_t blk = 0; blk < nblocks; ++blk) {
        int ntok = static_cast<int>(std::min<int64_t>(G, n - blk * G));
        uint64_t bidx = uint64_t(T0) / G + uint64_t(blk);
        EncodeVidKeyBlock(L_, rk_[s].data() + blk * G * d, d, ntok, fwd_.data(), spec.data(),
                          plane(KBLK, s) + bidx * L_.kblock_bytes);
        rank += EncodeVidValueBlock(L_, rv_[s].data() + blk * G * d, d, ntok, hi[s].data() + blk * G,
                                    plane(VBLK, s) + bidx * L_.vblock_bytes, plane(VCODE, s), rank);
      }
      uint64_t unit = start_units[s];
      for (int64_t i = 0; i < n; ++i) {
        if (!hi[s][size_t(i)]) continue;
        EncodeVidSalientToken(L_, rv_[s].data() + i * d, reinterpret_cast<uint32_t*>(plane(VSAL, s)), unit++);
      }
    }
  });
}

void KvCache::Dequantize(float* k, float* v) const {
  if (!evicting() || KeptTokens() == T_) return DequantizeSlots(k, v);
  // Every slot, then each stream's kept ones in order.
  const size_t d = size_t(L_.d), T = size_t(T_), n = size_t(KeptTokens());
  std::vector<float> ka(S_ * T * d), va(S_ * T * d);
  DequantizeSlots(ka.data(), va.data());
  for (size_t s = 0; s < S_; ++s) {
    size_t w = 0;
    for (size_t t = 0; t < T; ++t) {
      if (!ev_.live[s][t]) continue;
      std::memcpy(k + (s * n + w) * d, ka.data() + (s * T + t) * d, sizeof(float) * d);
      std::memcpy(v + (s * n + w) * d, va.data() + (s * T + t) * d, sizeof(float) * d);
      ++w;
    }
  }
}

void KvCache::DequantizeSlots(float* k, float* v) const {
  if (on_cuda()) return DequantizeCuda(k, v);
  const int d = L_.d;
  const size_t T = size_t(T_);
  ParallelFor(S_, 1, [&](size_t s0, size_t s1) {
    for (size_t s = s0; s < s1; ++s) {
      StreamView view = View(s);
      float* ks = k + s * T * d;
      float* vs = v + s * T * d;
      size_t t_fast = 0;
      if (L_.scheme == kKivi) {
        // Whole key groups: scale and min once per channel and group, then the codes.
        const size_t G = size_t(L_.G), full = size_t(Tk_) / G;
        for (size_t blk = 0; blk < full; ++blk) {
          const uint8_t* block = view.p[KBLK] + blk * L_.kblock_bytes;
          const uint32_t* codes = reinterpret_cast<const uint32_t*>(block);
          const uint16_t* par = reinterpret_cast<const uint16_t*>(block + KiviKeyParamOffset(L_));
          for (int c = 0; c < d; ++c) {
            const Affine a{F16ToF32(par[2 * c]), F16ToF32(par[2 * c + 1])};
            for (size_t j = 0; j < G; ++j)
              ks[(blk * G + j) * d + c] =
                  DequantizeUniform(ReadCode(codes, (uint64_t(c) * G + j) * L_.bits, L_.bits), a);
          }
        }
        t_fast = full * G;
        const uint32_t* vcodes = reinterpret_cast<const uint32_t*>(view.p[VCODE]);
        const uint16_t* vpar = reinterpret_cast<const uint16_t*>(view.p[VPARAM]);
        const int groups = d / L_.Cg;
        for (size_t t = 0; t < size_t(Tv_); ++t)
          for (int g = 0; g < groups; ++g) {
            const Affine a{F16ToF32(vpar[(t * groups + g) * 2]), F16ToF32(vpar[(t * groups + g) * 2 + 1])};
            for (int c = g * L_.Cg; c < (g + 1) * L_.Cg; ++c)
              vs[t * d + c] = DequantizeUniform(ReadCode(vcodes, (uint64_t(t) * d + c) * L_.bits, L_.bits), a);
          }
      }
      for (size_t t = 0; t < T; ++t) {
        if (int64_t(t) < Tk_) {
          if (t >= t_fast) DecodeKeyToken(L_, view, t, basis_.data(), ks + t * d);
        } else {
          std::memcpy(ks + t * d, rk_[s].data() + (t - size_t(Tk_)) * d, sizeof(float) * d);
        }
        if (L_.scheme == kKivi && int64_t(t) < Tv_) continue;
        if (int64_t(t) < Tv_) {
          DecodeValueToken(L_, view, t, vs + t * d);
        } else {
          std::memcpy(vs + t * d, rv_[s].data() + (t - size_t(Tv_)) * d, sizeof(float) * d);
        }
      }
    }
  });
}

CacheStats KvCache::Stats() const {
  CacheStats st;
  st.tokens = KeptTokens();
  st.slots = T_;
  st.quantized_keys = Tk_;
  st.quantized_values = Tv_;
  st.live_quantized_keys = double(Tk_);
  st.live_quantized_values = double(Tv_);
  if (evicting()) {
    // live slots among the quantized ones, averaged over streams (bits/element count only these)
    double lk = 0, lv = 0;
    for (size_t s = 0; s < S_; ++s)
      for (int64_t t = 0; t < T_; ++t)
        if (ev_.live[s][size_t(t)]) {
          lk += t < Tk_;
          lv += t < Tv_;
        }
    st.live_quantized_keys = lk / double(S_);
    st.live_quantized_values = lv / double(S_);
    st.eviction_bytes = uint64_t(T_) * 4 + S_ * (uint64_t(T_) * 5 + 4);  // i32 position, u8 flag + f32 score, tau
  }
  for (size_t s = 0; s < S_; ++s) {
    for (int p = 0; p < kNumPlanes; ++p) {
      uint64_t used = PlaneNeed(p, Tk_, Tv_, units_[s]);
      bool key = p == KBLK || p == KCODE || p == KPARAM;
      if (p == INDEX && L_.scheme == kZipCache) {
        st.packed_key_bytes += used / 2;
        st.packed_value_bytes += used - used / 2;
      } else if (key) {
        st.packed_key_bytes += used;
      } else {
        st.packed_value_bytes += used;
      }
    }
    st.residual_bytes += (rk_[s].size() + rv_[s].size()) * sizeof(float);
    st.capacity_bytes += (rk_[s].capacity() + rv_[s].capacity()) * sizeof(float);
  }
  if (L_.scheme == kVidKV && Tk_ > 0) st.packed_key_bytes += 2ull * L_.d;  // the layer's channel order
  for (int p = 0; p < kNumPlanes; ++p) st.capacity_bytes += planes_[p].cap * S_;
  return st;
}

KvCache::State KvCache::GetState() const {
  State st;
  st.tokens = T_;
  st.quantized_keys = Tk_;
  st.quantized_values = Tv_;
  st.finalized = finalized_;
  st.anomalous_chosen = anom_chosen_;
  st.chan_order.assign(L_.chan_order, L_.chan_order + L_.d);
  st.n_anom = L_.n_anom;
  st.units = units_;
  st.rk = rk_;
  st.rv = rv_;
  st.rscore = rscore_;
  st.rcount = rcount_;
  return st;
}

void KvCache::SetState(const State& st, const std::vector<std::vector<uint8_t>>& planes,
                       const std::vector<size_t>& strides) {
  const size_t d = size_t(L_.d);
  IZ_CHECK(st.tokens >= 0 && st.quantized_keys >= 0 && st.quantized_values >= 0 && st.quantized_keys <= st.tokens &&
               st.quantized_values <= st.tokens,
           CorruptData, "saved KV cache has inconsistent token counts");
  IZ_CHECK(opt_.scheme == kKivi || st.quantized_keys == st.quantized_values, CorruptData,
           "saved KV cache: key and value counts differ");
  IZ_CHECK(st.finalized || st.quantized_keys % L_.G == 0, CorruptData,
           "saved KV cache: quantized keys are not whole groups");
  IZ_CHECK(st.units.size() == S_ && st.rk.size() == S_ && st.rv.size() == S_ && st.rscore.size() == S_ &&
               st.rcount.size() == S_,
           CorruptData, "saved KV cache: per-stream state has the wrong number of streams");
  IZ_CHECK(st.n_anom == L_.n_anom && st.chan_order.size() == d, CorruptData,
           "saved KV cache: channel order does not match the options");
  std::vector<uint8_t> seen(d, 0);
  for (int16_t c : st.chan_order) {
    IZ_CHECK(c >= 0 && size_t(c) < d && !seen[size_t(c)], CorruptData,
             "saved KV cache: channel order is not a permutation");
    seen[size_t(c)] = 1;
  }
  const bool salience = opt_.scheme == kZipCache || opt_.scheme == kVidKV;
  for (size_t s = 0; s < S_; ++s) {
    IZ_CHECK(st.rk[s].size() == size_t(st.tokens - st.quantized_keys) * d &&
                 st.rv[s].size() == size_t(st.tokens - st.quantized_values) * d,
             CorruptData, "saved KV cache: residual window size does not match the token counts");
    size_t want = salience ? size_t(st.tokens - st.quantized_keys) : 0;
    IZ_CHECK(st.rscore[s].size() == want && st.rcount[s].size() == want, CorruptData,
             "saved KV cache: residual scores have the wrong size");
    for (float x : st.rk[s])
      IZ_CHECK(std::isfinite(x), CorruptData, "saved KV cache: residual keys hold NaN or Infinity");
    for (float x : st.rv[s])
      IZ_CHECK(std::isfinite(x), CorruptData, "saved KV cache: residual values hold NaN or Infinity");
  }
  IZ_CHECK(planes.size() == kNumPlanes && strides.size() == kNumPlanes, CorruptData,
           "saved KV cache: wrong number of planes");
  // Pool units must match the index: recount from the saved mask bits below after loading.
  for (int p = 0; p < kNumPlanes; ++p) {
    uint64_t need = 0;
    for (size_t s = 0; s < S_; ++s)
      need = std::max<uint64_t>(need, PlaneNeed(p, st.quantized_keys, st.quantized_values, st.units[s]));
    IZ_CHECK(strides[p] >= need, CorruptData,
             "saved KV cache: plane " + std::to_string(p) + " is smaller than its token counts need");
    IZ_CHECK(strides[p] % 4 == 0, CorruptData,
             "saved KV cache: plane " + std::to_string(p) + " stride is not a multiple of 4 bytes");
    IZ_CHECK(planes[p].size() == strides[p] * S_, CorruptData,
             "saved KV cache: plane " + std::to_string(p) + " has the wrong byte count");
  }
  // Codes and scales that decode to NaN or Infinity would reach attention as NaN (the section
  // crc32s only prove the bytes are what was saved, not that they were ever valid).
  {
    const uint64_t groups = uint64_t(d) / uint64_t(L_.Cg);
    auto f16_finite = [&](int p, uint64_t halves) {
      for (size_t s = 0; s < S_; ++s) {
        const uint8_t* base = planes[p].data() + s * strides[p];
        for (uint64_t i = 0; i < halves; ++i) {
          uint16_t h;
          std::memcpy(&h, base + 2 * i, 2);
          IZ_CHECK((h & 0x7C00u) != 0x7C00u, CorruptData,
                   "saved KV cache: plane " + std::to_string(p) + " holds an f16 scale that is NaN or Infinity");
        }
      }
    };
    auto f32_finite = [&](int p, uint64_t count) {
      for (size_t s = 0; s < S_; ++s) {
        const uint8_t* base = planes[p].data() + s * strides[p];
        for (uint64_t i = 0; i < count; ++i) {
          float x;
          std::memcpy(&x, base + 4 * i, 4);
          IZ_CHECK(std::isfinite(x), CorruptData,
                   "saved KV cache: plane " + std::to_string(p) + " holds a scale that is NaN or Infinity");
        }
      }
    };
    auto fp8_finite = [&](int p, uint64_t count) {
      const bool e4m3 = L_.fp8_format == kE4M3;
      for (size_t s = 0; s < S_; ++s) {
        const uint8_t* base = planes[p].data() + s * strides[p];
        for (uint64_t i = 0; i < count; ++i) {
          const uint8_t b = base[i];
          const bool bad = e4m3 ? (b & 0x7Fu) == 0x7Fu : (b & 0x7Cu) == 0x7Cu;
          IZ_CHECK(!bad, CorruptData,
                   "saved KV cache: plane " + std::to_string(p) + " holds an fp8 code that is NaN or Infinity");
        }
      }
    };
    const uint64_t tk = uint64_t(st.quantized_keys), tv = uint64_t(st.quantized_values), G = uint64_t(L_.G);
    if (opt_.scheme == kFp8) {
      fp8_finite(KCODE, tk * d);
      fp8_finite(VCODE, tv * d);
      f32_finite(KPARAM, CeilDiv(tk, G));
      f32_finite(VPARAM, CeilDiv(tv, G));
    } else if (opt_.scheme == kKivi) {
      f16_finite(VPARAM, tv * groups * 2);
      // each key block: codes, then (scale, min) f16 pairs per channel at KiviKeyParamOffset
      const uint64_t kblocks = CeilDiv(tk, G), offset = KiviKeyParamOffset(L_);
      for (size_t s = 0; s < S_; ++s) {
        for (uint64_t b = 0; b < kblocks; ++b) {
          const uint8_t* par = planes[KBLK].data() + s * strides[KBLK] + b * L_.kblock_bytes + offset;
          for (uint64_t i = 0; i < 2 * d; ++i) {
            uint16_t h;
            std::memcpy(&h, par + 2 * i, 2);
            IZ_CHECK((h & 0x7C00u) != 0x7C00u, CorruptData,
                     "saved KV cache: a key block holds an f16 scale that is NaN or Infinity");
          }
        }
      }
    } else if (opt_.scheme == kZipCache) {
      f16_finite(KPARAM, tk * groups * 2);
      f16_finite(VPARAM, tk * groups * 2);
    } else if (opt_.scheme == kVidKV) {
      // f16 fields embedded in blocks and pool units: key blocks' anomalous-channel (scale,
      // min) pairs and per-token spectrum scales, value blocks' scale reference, and each
      // salient value token's (scale, min) pair.
      auto half_at = [](const uint8_t* p) {
        uint16_t h;
        std::memcpy(&h, p, 2);
        return h;
      };
      auto finite_halves = [&](const uint8_t* p, uint64_t count, const char* what) {
        for (uint64_t i = 0; i < count; ++i)
          IZ_CHECK((half_at(p + 2 * i) & 0x7C00u) != 0x7C00u, CorruptData,
                   std::string("saved KV cache: ") + what + " holds an f16 scale that is NaN or Infinity");
      };
      const uint64_t kblocks = CeilDiv(tk, G), vblocks = CeilDiv(tv, G);
      for (size_t s = 0; s < S_; ++s) {
        const uint8_t* kb = planes[KBLK].data() + s * strides[KBLK];
        for (uint64_t b = 0; b < kblocks; ++b) {
          const uint8_t* blk = kb + b * L_.kblock_bytes;
          finite_halves(blk + VidAnomParamOffset(L_), 2 * uint64_t(L_.n_anom), "a key block (anomalous channels)");
          if (L_.n_norm > 0) finite_halves(blk + VidTokScaleOffset(L_), 2 * G, "a key block (spectrum scales)");
        }
        const uint8_t* vb = planes[VBLK].data() + s * strides[VBLK];
        for (uint64_t b = 0; b < vblocks; ++b)
          finite_halves(vb + b * L_.vblock_bytes + VidValueRefOffset(L_), 1, "a value block");
        const uint8_t* pool = planes[VSAL].data() + s * strides[VSAL];
        for (uint64_t u = 0; u < st.units[s]; ++u) {
          const uint64_t bit = u * L_.vsal_unit_bits + 2ull * L_.d;  // a multiple of 16: d is a multiple of 8
          finite_halves(pool + bit / 8, 2, "a salient value token");
        }
      }
    }
  }
  // Everything checked: adopt.
  T_ = st.tokens;
  Tk_ = st.quantized_keys;
  Tv_ = st.quantized_values;
  finalized_ = st.finalized;
  anom_chosen_ = st.anomalous_chosen;
  for (size_t c = 0; c < d; ++c) L_.chan_order[c] = st.chan_order[c];
  units_ = st.units;
  rk_ = st.rk;
  rv_ = st.rv;
  rscore_ = st.rscore;
  rcount_ = st.rcount;
  for (int p = 0; p < kNumPlanes; ++p) {
    planes_[p] = PlaneBuf{};
    if (strides[p] == 0) continue;
    planes_[p].mem = DeviceMemory::Allocate(Device::Cpu, strides[p] * S_, false);
    planes_[p].cap = strides[p];
    std::memcpy(planes_[p].mem->data(), planes[p].data(), planes[p].size());
  }
  if (on_cuda()) UploadAll();
  // Hostile index data must not point outside the pools: recompute units from the masks.
  if (salience && Tk_ > 0) {
    for (size_t s = 0; s < S_; ++s) {
      const uint32_t* index =
          reinterpret_cast<const uint32_t*>(planes_[INDEX].mem->as<uint8_t>() + s * planes_[INDEX].cap);
      uint64_t units = 0;
      for (int64_t t = 0; t < Tk_; ++t) {
        uint32_t mask = index[(t >> 5) * 2 + 1];
        if ((t & 31) == 0)
          IZ_CHECK(index[(t >> 5) * 2] == units, CorruptData, "saved KV cache: pool index is inconsistent");
        bool h = (mask >> (t & 31)) & 1u;
        units += opt_.scheme == kZipCache ? (h ? 2 : 1) : (h ? 1 : 0);
      }
      IZ_CHECK(units == units_[s], CorruptData, "saved KV cache: pool unit count does not match the index");
    }
  }
}

}  // namespace iz::kv
