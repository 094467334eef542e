// Memory on the active backend: host memory for the CPU backend, cudaMalloc for
// CUDA. Held through shared_ptr so an async job keeps its buffers alive even if
// JavaScript disposes them mid-flight (the memory is freed when the job ends).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace iz {

enum class Device { Cpu, Cuda };

const char* DeviceName(Device device);
// Parses "cpu" / "cuda"; throws InvalidArgument otherwise. The CUDA device index travels
// beside it as a number (lib/ resolves 'cuda' and 'cuda:N' to one).
Device ParseDevice(const std::string& name);

// Most CUDA devices inferzip addresses (per-device counters are sized by it).
constexpr int kMaxCudaDevices = 64;
// "cpu" or "cuda:N".
std::string DeviceLabel(Device device, int index);

// True when this addon was compiled with the CUDA backend.
bool CudaCompiled();

struct GpuInfo {
  std::string name;
  size_t memory = 0;
  int major = 0;
  int minor = 0;
};

struct BackendInfo {
  bool cuda_compiled = false;
  bool cuda_available = false;  // a device answered
  std::vector<GpuInfo> devices;
  std::string reason;  // why CUDA is not available (empty when it is)
};

// Queries once and caches: probing the driver is slow and its answer does not change.
const BackendInfo& GetBackendInfo();

// Checks a CUDA device index against the devices that answered (InvalidArgument naming the
// index and the count; NoDevice when CUDA is unusable).
void CheckCudaIndex(int index);

// The CUDA device this host thread allocates on and launches to (0 without CUDA).
int CurrentCudaDevice();

// Makes `index` the calling host thread's CUDA device until the scope ends, then restores the
// previous one (cudaSetDevice is per host thread: every core entry point that touches CUDA
// memory opens one for the memory's device, on whichever thread it runs). A no-op for the CPU
// (index < 0) and in builds without CUDA.
class DeviceScope {
 public:
  explicit DeviceScope(int index);
  ~DeviceScope();
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  [[maybe_unused]] int previous_ = -1;  // unused in builds without CUDA
};

// Bytes inferzip holds on one device now, its peak and live allocation count.
struct MemoryCounters {
  size_t bytes = 0;
  size_t peak = 0;
  size_t allocations = 0;
};
// Host memory owned by DeviceMemory (the CPU backend's "device").
MemoryCounters HostMemoryCounters();
// CUDA device `index` (0 <= index < kMaxCudaDevices).
MemoryCounters CudaMemoryCounters(int index);

// Largest single allocation accepted (guards against hostile sizes): 256 GiB.
constexpr size_t kMaxAllocationBytes = size_t(256) << 30;

class DeviceMemory {
 public:
  // Throws OutOfMemory, NoDevice (CUDA requested but unavailable), InvalidArgument (size cap,
  // device index). CUDA memory goes to device `index`, or with index -1 to the calling
  // thread's current device (code inside a DeviceScope).
  static std::shared_ptr<DeviceMemory> Allocate(Device device, size_t bytes, bool zero = false, int index = -1);
  ~DeviceMemory();
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  Device device() const { return device_; }
  // The CUDA device index (0 for host memory).
  int index() const { return index_; }
  bool cuda() const { return device_ == Device::Cuda; }
  // "cpu" or "cuda:N".
  std::string label() const { return DeviceLabel(device_, index_); }
  size_t bytes() const { return bytes_; }
  void* data() { return ptr_; }
  const void* data() const { return ptr_; }
  template <class T>
  T* as() {
    return static_cast<T*>(ptr_);
  }
  template <class T>
  const T* as() const {
    return static_cast<const T*>(ptr_);
  }

  // Bounds-checked copies between this memory and host memory.
  void CopyFromHost(size_t offset, const void* src, size_t n);
  void CopyToHost(size_t offset, void* dst, size_t n) const;
  // Copies n bytes from `src` (any device) at src_offset to this at dst_offset; between two
  // CUDA devices the bytes go through the host (no peer access is assumed).
  void CopyFrom(size_t dst_offset, const DeviceMemory& src, size_t src_offset, size_t n);

 private:
  DeviceMemory(Device device, int index, void* ptr, size_t bytes)
      : device_(device), index_(index), ptr_(ptr), bytes_(bytes) {}
  Device device_;
  int index_;
  void* ptr_;
  size_t bytes_;
};

using MemoryPtr = std::shared_ptr<DeviceMemory>;

}  // namespace iz
