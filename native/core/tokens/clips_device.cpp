// TempMe on device memory. CPU memory runs the CPU backend (MergeClipsCpu) unchanged; CUDA
// memory runs ImgMe and every intra-clip step as batched ToMe steps (TomeMerge: they are
// ToMe's even/odd split with the order kept) and every cross-clip step on the list kernels
// of cuda/tokens/clips.cu. The schedule (merge counts, groups, sides) is the CPU backend's;
// only the small integer maps (dest of each step) come back to the host, where the source
// map is composed exactly as MergeClipsCpu composes it.
#include <algorithm>
#include <cstring>
#include <string>

#include "native/core/tokens/clips.h"
#include "native/shared/error.h"

#if INFERZIP_WITH_CUDA
#include "cuda/runtime.h"
#include "cuda/tokens/clips.h"
#include "cuda/tokens/tome.h"
#endif

namespace iz::tokens {

namespace {

struct ItemResult {
  std::vector<int32_t> assignment, clip_lengths;
};

#if INFERZIP_WITH_CUDA

MemoryPtr CudaAlloc(int64_t bytes, int index) {
  return DeviceMemory::Allocate(Device::Cuda, static_cast<size_t>(std::max<int64_t>(bytes, 4)), false, index);
}

std::vector<int32_t> Download(const MemoryPtr& m, int64_t count) {
  std::vector<int32_t> v(static_cast<size_t>(count));
  if (count) m->CopyToHost(0, v.data(), static_cast<size_t>(count) * 4);
  return v;
}

// One batch item: f32 frames [t, p, c] on the current CUDA device. Leaves the merged rows in
// *x / *sizes (f32, new memory) and returns the maps.
ItemResult MergeClipsCudaItem(const float* frames, const ClipParams& p, int index, MemoryPtr* x, MemoryPtr* sizes) {
  const int64_t t = p.t, np = p.p, c = p.c;
  // ImgMe: one batched ToMe step over the frames (A = even positions, B = odd, order kept)
  const int64_t r_img = std::min(ClipMergeCount(np, p.img_keep), np / 2);
  const int64_t len0 = np - r_img;
  MemoryPtr cx = CudaAlloc(t * len0 * c * 4, index), cs = CudaAlloc(t * len0 * 4, index),
            dd = CudaAlloc(t * np * 4, index);
  cuda::tokens::TomeMerge(t, np, c, c, r_img, true, TokDType::F32, frames, frames, nullptr, nullptr, cx->data(),
                          cs->as<float>(), dd->as<int32_t>());
  std::vector<int32_t> orig_clip(static_cast<size_t>(t * np)), orig_row = Download(dd, t * np);
  for (int64_t k = 0; k < t * np; ++k) orig_clip[static_cast<size_t>(k)] = static_cast<int32_t>(k / np);
  std::vector<int64_t> len(static_cast<size_t>(t), len0);

  size_t round = 0;
  while (true) {
    int64_t g;
    if (p.default_groups) {
      if (len.size() <= 1) break;
      g = 2;
    } else {
      if (round >= p.groups.size()) break;
      g = p.groups[round];
    }
    ++round;
    const int64_t nclips = static_cast<int64_t>(len.size()), ngroups = (nclips + g - 1) / g;
    std::vector<int64_t> start(static_cast<size_t>(nclips) + 1, 0);  // row offset of each old clip
    for (int64_t ci = 0; ci < nclips; ++ci) start[size_t(ci) + 1] = start[size_t(ci)] + len[size_t(ci)];
    // the plan of each group: rows joined, merged across, kept after the intra step
    struct Group {
      int64_t c0, c1, n, r_cross, n2, r_intra, out, out_start;
      std::vector<int32_t> a, b;
    };
    std::vector<Group> groups(static_cast<size_t>(ngroups));
    int64_t total = 0;
    for (int64_t gi = 0; gi < ngroups; ++gi) {
      Group& gr = groups[size_t(gi)];
      gr.c0 = gi * g;
      gr.c1 = std::min(nclips, gr.c0 + g);
      gr.n = start[size_t(gr.c1)] - start[size_t(gr.c0)];
      for (int64_t ci = gr.c0; ci < gr.c1; ++ci)
        for (int64_t q = 0; q < len[size_t(ci)]; ++q)
          ((ci - gr.c0) % 2 == 1 ? gr.a : gr.b)
              .push_back(static_cast<int32_t>(start[size_t(ci)] - start[size_t(gr.c0)] + q));
      if (gr.c1 - gr.c0 == 1) {
        gr.r_cross = gr.r_intra = 0;
      } else {
        gr.r_cross = std::min<int64_t>(ClipMergeCount(gr.n, p.cross_keep), static_cast<int64_t>(gr.a.size()));
        gr.r_intra = std::min(ClipMergeCount(gr.n - gr.r_cross, p.intra_keep), (gr.n - gr.r_cross) / 2);
      }
      gr.n2 = gr.n - gr.r_cross;
      gr.out = gr.n2 - gr.r_intra;
      gr.out_start = total;
      total += gr.out;
    }
    MemoryPtr nx = CudaAlloc(total * c * 4, index), ns = CudaAlloc(total * 4, index);
    std::vector<std::vector<int32_t>> remap(static_cast<size_t>(nclips));
    // Runs of neighbouring groups with the same clip lengths share one batched launch (all
    // groups of a round but the last have the same structure).
    for (int64_t g0 = 0; g0 < ngroups;) {
      const Group& first = groups[size_t(g0)];
      auto same = [&](const Group& o) {
        if (o.c1 - o.c0 != first.c1 - first.c0) return false;
        for (int64_t k = 0; k < o.c1 - o.c0; ++k)
          if (len[size_t(o.c0 + k)] != len[size_t(first.c0 + k)]) return false;
        return true;
      };
      int64_t g1 = g0 + 1;
      while (g1 < ngroups && g1 - g0 < 65535 && same(groups[size_t(g1)])) ++g1;
      const int64_t batch = g1 - g0, n = first.n, n2 = first.n2;
      const float* in_x = cx->as<float>() + start[size_t(first.c0)] * c;
      const float* in_s = cs->as<float>() + start[size_t(first.c0)];
      float* out_x = nx->as<float>() + first.out_start * c;
      float* out_s = ns->as<float>() + first.out_start;
      std::vector<int32_t> d_cross, d_intra;
      if (first.c1 - first.c0 == 1) {  // a lone clip passes through
        cuda::CopyDeviceToDevice(out_x, in_x, static_cast<size_t>(batch * n * c) * 4);
        cuda::CopyDeviceToDevice(out_s, in_s, static_cast<size_t>(batch * n) * 4);
        d_cross.resize(static_cast<size_t>(batch * n));
        for (int64_t k = 0; k < batch * n; ++k) d_cross[size_t(k)] = static_cast<int32_t>(k % n);
        d_intra = d_cross;
      } else {
        MemoryPtr mx = CudaAlloc(batch * n2 * c * 4, index), ms = CudaAlloc(batch * n2 * 4, index);
        MemoryPtr dc = CudaAlloc(batch * n * 4, index), di = CudaAlloc(batch * n2 * 4, index);
        cuda::tokens::ClipListMerge(batch, n, c, first.a.data(), static_cast<int64_t>(first.a.size()), first.b.data(),
                                    static_cast<int64_t>(first.b.size()), first.r_cross, in_x, in_s, mx->as<float>(),
                                    ms->as<float>(), dc->as<int32_t>());
        cuda::tokens::TomeMerge(batch, n2, c, c, first.r_intra, true, TokDType::F32, mx->data(), mx->data(),
                                ms->as<float>(), nullptr, out_x, out_s, di->as<int32_t>());
        d_cross = Download(dc, batch * n);
        d_intra = Download(di, batch * n2);
      }
      for (int64_t gi = g0; gi < g1; ++gi) {
        const Group& gr = groups[size_t(gi)];
        const int32_t* dcr = d_cross.data() + (gi - g0) * n;
        const int32_t* din = d_intra.data() + (gi - g0) * (first.c1 - first.c0 == 1 ? n : n2);
        for (int64_t ci = gr.c0; ci < gr.c1; ++ci) {
          auto& m = remap[size_t(ci)];
          const int64_t off = start[size_t(ci)] - start[size_t(gr.c0)];
          m.resize(static_cast<size_t>(len[size_t(ci)]));
          for (int64_t q = 0; q < len[size_t(ci)]; ++q) m[size_t(q)] = din[dcr[off + q]];
        }
      }
      g0 = g1;
    }
    for (size_t k = 0; k < orig_clip.size(); ++k) {
      const int32_t ci = orig_clip[k];
      orig_row[k] = remap[static_cast<size_t>(ci)][static_cast<size_t>(orig_row[k])];
      orig_clip[k] = static_cast<int32_t>(ci / g);
    }
    std::vector<int64_t> next_len(static_cast<size_t>(ngroups));
    for (int64_t gi = 0; gi < ngroups; ++gi) next_len[size_t(gi)] = groups[size_t(gi)].out;
    len = std::move(next_len);
    cx = std::move(nx);
    cs = std::move(ns);
  }

  ItemResult res;
  std::vector<int32_t> first_row;
  int32_t rows = 0;
  for (int64_t l : len) {
    first_row.push_back(rows);
    res.clip_lengths.push_back(static_cast<int32_t>(l));
    rows += static_cast<int32_t>(l);
  }
  res.assignment.resize(orig_clip.size());
  for (size_t k = 0; k < orig_clip.size(); ++k)
    res.assignment[k] = first_row[static_cast<size_t>(orig_clip[k])] + orig_row[k];
  *x = std::move(cx);
  *sizes = std::move(cs);
  return res;
}

ClipDeviceResult MergeClipsCuda(const ClipParams& p, int64_t batch, TokDType dtype, const MemoryPtr& frames) {
  const int index = frames->index();
  const int64_t per = p.t * p.p * p.c, eb = DTypeBytes(dtype);
  IZ_CHECK(!cuda::tokens::TomeAnyNonFinite(frames->data(), batch * per, dtype), InvalidArgument,
           "frames holds a non-finite value (NaN or Inf); clean the input first");
  ClipDeviceResult out;
  MemoryPtr wide = dtype == TokDType::F32 ? nullptr : CudaAlloc(per * 4, index);
  for (int64_t b = 0; b < batch; ++b) {
    const char* item = static_cast<const char*>(frames->data()) + b * per * eb;
    if (wide) cuda::tokens::ClipConvert(item, dtype, wide->data(), TokDType::F32, per);
    MemoryPtr x, sizes;
    ItemResult r =
        MergeClipsCudaItem(wide ? wide->as<float>() : reinterpret_cast<const float*>(item), p, index, &x, &sizes);
    int64_t m = 0;
    for (int32_t l : r.clip_lengths) m += l;
    if (b == 0) {
      out.rows = m;
      out.clip_lengths = r.clip_lengths;
      out.x = CudaAlloc(batch * m * p.c * eb, index);
      out.sizes = CudaAlloc(batch * m * 4, index);
    }
    IZ_CHECK(m == out.rows, Internal, "batch items of one TempMe call merged to different counts");
    cuda::tokens::ClipConvert(x->data(), TokDType::F32, static_cast<char*>(out.x->data()) + b * m * p.c * eb, dtype,
                              m * p.c);
    cuda::CopyDeviceToDevice(out.sizes->as<float>() + b * m, sizes->data(), static_cast<size_t>(m) * 4);
    out.assignment.insert(out.assignment.end(), r.assignment.begin(), r.assignment.end());
  }
  return out;
}

#endif  // INFERZIP_WITH_CUDA

// CPU memory: widen to f32, run the CPU backend per item, narrow back (round to nearest even).
ClipDeviceResult MergeClipsHostMemory(const ClipParams& p, int64_t batch, TokDType dtype, const MemoryPtr& frames) {
  const int64_t per = p.t * p.p * p.c;
  std::vector<float> item(static_cast<size_t>(per));
  ClipDeviceResult out;
  std::vector<float> xs, ss;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t i = 0; i < per; ++i) item[size_t(i)] = LoadAsF32(frames->data(), b * per + i, dtype);
    ClipMergeResult r = MergeClipsCpu(item.data(), p);
    if (b == 0) {
      out.rows = static_cast<int64_t>(r.sizes.size());
      out.clip_lengths = r.clip_lengths;
    }
    xs.insert(xs.end(), r.x.begin(), r.x.end());
    ss.insert(ss.end(), r.sizes.begin(), r.sizes.end());
    out.assignment.insert(out.assignment.end(), r.assignment.begin(), r.assignment.end());
  }
  out.x = DeviceMemory::Allocate(Device::Cpu, std::max<size_t>(xs.size() * size_t(DTypeBytes(dtype)), 4));
  for (size_t i = 0; i < xs.size(); ++i) StoreFromF32(out.x->data(), int64_t(i), xs[i], dtype);
  out.sizes = DeviceMemory::Allocate(Device::Cpu, std::max<size_t>(ss.size() * 4, 4));
  std::memcpy(out.sizes->data(), ss.data(), ss.size() * 4);
  return out;
}

}  // namespace

ClipDeviceResult MergeClipsDevice(const ClipParams& p, int64_t batch, TokDType dtype, const MemoryPtr& frames) {
  ValidateClipParams(p);
  IZ_CHECK(batch >= 1, ShapeMismatch, "batch must be >= 1");
  IZ_CHECK(p.t * p.p <= INT32_MAX && batch * p.t * p.p * p.c <= (int64_t(1) << 40), ShapeMismatch,
           "frames are too large for one TempMe call");
  IZ_CHECK(frames && frames->bytes() >= static_cast<size_t>(batch * p.t * p.p * p.c * DTypeBytes(dtype)), ShapeMismatch,
           "frames buffer is smaller than [batch, T, P, C]");
  DeviceScope scope(frames->cuda() ? frames->index() : -1);
  if (frames->cuda()) {
#if INFERZIP_WITH_CUDA
    return MergeClipsCuda(p, batch, dtype, frames);
#else
    Fail(ErrorCode::NoDevice, "this build has no CUDA backend");
#endif
  }
  return MergeClipsHostMemory(p, batch, dtype, frames);
}

}  // namespace iz::tokens
