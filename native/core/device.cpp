#include "native/core/device.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "native/shared/error.h"
#if INFERZIP_WITH_CUDA
#include "cuda/runtime.h"
#endif

namespace iz {

const char* DeviceName(Device device) { return device == Device::Cuda ? "cuda" : "cpu"; }

Device ParseDevice(const std::string& name) {
  if (name == "cpu") return Device::Cpu;
  if (name == "cuda") return Device::Cuda;
  Fail(ErrorCode::InvalidArgument, "unknown device '" + name + "': use 'cpu' or 'cuda'");
}

std::string DeviceLabel(Device device, int index) {
  return device == Device::Cuda ? "cuda:" + std::to_string(index) : "cpu";
}

bool CudaCompiled() {
#if INFERZIP_WITH_CUDA
  return true;
#else
  return false;
#endif
}

const BackendInfo& GetBackendInfo() {
  static BackendInfo info;
  static std::once_flag once;
  std::call_once(once, [] {
    info.cuda_compiled = CudaCompiled();
#if INFERZIP_WITH_CUDA
    std::vector<cuda::DeviceInfo> found;
    std::string reason;
    info.cuda_available = cuda::QueryDevices(&found, &reason);
    for (const auto& d : found) info.devices.push_back({d.name, d.memory, d.major, d.minor});
    info.reason = reason;
#else
    info.reason = "this build of inferzip has no CUDA backend (nvcc was not found or INFERZIP_CUDA=off)";
#endif
  });
  return info;
}

void CheckCudaIndex(int index) {
  const auto& info = GetBackendInfo();
  if (!info.cuda_available)
    Fail(ErrorCode::NoDevice, "CUDA memory requested but no CUDA device is usable: " + info.reason);
  const int count = static_cast<int>(std::min<size_t>(info.devices.size(), kMaxCudaDevices));
  if (index < 0 || index >= count) {
    Fail(ErrorCode::InvalidArgument,
         "CUDA device index " + std::to_string(index) + " is out of range: " + std::to_string(count) + " CUDA device" +
             (count == 1 ? "" : "s") + " answered (cuda:0..cuda:" + std::to_string(count - 1) + ")");
  }
}

int CurrentCudaDevice() {
#if INFERZIP_WITH_CUDA
  if (!GetBackendInfo().cuda_available) return 0;
  return cuda::GetDevice();
#else
  return 0;
#endif
}

DeviceScope::DeviceScope(int index) {
#if INFERZIP_WITH_CUDA
  if (index < 0) return;
  CheckCudaIndex(index);
  const int current = cuda::GetDevice();
  if (current == index) return;
  cuda::SetDevice(index);
  previous_ = current;
#else
  (void)index;
#endif
}

DeviceScope::~DeviceScope() {
#if INFERZIP_WITH_CUDA
  if (previous_ < 0) return;
  try {
    cuda::SetDevice(previous_);
  } catch (...) {
    // Restoring a device that answered a moment ago cannot fail short of a lost driver; a
    // destructor must not throw, and the next scope sets the device it needs anyway.
  }
#endif
}

namespace {

// Index 0..kMaxCudaDevices-1: CUDA devices; kMaxCudaDevices: host memory.
struct Counter {
  std::atomic<size_t> bytes{0};
  std::atomic<size_t> peak{0};
  std::atomic<size_t> allocations{0};
};
Counter* Counters() {
  static Counter counters[kMaxCudaDevices + 1];
  return counters;
}
Counter& CounterFor(Device device, int index) {
  return Counters()[device == Device::Cuda ? std::clamp(index, 0, kMaxCudaDevices - 1) : kMaxCudaDevices];
}
void CountAllocation(Device device, int index, size_t bytes) {
  Counter& c = CounterFor(device, index);
  const size_t now = c.bytes.fetch_add(bytes) + bytes;
  c.allocations.fetch_add(1);
  size_t peak = c.peak.load();
  while (now > peak && !c.peak.compare_exchange_weak(peak, now)) {
  }
}
void CountFree(Device device, int index, size_t bytes) {
  Counter& c = CounterFor(device, index);
  c.bytes.fetch_sub(bytes);
  c.allocations.fetch_sub(1);
}
MemoryCounters Read(const Counter& c) {
  MemoryCounters m;
  m.bytes = c.bytes.load();
  m.peak = c.peak.load();
  m.allocations = c.allocations.load();
  return m;
}

void CheckRange(size_t offset, size_t n, size_t size, const char* what) {
  if (offset > size || n > size - offset) {
    Fail(ErrorCode::InvalidArgument, std::string(what) + ": range [" + std::to_string(offset) + ", " +
                                         std::to_string(offset) + "+" + std::to_string(n) +
                                         ") is outside a buffer of " + std::to_string(size) + " bytes");
  }
}
}  // namespace

MemoryCounters HostMemoryCounters() { return Read(Counters()[kMaxCudaDevices]); }
MemoryCounters CudaMemoryCounters(int index) {
  IZ_CHECK(index >= 0 && index < kMaxCudaDevices, InvalidArgument,
           "CUDA device index " + std::to_string(index) + " is outside [0, " + std::to_string(kMaxCudaDevices) + ")");
  return Read(Counters()[index]);
}

std::shared_ptr<DeviceMemory> DeviceMemory::Allocate(Device device, size_t bytes, bool zero, int index) {
  if (bytes > kMaxAllocationBytes) {
    Fail(ErrorCode::InvalidArgument, "refusing to allocate " + std::to_string(bytes) + " bytes (limit " +
                                         std::to_string(kMaxAllocationBytes) + "); the size is probably corrupt");
  }
  if (device == Device::Cuda) {
#if INFERZIP_WITH_CUDA
    if (index < 0) index = CurrentCudaDevice();
    CheckCudaIndex(index);
    DeviceScope scope(index);
    // Owned before the memset so a failing memset cannot leak the allocation.
    std::shared_ptr<DeviceMemory> mem(new DeviceMemory(device, index, cuda::Malloc(bytes), bytes));
    CountAllocation(device, index, bytes);
    if (zero) cuda::Memset(mem->data(), 0, bytes);
    return mem;
#else
    (void)index;
    Fail(ErrorCode::NoDevice, "CUDA memory requested but " + GetBackendInfo().reason);
#endif
  }
  // 64-byte alignment keeps SIMD loads and cache lines happy.
  size_t rounded = ((bytes == 0 ? 1 : bytes) + 63) & ~size_t(63);
  void* p = std::aligned_alloc(64, rounded);
  if (!p) Fail(ErrorCode::OutOfMemory, "host allocation of " + std::to_string(bytes) + " bytes failed");
  if (zero) std::memset(p, 0, rounded);
  std::shared_ptr<DeviceMemory> mem(new DeviceMemory(device, 0, p, bytes));
  CountAllocation(device, 0, bytes);
  return mem;
}

DeviceMemory::~DeviceMemory() {
  CountFree(device_, index_, bytes_);
  if (device_ == Device::Cuda) {
#if INFERZIP_WITH_CUDA
    try {
      DeviceScope scope(index_);
      cuda::Free(ptr_);
    } catch (...) {
      // Only a lost device makes the scope throw; its memory is gone with it.
    }
#endif
  } else {
    std::free(ptr_);
  }
}

void DeviceMemory::CopyFromHost(size_t offset, const void* src, size_t n) {
  CheckRange(offset, n, bytes_, "upload");
  if (n == 0) return;
  char* dst = static_cast<char*>(ptr_) + offset;
#if INFERZIP_WITH_CUDA
  if (device_ == Device::Cuda) {
    DeviceScope scope(index_);
    return cuda::CopyHostToDevice(dst, src, n);
  }
#endif
  std::memcpy(dst, src, n);
}

void DeviceMemory::CopyToHost(size_t offset, void* dst, size_t n) const {
  CheckRange(offset, n, bytes_, "download");
  if (n == 0) return;
  const char* src = static_cast<const char*>(ptr_) + offset;
#if INFERZIP_WITH_CUDA
  if (device_ == Device::Cuda) {
    DeviceScope scope(index_);
    return cuda::CopyDeviceToHost(dst, src, n);
  }
#endif
  std::memcpy(dst, src, n);
}

void DeviceMemory::CopyFrom(size_t dst_offset, const DeviceMemory& src, size_t src_offset, size_t n) {
  CheckRange(dst_offset, n, bytes_, "copy destination");
  CheckRange(src_offset, n, src.bytes_, "copy source");
  if (n == 0) return;
  char* d = static_cast<char*>(ptr_) + dst_offset;
  const char* s = static_cast<const char*>(src.ptr_) + src_offset;
#if INFERZIP_WITH_CUDA
  if (device_ == Device::Cuda && src.device_ == Device::Cuda && index_ != src.index_) {
    std::vector<char> staging(n);
    src.CopyToHost(src_offset, staging.data(), n);
    return CopyFromHost(dst_offset, staging.data(), n);
  }
  if (device_ == Device::Cuda) {
    DeviceScope scope(index_);
    return src.device_ == Device::Cuda ? cuda::CopyDeviceToDevice(d, s, n) : cuda::CopyHostToDevice(d, s, n);
  }
  if (src.device_ == Device::Cuda) {
    DeviceScope scope(src.index_);
    return cuda::CopyDeviceToHost(d, s, n);
  }
#endif
  std::memmove(d, s, n);
}

}  // namespace iz
