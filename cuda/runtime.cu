#include <cuda_runtime.h>

#include <string>

#include "cuda/check.cuh"
#include "cuda/runtime.h"
#include "native/shared/error.h"

namespace iz::cuda {

void CheckStatus(cudaError_t err, const char* what, const char* file, int line) {
  if (err == cudaSuccess) return;
  cudaGetLastError();  // clear the sticky error so later calls start clean
  std::string msg = std::string(what) + " failed at " + file + ":" + std::to_string(line) + ": " +
                    cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
  Fail(err == cudaErrorMemoryAllocation ? ErrorCode::OutOfMemory : ErrorCode::Internal, msg);
}

bool QueryDevices(std::vector<DeviceInfo>* devices, std::string* reason) {
  devices->clear();
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls start clean
    if (err == cudaErrorInsufficientDriver) {
      *reason = "no CUDA driver (libcuda) is installed or it is older than the CUDA runtime inferzip was built with";
    } else if (err == cudaErrorNoDevice) {
      *reason = "the CUDA driver reports no GPU";
    } else {
      *reason = std::string("CUDA is unavailable: ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
    }
    return false;
  }
  if (count == 0) {
    *reason = "the CUDA driver reports no GPU";
    return false;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    DeviceInfo info;
    info.name = prop.name;
    info.memory = prop.totalGlobalMem;
    info.major = prop.major;
    info.minor = prop.minor;
    devices->push_back(info);
  }
  if (devices->empty()) {
    *reason = "no CUDA device could be queried";
    return false;
  }
  return true;
}

int GetDevice() {
  int device = 0;
  IZ_CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

void SetDevice(int index) { IZ_CUDA_CHECK(cudaSetDevice(index)); }

void* Malloc(size_t bytes) {
  void* ptr = nullptr;
  cudaError_t err = cudaMalloc(&ptr, bytes == 0 ? 1 : bytes);
  if (err != cudaSuccess) {
    cudaGetLastError();
    // Only a real allocation failure is OUT_OF_MEMORY; a sticky error left by a faulted kernel
    // or a lost device also surfaces here and must not read as one.
    Fail(err == cudaErrorMemoryAllocation ? ErrorCode::OutOfMemory : ErrorCode::Internal,
         "cudaMalloc of " + std::to_string(bytes) + " bytes failed: " + cudaGetErrorName(err) + " (" +
             cudaGetErrorString(err) + ")");
  }
  return ptr;
}

void Free(void* ptr) noexcept {
  if (ptr) cudaFree(ptr);
}

void CopyHostToDevice(void* dst, const void* src, size_t bytes) {
  IZ_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
void CopyDeviceToHost(void* dst, const void* src, size_t bytes) {
  IZ_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
void CopyDeviceToDevice(void* dst, const void* src, size_t bytes) {
  IZ_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}
void Memset(void* dst, int value, size_t bytes) { IZ_CUDA_CHECK(cudaMemset(dst, value, bytes)); }
void Synchronize() { IZ_CUDA_CHECK(cudaDeviceSynchronize()); }
void CheckLastError(const char* what) { CheckStatus(cudaGetLastError(), what, __FILE__, __LINE__); }

}  // namespace iz::cuda
