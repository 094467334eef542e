// Plain C++ interface to the CUDA runtime, implemented in runtime.cu. Nothing here
// includes CUDA headers, so the CPU backend and N-API layer compile without nvcc.
// Only declared when the addon is built with INFERZIP_WITH_CUDA.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace iz::cuda {

struct DeviceInfo {
  std::string name;
  size_t memory = 0;
  int major = 0;
  int minor = 0;
};

// Lists usable devices. Returns false (and a reason) when none answers: no driver
// (cudaErrorInsufficientDriver), no GPU (cudaErrorNoDevice) and so on.
bool QueryDevices(std::vector<DeviceInfo>* devices, std::string* reason);

// The calling host thread's current device, and setting it (cudaGetDevice / cudaSetDevice:
// the runtime keeps one per host thread). SetDevice throws iz::Error on a bad index.
int GetDevice();
void SetDevice(int index);

// Each throws iz::Error (OutOfMemory, Internal) with the CUDA error string. Malloc allocates
// on the calling thread's current device.
void* Malloc(size_t bytes);
void Free(void* ptr) noexcept;
void CopyHostToDevice(void* dst, const void* src, size_t bytes);
void CopyDeviceToHost(void* dst, const void* src, size_t bytes);
void CopyDeviceToDevice(void* dst, const void* src, size_t bytes);
void Memset(void* dst, int value, size_t bytes);
void Synchronize();
// Throws iz::Error when the last kernel launch failed.
void CheckLastError(const char* what);

// Device scratch memory on the current device, freed on every exit path.
class Scratch {
 public:
  explicit Scratch(size_t bytes) : p_(bytes ? Malloc(bytes) : nullptr) {}
  ~Scratch() { Free(p_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }

 private:
  void* p_;
};

}  // namespace iz::cuda
