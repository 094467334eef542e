// DFloat11 decode kernel: one launch, two phases per thread (count, then decode), a
// block-wide scan in between, outputs staged in shared memory and written coalesced.
// Every decode step comes from format.h, which the CPU decoder and its tests share.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cuda/check.cuh"
#include "cuda/df11/decode.h"
#include "native/shared/df11/format.h"
#include "native/shared/error.h"

namespace iz {
namespace cuda {
namespace df11 {

using namespace ::iz::df11;

namespace {

constexpr unsigned kWarps = kThreadsPerBlock / 32;
constexpr size_t kScanBytes = 64 * sizeof(uint32_t);  // warp totals + block total, 16-byte aligned stage after it

__device__ __forceinline__ uint32_t LoadU32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// Phase-2 sinks: into the shared staging buffer, or straight to global memory when the
// block decodes more elements than the staging buffer holds.
struct StageSink {
  uint16_t* stage;
  const uint8_t* sm;
  uint64_t first, base, stop;
  __device__ bool operator()(uint32_t c, uint32_t sym) {
    uint64_t idx = first + c;
    if (idx >= stop) return false;
    stage[idx - base] = RebuildBf16(sym, sm[idx]);
    return true;
  }
};

struct GlobalSink {
  uint16_t* out;
  const uint8_t* sm;
  uint64_t first, stop;
  __device__ bool operator()(uint32_t c, uint32_t sym) {
    uint64_t idx = first + c;
    if (idx >= stop) return false;
    out[idx] = RebuildBf16(sym, sm[idx]);
    return true;
  }
};

// Exclusive prefix sum of `value` over the block; *total gets the block's sum.
__device__ __forceinline__ uint32_t BlockExclusiveScan(uint32_t value, uint32_t* warp_sums, uint32_t* total) {
  const unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  uint32_t inclusive = value;
#pragma unroll
  for (unsigned d = 1; d < 32; d <<= 1) {
    uint32_t up = __shfl_up_sync(0xFFFFFFFFu, inclusive, d);
    if (lane >= d) inclusive += up;
  }
  if (lane == 31) warp_sums[warp] = inclusive;
  __syncthreads();
  if (warp == 0) {
    uint32_t s = lane < kWarps ? warp_sums[lane] : 0;
#pragma unroll
    for (unsigned d = 1; d < 32; d <<= 1) {
      uint32_t up = __shfl_up_sync(0xFFFFFFFFu, s, d);
      if (lane >= d) s += up;
    }
    if (lane < kWarps) warp_sums[lane] = s;  // inclusive warp prefix
    if (lane == kWarps - 1) warp_sums[kWarps] = s;
  }
  __syncthreads();
  *total = warp_sums[kWarps];
  return (warp ? warp_sums[warp - 1] : 0) + inclusive - value;
}

__global__ void __launch_bounds__(kThreadsPerBlock)
    DecodeKernel(DeviceUnit u, uint16_t* __restrict__ out, uint32_t stage_capacity, unsigned* __restrict__ error) {
  extern __shared__ __align__(16) uint8_t smem[];
  uint32_t* warp_sums = reinterpret_cast<uint32_t*>(smem);
  uint16_t* stage = reinterpret_cast<uint16_t*>(smem + kScanBytes);

  const uint64_t block = blockIdx.x;
  const uint64_t thread = block * kThreadsPerBlock + threadIdx.x;
  const uint64_t n_threads = u.n_blocks * kThreadsPerBlock;
  const Tables tables{u.luts, u.n_tables};

  // Registers: the chunk's 8 bytes + 4 look-ahead bytes, and the 5-bit gap.
  const Window w = LoadWindow(u.encoded_exponent, u.encoded_bytes, thread);
  const uint32_t gap = ReadGap(u.gaps, u.gaps_bytes, thread);
  const uint32_t limit = ChunkLimit(u.encoded_bytes, thread);

  // Phase 1: count the codes that start in this chunk.
  CountSink counter;
  uint32_t count = 0, end_pos = 0;
  const unsigned status = DecodeChunk(tables, w, gap, limit, counter, &count, &end_pos);

  // Output index of this thread's first code.
  const uint64_t base = LoadU32(u.output_positions + 4 * block);
  const uint64_t block_end = LoadU32(u.output_positions + 4 * (block + 1));
  const bool last = block + 1 == u.n_blocks;
  uint32_t total = 0;
  const uint64_t first = base + BlockExclusiveScan(count, warp_sums, &total);

  unsigned verdict = ThreadVerdict(status, count, end_pos, first, block_end, u.n_elements, last, u.gaps, u.gaps_bytes,
                                   u.encoded_bytes, thread, n_threads);
  if (threadIdx.x == 0) {
    const uint64_t expected = block_end - base;
    if (last ? total < expected : total != expected) verdict |= kCountMismatch;
  }
  if (verdict) atomicOr(error, verdict);

  // Phase 2: decode again and place each BF16 word. Indices stay below block_end <= n
  // (checked on the host), so even a corrupt unit never writes out of bounds.
  const uint64_t expected = block_end - base;
  uint32_t c2 = 0, e2 = 0;
  if (expected <= stage_capacity) {  // uniform over the block
    StageSink sink{stage, u.sign_mantissa, first, base, block_end};
    DecodeChunk(tables, w, gap, limit, sink, &c2, &e2);
    __syncthreads();
    for (uint64_t i = threadIdx.x; i < expected; i += kThreadsPerBlock) out[base + i] = stage[i];
  } else {
    GlobalSink sink{out, u.sign_mantissa, first, block_end};
    DecodeChunk(tables, w, gap, limit, sink, &c2, &e2);
  }
}

// The error flag: one per host thread and device, allocated on first use and kept, because
// cudaMalloc + cudaFree around every decode would synchronize the whole device each call.
// Each decode runs on one host thread from memset to readback, so a thread's flag is never
// shared by two decodes in flight. Never freed: 4 bytes per device per worker thread.
unsigned* ErrorFlag(int device) {
  thread_local std::vector<unsigned*> flags;
  if (size_t(device) >= flags.size()) flags.resize(size_t(device) + 1, nullptr);
  if (flags[size_t(device)] == nullptr) IZ_CUDA_CHECK(cudaMalloc(&flags[size_t(device)], sizeof(unsigned)));
  return flags[size_t(device)];
}

}  // namespace

void Decode(const DeviceUnit& u, uint16_t* out, void* stream_ptr) {
  if (u.n_blocks == 0) return;
  IZ_CHECK(u.n_blocks <= 0x7FFFFFFFull, InvalidArgument, "DFloat11 unit has too many blocks for one launch");
  cudaStream_t stream = static_cast<cudaStream_t>(stream_ptr);
  int device = 0, optin = 0;
  IZ_CUDA_CHECK(cudaGetDevice(&device));
  IZ_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  // Stage the largest block when it fits the device's opt-in shared memory; blocks
  // larger than the stage (codes averaging < ~1.4 bits) write directly instead.
  const size_t room = optin > int(kScanBytes) ? (size_t(optin) - kScanBytes) / sizeof(uint16_t) : 0;
  const uint32_t capacity = static_cast<uint32_t>(std::min<size_t>(u.max_block_elements, room));
  const size_t smem = kScanBytes + size_t(capacity) * sizeof(uint16_t);
  // The limit belongs to the kernel, shared by every host thread: raise it to the device's
  // maximum (the same value for every caller), never to this unit's need, so a decode running
  // concurrently on another thread cannot lower it below what this launch asks for.
  const size_t limit = std::max(smem, kScanBytes + room * sizeof(uint16_t));
  IZ_CUDA_CHECK(
      cudaFuncSetAttribute(DecodeKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(limit)));

  unsigned* error = ErrorFlag(device);
  unsigned flags = 0;
  cudaError_t err = cudaMemsetAsync(error, 0, sizeof(unsigned), stream);
  if (err == cudaSuccess) {
    DecodeKernel<<<static_cast<unsigned>(u.n_blocks), kThreadsPerBlock, smem, stream>>>(u, out, capacity, error);
    err = cudaGetLastError();
  }
  if (err == cudaSuccess) err = cudaMemcpyAsync(&flags, error, sizeof(unsigned), cudaMemcpyDeviceToHost, stream);
  if (err == cudaSuccess) err = cudaStreamSynchronize(stream);
  IZ_CUDA_CHECK(err);  // the launch, the flag copy or the kernel itself
  if (flags) Fail(ErrorCode::CorruptData, std::string("DFloat11 unit (CUDA decode): ") + StatusText(flags));
}

}  // namespace df11
}  // namespace cuda
}  // namespace iz
