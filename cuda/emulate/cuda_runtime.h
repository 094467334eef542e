// inferzip CUDA emulator: a stand-in for <cuda_runtime.h> that lets the unmodified kernel
// sources in cuda/ compile with the host C++ compiler (INFERZIP_CUDA=emulate).
//
// Only what inferzip's kernels use is here. The build first runs cuda/emulate/rewrite.mjs
// over each .cu file, which turns `K<<<grid, block, smem, stream>>>(args)` into
// `::iz_emu::Config(grid, block, smem, stream).Run("K", K, args)` and `__shared__` /
// `extern __shared__` declarations into per-block allocations (see IZ_EMU_* below). Every
// block runs its threads as cooperative fibers on the launching host thread (emulator.cpp);
// __syncthreads and warp shuffles are scheduling points, and the scheduler aborts with a
// message on barrier divergence, deadlock, bad shuffle masks, bad launch configurations and
// shared-memory overruns. Device memory is host memory in a tracked allocation table.
#pragma once

#include <math.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#define IZ_CUDA_EMULATED 1

// --- qualifiers --------------------------------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __constant__ static

// --- types ---------------------------------------------------------------------
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
};

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorLaunchFailure = 719,
};
typedef cudaError_t cudaError;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaDeviceAttr {
  cudaDevAttrMaxThreadsPerBlock = 1,
  cudaDevAttrMaxSharedMemoryPerBlock = 8,
  cudaDevAttrWarpSize = 10,
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76,
  cudaDevAttrMaxSharedMemoryPerBlockOptin = 97,
};

enum cudaFuncAttribute {
  cudaFuncAttributeMaxDynamicSharedMemorySize = 8,
  cudaFuncAttributePreferredSharedMemoryCarveout = 9,
};

struct CUstream_st;
typedef CUstream_st* cudaStream_t;

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  size_t sharedMemPerBlockOptin;
  int regsPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  int major;
  int minor;
  int multiProcessorCount;
};

// --- host API (emulator.cpp) --------------------------------------------------------
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device);
cudaError_t cudaMalloc(void** ptr, size_t bytes);
template <class T>
inline cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(ptr), bytes);
}
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream = nullptr);
cudaError_t cudaMemset(void* dst, int value, size_t bytes);
cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream = nullptr);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaDeviceSynchronize();
cudaError_t cudaGetLastError();
cudaError_t cudaPeekAtLastError();
const char* cudaGetErrorName(cudaError_t err);
const char* cudaGetErrorString(cudaError_t err);

namespace iz_emu {

// --- per-thread state of the fiber that runs device code ---------------------------
struct ThreadCtx {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};
// The running device thread of this host thread (null outside kernels).
ThreadCtx* Current();

[[noreturn]] void Die(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

cudaError_t SetFuncMaxDynamicShared(const void* func, int bytes);

// Scheduling points.
void SyncThreads(const char* file, int line);
// Exchanges `bytes` of `value` within the warp: src_of(lane) names the lane read from.
enum class ShuffleKind { Up, Down, Xor, Idx };
void Shuffle(unsigned mask, void* value, size_t bytes, ShuffleKind kind, int arg, int width, const char* file,
             int line);

// Shared memory of the current block.
void* StaticShared(const void* key, size_t bytes, size_t align, const char* name, const char* file, int line);
void* DynamicShared(const char* name, const char* file, int line);

// --- launches -------------------------------------------------------------------
struct LaunchInfo {
  const char* name;
  const void* func;
  const char* file;
  int line;
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
};
// Runs body(ctx) for every thread of every block of the grid; returns the launch error.
cudaError_t RunGrid(const LaunchInfo& info, void (*body)(void* closure), void* closure);
// Launch arguments: a pointer argument must be null or point into a device allocation.
void CheckPointerArg(const LaunchInfo& info, int index, const void* p);

template <class T>
inline void CheckArg(const LaunchInfo& info, int index, const T& v) {
  if constexpr (std::is_pointer_v<T>) CheckPointerArg(info, index, reinterpret_cast<const void*>(v));
}

class Config {
 public:
  Config(dim3 grid, dim3 block, size_t smem = 0, cudaStream_t stream = nullptr)
      : grid_(grid), block_(block), smem_(smem), stream_(stream) {}

  template <class... Params, class... Args>
  cudaError_t Run(const char* name, void (*kernel)(Params...), Args&&... args) {
    static_assert(sizeof...(Params) == sizeof...(Args), "kernel launched with the wrong number of arguments");
    // Arguments are converted to the parameter types once, as the CUDA runtime copies them
    // into the launch's parameter buffer; each thread then gets its own by-value copy.
    std::tuple<std::decay_t<Params>...> params(std::forward<Args>(args)...);
    LaunchInfo info{name, reinterpret_cast<const void*>(kernel), file_, line_, grid_, block_, smem_, stream_};
    CheckArgs(info, params, std::index_sequence_for<Params...>{});
    struct Closure {
      void (*kernel)(Params...);
      std::tuple<std::decay_t<Params>...>* params;
    } closure{kernel, &params};
    return RunGrid(
        info,
        [](void* c) {
          auto* cl = static_cast<Closure*>(c);
          std::apply(cl->kernel, *cl->params);
        },
        &closure);
  }

  Config& At(const char* file, int line) {
    file_ = file;
    line_ = line;
    return *this;
  }

 private:
  template <class Tuple, size_t... I>
  static void CheckArgs(const LaunchInfo& info, const Tuple& t, std::index_sequence<I...>) {
    (CheckArg(info, int(I), std::get<I>(t)), ...);
  }
  dim3 grid_, block_;
  size_t smem_;
  cudaStream_t stream_;
  const char* file_ = "?";
  int line_ = 0;
};

template <class T>
inline T ShuffleValue(unsigned mask, T v, ShuffleKind kind, int arg, int width, const char* file, int line) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of an unsupported type");
  Shuffle(mask, &v, sizeof(T), kind, arg, width, file, line);
  return v;
}

}  // namespace iz_emu

template <class F>
inline cudaError_t cudaFuncSetAttribute(F* func, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;
  return iz_emu::SetFuncMaxDynamicShared(reinterpret_cast<const void*>(func), value);
}

// --- built-in variables ------------------------------------------------------------
#define threadIdx (::iz_emu::Current()->thread_idx)
#define blockIdx (::iz_emu::Current()->block_idx)
#define blockDim (::iz_emu::Current()->block_dim)
#define gridDim (::iz_emu::Current()->grid_dim)
inline constexpr int warpSize = 32;

// --- synchronization and warp intrinsics ------------------------------------------------
#define __syncthreads() ::iz_emu::SyncThreads(__FILE__, __LINE__)
#define __shfl_sync(mask, v, src, ...) \
  ::iz_emu::ShuffleValue((mask), (v), ::iz_emu::ShuffleKind::Idx, (src), IZ_EMU_WIDTH(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_up_sync(mask, v, d, ...) \
  ::iz_emu::ShuffleValue((mask), (v), ::iz_emu::ShuffleKind::Up, int(d), IZ_EMU_WIDTH(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_down_sync(mask, v, d, ...)                                                                       \
  ::iz_emu::ShuffleValue((mask), (v), ::iz_emu::ShuffleKind::Down, int(d), IZ_EMU_WIDTH(__VA_ARGS__), __FILE__, \
                         __LINE__)
#define __shfl_xor_sync(mask, v, m, ...) \
  ::iz_emu::ShuffleValue((mask), (v), ::iz_emu::ShuffleKind::Xor, int(m), IZ_EMU_WIDTH(__VA_ARGS__), __FILE__, __LINE__)
#define IZ_EMU_WIDTH(...) (::iz_emu::WidthOr32(0, ##__VA_ARGS__))
namespace iz_emu {
inline int WidthOr32(int) { return 32; }
inline int WidthOr32(int, int w) { return w; }
}  // namespace iz_emu

// --- atomics (device memory is host memory; blocks of one launch run on one host thread,
// but two host threads may run kernels at once, so these are real atomics) ---------------
inline unsigned atomicOr(unsigned* p, unsigned v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
inline int atomicOr(int* p, int v) { return __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicAnd(unsigned* p, unsigned v) { return __atomic_fetch_and(p, v, __ATOMIC_RELAXED); }
inline unsigned atomicAdd(unsigned* p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline int atomicAdd(int* p, int v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
inline unsigned long long atomicAdd(unsigned long long* p, unsigned long long v) {
  return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
}
inline unsigned atomicMax(unsigned* p, unsigned v) {
  unsigned old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (old < v && !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}

// --- math intrinsics ---------------------------------------------------------------
// The round-to-nearest forms are what the host computes anyway (emulated sources are built
// with -ffp-contract=off, so no multiply-add is fused). __expf is expf here: on a GPU it is
// a faster approximation, which is why attention is documented within a tolerance.
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(unsigned(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline unsigned __brev(unsigned x) {
  x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
  x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
  x = ((x >> 4) & 0x0F0F0F0Fu) | ((x & 0x0F0F0F0Fu) << 4);
  x = ((x >> 8) & 0x00FF00FFu) | ((x & 0x00FF00FFu) << 8);
  return (x >> 16) | (x << 16);
}

// CUDA's global min/max overloads for device code.
#define IZ_EMU_MINMAX(T)                           \
  inline T min(T a, T b) { return b < a ? b : a; } \
  inline T max(T a, T b) { return a < b ? b : a; }
IZ_EMU_MINMAX(int)
IZ_EMU_MINMAX(unsigned)
IZ_EMU_MINMAX(long)
IZ_EMU_MINMAX(unsigned long)
IZ_EMU_MINMAX(long long)
IZ_EMU_MINMAX(unsigned long long)
IZ_EMU_MINMAX(float)
IZ_EMU_MINMAX(double)
#undef IZ_EMU_MINMAX

// --- what rewrite.mjs emits for shared memory declarations ---------------------------
// `__shared__ T name[N];`         ->  IZ_EMU_SHARED(T, name, [N]);
// `extern __shared__ T name[];`   ->  IZ_EMU_EXTERN_SHARED(T, name);
#define IZ_EMU_SHARED(T, name, dims)                                                   \
  static const char iz_emu_key_##name = 0;                                             \
  using iz_emu_type_##name = T dims;                                                   \
  iz_emu_type_##name& name = *static_cast<iz_emu_type_##name*>(::iz_emu::StaticShared( \
      &iz_emu_key_##name, sizeof(iz_emu_type_##name), alignof(iz_emu_type_##name), #name, __FILE__, __LINE__))
#define IZ_EMU_EXTERN_SHARED(T, name) \
  T* const name = static_cast<T*>(::iz_emu::DynamicShared(#name, __FILE__, __LINE__))
