#include "native/core/device.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

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

namespace {
#if INFERZIP_WITH_CUDA
void RequireCuda() {
  const auto& info = GetBackendInfo();
  if (!info.cuda_available)
    Fail(ErrorCode::NoDevice, "CUDA memory requested but no CUDA device is usable: " + info.reason);
}
#endif
void CheckRange(size_t offset, size_t n, size_t size, const char* what) {
  if (offset > size || n > size - offset) {
    Fail(ErrorCode::InvalidArgument, std::string(what) + ": range [" + std::to_string(offset) + ", " +
                                         std::to_string(offset) + "+" + std::to_string(n) +
                                         ") is outside a buffer of " + std::to_string(size) + " bytes");
  }
}
}  // namespace

std::shared_ptr<DeviceMemory> DeviceMemory::Allocate(Device device, size_t bytes, bool zero) {
  if (bytes > kMaxAllocationBytes) {
    Fail(ErrorCode::InvalidArgument, "refusing to allocate " + std::to_string(bytes) + " bytes (limit " +
                                         std::to_string(kMaxAllocationBytes) + "); the size is probably corrupt");
  }
  if (device == Device::Cuda) {
#if INFERZIP_WITH_CUDA
    RequireCuda();
    // Owned before the memset so a failing memset cannot leak the allocation.
    std::shared_ptr<DeviceMemory> mem(new DeviceMemory(device, cuda::Malloc(bytes), bytes));
    if (zero) cuda::Memset(mem->data(), 0, bytes);
    return mem;
#else
    Fail(ErrorCode::NoDevice, "CUDA memory requested but " + GetBackendInfo().reason);
#endif
  }
  // 64-byte alignment keeps SIMD loads and cache lines happy.
  size_t rounded = ((bytes == 0 ? 1 : bytes) + 63) & ~size_t(63);
  void* p = std::aligned_alloc(64, rounded);
  if (!p) Fail(ErrorCode::OutOfMemory, "host allocation of " + std::to_string(bytes) + " bytes failed");
  if (zero) std::memset(p, 0, rounded);
  return std::shared_ptr<DeviceMemory>(new DeviceMemory(device, p, bytes));
}

DeviceMemory::~DeviceMemory() {
  if (device_ == Device::Cuda) {
#if INFERZIP_WITH_CUDA
    cuda::Free(ptr_);
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
  if (device_ == Device::Cuda) return cuda::CopyHostToDevice(dst, src, n);
#endif
  std::memcpy(dst, src, n);
}

void DeviceMemory::CopyToHost(size_t offset, void* dst, size_t n) const {
  CheckRange(offset, n, bytes_, "download");
  if (n == 0) return;
  const char* src = static_cast<const char*>(ptr_) + offset;
#if INFERZIP_WITH_CUDA
  if (device_ == Device::Cuda) return cuda::CopyDeviceToHost(dst, src, n);
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
  if (device_ == Device::Cuda && src.device_ == Device::Cuda) return cuda::CopyDeviceToDevice(d, s, n);
  if (device_ == Device::Cuda) return cuda::CopyHostToDevice(d, s, n);
  if (src.device_ == Device::Cuda) return cuda::CopyDeviceToHost(d, s, n);
#endif
  std::memmove(d, s, n);
}

}  // namespace iz
