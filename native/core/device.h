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
// Parses "cpu" / "cuda"; throws InvalidArgument otherwise.
Device ParseDevice(const std::string& name);

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

// Largest single allocation accepted (guards against hostile sizes): 256 GiB.
constexpr size_t kMaxAllocationBytes = size_t(256) << 30;

class DeviceMemory {
 public:
  // Throws OutOfMemory, NoDevice (CUDA requested but unavailable), InvalidArgument (size cap).
  static std::shared_ptr<DeviceMemory> Allocate(Device device, size_t bytes, bool zero = false);
  ~DeviceMemory();
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  Device device() const { return device_; }
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
  // Copies n bytes from `src` (any device) at src_offset to this at dst_offset.
  void CopyFrom(size_t dst_offset, const DeviceMemory& src, size_t src_offset, size_t n);

 private:
  DeviceMemory(Device device, void* ptr, size_t bytes) : device_(device), ptr_(ptr), bytes_(bytes) {}
  Device device_;
  void* ptr_;
  size_t bytes_;
};

using MemoryPtr = std::shared_ptr<DeviceMemory>;

}  // namespace iz
