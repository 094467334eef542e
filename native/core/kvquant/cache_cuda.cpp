// The CUDA side of KvCache: a device mirror of the packed planes, GPU encoding of KIVI and
// FP8 blocks (copied back so the host planes stay the source of truth for state and saving),
// and attention / dequantization by the kernels in cuda/kvquant/kernels.cu.
#include <algorithm>
#include <cstring>

#include "native/core/kvquant/cache.h"
#include "native/shared/error.h"
#if INFERZIP_WITH_CUDA
#include "cuda/kvquant/kernels.h"
#endif

namespace iz::kv {

std::vector<size_t> KvCache::UsedBytes(int p) const {
  std::vector<size_t> out(S_);
  for (size_t s = 0; s < S_; ++s) out[s] = PlaneNeed(p, Tk_, Tv_, units_[s]);
  return out;
}

void KvCache::MarkChanged(int p, size_t s, size_t from, size_t to) {
  if (on_cuda() && from < to) changed_[p][s].emplace_back(from, to);
}

#if INFERZIP_WITH_CUDA

namespace {

gpu::Planes DevicePlanes(const KvCache* self, const MemoryPtr* mem, const size_t* caps) {
  (void)self;
  gpu::Planes P{};
  for (int p = 0; p < kNumPlanes; ++p) {
    P.base[p] = mem[p] ? mem[p]->as<uint8_t>() : nullptr;
    P.stride[p] = caps[p];
  }
  return P;
}

// Rows [0, n) of each stream's residual, gathered into one device array [streams][n][d].
MemoryPtr UploadRows(const std::vector<std::vector<float>>& rows, int64_t n, int d) {
  const size_t per = size_t(n) * d * sizeof(float);
  MemoryPtr mem = DeviceMemory::Allocate(Device::Cuda, std::max<size_t>(1, per * rows.size()));
  for (size_t s = 0; s < rows.size(); ++s)
    if (per) mem->CopyFromHost(s * per, rows[s].data(), per);
  return mem;
}

}  // namespace

void KvCache::EnsureDevice() {
  DeviceScope scope(opt_.device_index);  // allocations and launches go to the cache's device
  for (int p = 0; p < kNumPlanes; ++p) {
    PlaneBuf& host = planes_[p];
    PlaneBuf& dev = dev_[p];
    if (!host.mem || dev.cap == host.cap) continue;
    MemoryPtr mem = DeviceMemory::Allocate(Device::Cuda, host.cap * S_, true);
    if (dev.mem)
      for (size_t s = 0; s < S_; ++s) mem->CopyFrom(s * host.cap, *dev.mem, s * dev.cap, dev.cap);
    dev.mem = mem;
    dev.cap = host.cap;
  }
  if (!basis_.empty() && !dev_basis_) {
    dev_basis_ = DeviceMemory::Allocate(Device::Cuda, basis_.size() * sizeof(float));
    dev_basis_->CopyFromHost(0, basis_.data(), basis_.size() * sizeof(float));
  }
}

// Copies bytes [start of the last word old_used covers, now used) of every stream between the
// host planes and the device mirror. That last word moves too: used sizes are rounded up to
// whole words, so it may be only partly filled, and new codes are OR-ed into it (a bitstream's
// boundary word, a 32-token pool mask).
void KvCache::SyncRange(int p, const std::vector<size_t>& old_used, bool to_device) {
  DeviceScope scope(opt_.device_index);  // allocations and launches go to the cache's device
  if (!planes_[p].mem) return;
  std::vector<size_t> now = UsedBytes(p);
  const size_t cap = planes_[p].cap;
  for (size_t s = 0; s < S_; ++s) {
    const size_t old = std::min(old_used[s], now[s]);
    size_t from = old ? (old - 1) / 4 * 4 : 0, to = std::min(now[s], cap);
    if (to <= from) continue;
    uint8_t* host = planes_[p].mem->as<uint8_t>() + s * cap + from;
    if (to_device)
      dev_[p].mem->CopyFromHost(s * cap + from, host, to - from);
    else
      dev_[p].mem->CopyToHost(s * cap + from, host, to - from);
  }
}

void KvCache::UploadAll() {
  DeviceScope scope(opt_.device_index);  // allocations and launches go to the cache's device
  EnsureDevice();
  std::vector<size_t> zero(S_, 0);
  for (int p = 0; p < kNumPlanes; ++p) SyncRange(p, zero, true);
}

void KvCache::FlushKiviCuda(int64_t nk, int64_t nv) {
  DeviceScope scope(opt_.device_index);  // allocations and launches go to the cache's device
  std::vector<size_t> before[kNumPlanes];
  for (int p : {KBLK, VCODE, VPARAM}) before[p] = UsedBytes(p);
  for (int p : {KBLK, VCODE, VPARAM}) Ensure(p, PlaneNeed(p, Tk_ + nk, Tv_ + nv, 0));
  EnsureDevice();
  size_t caps[kNumPlanes];
  MemoryPtr mems[kNumPlanes];
  for (int p = 0; p < kNumPlanes; ++p) {
    caps[p] = dev_[p].cap;
    mems[p] = dev_[p].mem;
  }
  const gpu::Planes P = DevicePlanes(this, mems, caps);
  if (nk > 0) {
    MemoryPtr x = UploadRows(rk_, nk, L_.d);
    const int nblocks = static_cast<int>((nk + L_.G - 1) / L_.G);
    gpu::KiviEncodeKeys(L_, P, S_, x->as<float>(), uint64_t(Tk_ / L_.G), nblocks,
                        static_cast<int>(nk - int64_t(nblocks - 1) * L_.G));
  }
  if (nv > 0) {
    MemoryPtr x = UploadRows(rv_, nv, L_.d);
    gpu::KiviEncodeValues(L_, P, S_, x->as<float>(), uint64_t(Tv_), nv);
  }
  // Bring the GPU-encoded bytes back to the host planes (Tk_/Tv_ are advanced by Flush).
  const int64_t tk = Tk_, tv = Tv_;
  Tk_ += nk;
  Tv_ += nv;
  for (int p : {KBLK, VCODE, VPARAM}) SyncRange(p, before[p], false);
  Tk_ = tk;
  Tv_ = tv;
}

void KvCache::FlushFp8Cuda(int64_t n) {
  DeviceScope scope(opt_.device_index);  // allocations and launches go to the cache's device
  std::vector<size_t> before[kNumPlanes];
  for (int p : {KCODE, KPARAM, VCODE, VPARAM}) before[p] = UsedBytes(p);
  for (int p : {KCODE, KPARAM, VCODE, VPARAM}) Ensure(p, PlaneNeed(p, Tk_ + n, Tk_ + n, 0));
  EnsureDevice();
  size_t caps[kNumPlanes];
  MemoryPtr mems[kNumPlanes];
  for (int p = 0; p < kNumPlanes; ++p) {
    caps[p] = dev_[p].cap;
    mems[p] = dev_[p].mem;
  }
  MemoryPtr xk = UploadRows(rk_, n, L_.d);
  MemoryPtr xv = UploadRows(rv_, n, L_.d);
  gpu::Fp8Encode(L_, DevicePlanes(this, mems, caps), S_, xk->as<float>(), xv->as<float>(), uint64_t(Tk_), n);
  const int64_t tk = Tk_, tv = Tv_;
  Tk_ += n;
  Tv_ += n;
  for (int p : {KCODE, KPARAM, VCODE, VPARAM}) SyncRange(p, before[p], false);
  Tk_ = tk;
  Tv_ = tv;
}

// After an eviction round edited the host planes (merged rows, compaction): the ranges it
// marked, sorted and joined where they overlap or lie closer than kJoinGap bytes (one copy
// call instead of two costs more than moving that many bytes). Past the marked ranges the host
// and the mirror already agree: the bytes before the round were equal, and a compaction only
// zeroes bytes past the used prefix, which were zero on both sides.
void KvCache::UploadChanged() {
  constexpr size_t kJoinGap = 4096;
  DeviceScope scope(opt_.device_index);  // allocations and launches go to the cache's device
  EnsureDevice();
  for (int p = 0; p < kNumPlanes; ++p) {
    const size_t cap = planes_[p].cap;
    if (planes_[p].mem) whole_upload_bytes_ += cap * S_;
    for (size_t s = 0; s < S_; ++s) {
      auto& r = changed_[p][s];
      if (r.empty() || !planes_[p].mem) {
        r.clear();
        continue;
      }
      std::sort(r.begin(), r.end());
      const uint8_t* host = planes_[p].mem->as<uint8_t>() + s * cap;
      for (size_t i = 0; i < r.size();) {
        size_t from = r[i].first, to = r[i].second;
        for (++i; i < r.size() && r[i].first <= to + kJoinGap; ++i) to = std::max(to, r[i].second);
        to = std::min(to, cap);
        if (from >= to) continue;
        dev_[p].mem->CopyFromHost(s * cap + from, host + from, to - from);
        round_upload_bytes_ += to - from;
      }
      r.clear();
    }
  }
  ++upload_rounds_;
}

KvCache::MirrorCheck KvCache::CheckMirror() const {
  IZ_CHECK(on_cuda(), InvalidArgument, "this KV cache is on the CPU: it has no device mirror");
  DeviceScope scope(opt_.device_index);
  MirrorCheck m;
  m.round_upload_bytes = round_upload_bytes_;
  m.whole_upload_bytes = whole_upload_bytes_;
  m.rounds = upload_rounds_;
  for (int p = 0; p < kNumPlanes; ++p) {
    if (!planes_[p].mem) continue;
    const size_t n = planes_[p].cap * S_;
    if (!dev_[p].mem || dev_[p].cap != planes_[p].cap) {
      m.differing_bytes += n;  // no mirror of this plane's current size
      continue;
    }
    std::vector<uint8_t> dev(n);
    dev_[p].mem->CopyToHost(0, dev.data(), n);
    const uint8_t* host = planes_[p].mem->as<uint8_t>();
    for (size_t i = 0; i < n; ++i) m.differing_bytes += dev[i] != host[i];
  }
  return m;
}

void KvCache::AttentionCuda(const float* q, int q_heads, int64_t nq, float scale, bool causal, float* out,
                            const std::vector<std::vector<uint8_t>>* live, std::vector<std::vector<float>>* scores,
                            int64_t causal_end) const {
  DeviceScope scope(opt_.device_index);  // allocations and launches go to the cache's device
  const int d = L_.d;
  const size_t nqv = size_t(opt_.batch) * q_heads * size_t(nq) * d;
  std::vector<float> qs(q, q + nqv);
  for (float& x : qs) x *= scale;
  MemoryPtr dq = DeviceMemory::Allocate(Device::Cuda, nqv * sizeof(float));
  dq->CopyFromHost(0, qs.data(), nqv * sizeof(float));
  MemoryPtr drk = UploadRows(rk_, T_ - Tk_, d);
  MemoryPtr drv = UploadRows(rv_, T_ - Tv_, d);
  MemoryPtr dout = DeviceMemory::Allocate(Device::Cuda, nqv * sizeof(float));
  size_t caps[kNumPlanes];
  MemoryPtr mems[kNumPlanes];
  for (int p = 0; p < kNumPlanes; ++p) {
    caps[p] = dev_[p].cap;
    mems[p] = dev_[p].mem;
  }
  gpu::AttentionArgs a{};
  a.batch = opt_.batch;
  a.heads = opt_.heads;
  a.q_heads = q_heads;
  a.nq = nq;
  a.T = T_;
  a.tk = Tk_;
  a.tv = Tv_;
  a.q = dq->as<float>();
  a.rk = drk->as<float>();
  a.rv = drv->as<float>();
  a.basis = dev_basis_ ? dev_basis_->as<float>() : nullptr;
  a.causal = causal;
  a.causal_end = causal_end < 0 ? T_ : causal_end;
  a.out = dout->as<float>();
  MemoryPtr dlive, dscores;
  const size_t T = size_t(T_);
  if (live && scores && T > 0) {
    std::vector<uint8_t> lv(S_ * T);
    std::vector<float> sc(S_ * T);
    for (size_t s = 0; s < S_; ++s) {
      std::memcpy(lv.data() + s * T, (*live)[s].data(), T);
      std::memcpy(sc.data() + s * T, (*scores)[s].data(), T * sizeof(float));
    }
    dlive = DeviceMemory::Allocate(Device::Cuda, lv.size());
    dlive->CopyFromHost(0, lv.data(), lv.size());
    dscores = DeviceMemory::Allocate(Device::Cuda, sc.size() * sizeof(float));
    dscores->CopyFromHost(0, sc.data(), sc.size() * sizeof(float));
    a.live = dlive->as<uint8_t>();
    a.scores = dscores->as<float>();
  }
  gpu::Attention(L_, DevicePlanes(this, mems, caps), a);
  dout->CopyToHost(0, out, nqv * sizeof(float));
  if (dscores) {
    std::vector<float> sc(S_ * T);
    dscores->CopyToHost(0, sc.data(), sc.size() * sizeof(float));
    for (size_t s = 0; s < S_; ++s) std::memcpy((*scores)[s].data(), sc.data() + s * T, T * sizeof(float));
  }
}

void KvCache::DequantizeCuda(float* k, float* v) const {
  DeviceScope scope(opt_.device_index);  // allocations and launches go to the cache's device
  const int d = L_.d;
  const size_t T = size_t(T_), n = S_ * T * d;
  if (n == 0) return;
  MemoryPtr dk = DeviceMemory::Allocate(Device::Cuda, n * sizeof(float), true);
  MemoryPtr dv = DeviceMemory::Allocate(Device::Cuda, n * sizeof(float), true);
  size_t caps[kNumPlanes];
  MemoryPtr mems[kNumPlanes];
  for (int p = 0; p < kNumPlanes; ++p) {
    caps[p] = dev_[p].cap;
    mems[p] = dev_[p].mem;
  }
  gpu::Dequantize(L_, DevicePlanes(this, mems, caps), S_, Tk_, Tv_, T_, dev_basis_ ? dev_basis_->as<float>() : nullptr,
                  dk->as<float>(), dv->as<float>());
  dk->CopyToHost(0, k, n * sizeof(float));
  dv->CopyToHost(0, v, n * sizeof(float));
  for (size_t s = 0; s < S_; ++s) {
    for (size_t t = size_t(Tk_); t < T; ++t)
      std::memcpy(k + (s * T + t) * d, rk_[s].data() + (t - size_t(Tk_)) * d, sizeof(float) * d);
    for (size_t t = size_t(Tv_); t < T; ++t)
      std::memcpy(v + (s * T + t) * d, rv_[s].data() + (t - size_t(Tv_)) * d, sizeof(float) * d);
  }
}

#else  // CPU-only build: the constructor already refused Device::Cuda.

void KvCache::EnsureDevice() { Fail(ErrorCode::NoDevice, "this inferzip build has no CUDA backend"); }
void KvCache::SyncRange(int, const std::vector<size_t>&, bool) {
  Fail(ErrorCode::NoDevice, "this inferzip build has no CUDA backend");
}
void KvCache::UploadAll() { Fail(ErrorCode::NoDevice, "this inferzip build has no CUDA backend"); }
void KvCache::FlushKiviCuda(int64_t, int64_t) { Fail(ErrorCode::NoDevice, "this inferzip build has no CUDA backend"); }
void KvCache::FlushFp8Cuda(int64_t) { Fail(ErrorCode::NoDevice, "this inferzip build has no CUDA backend"); }
void KvCache::UploadChanged() { Fail(ErrorCode::NoDevice, "this inferzip build has no CUDA backend"); }
KvCache::MirrorCheck KvCache::CheckMirror() const {
  Fail(ErrorCode::NoDevice, "this inferzip build has no CUDA backend");
}
void KvCache::AttentionCuda(const float*, int, int64_t, float, bool, float*, const std::vector<std::vector<uint8_t>>*,
                            std::vector<std::vector<float>>*, int64_t) const {
  Fail(ErrorCode::NoDevice, "this inferzip build has no CUDA backend");
}
void KvCache::DequantizeCuda(float*, float*) const {
  Fail(ErrorCode::NoDevice, "this inferzip build has no CUDA backend");
}

#endif

}  // namespace iz::kv
