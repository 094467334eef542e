// Macros that let one function body compile for both the CUDA kernels and the
// C++ CPU backend, so CPU tests exercise the exact logic the GPU runs.
#pragma once

#if defined(__CUDACC__)
#define IZ_HD __host__ __device__
#define IZ_HD_INLINE __host__ __device__ __forceinline__
#define IZ_DEVICE __device__
#else
#define IZ_HD
#define IZ_HD_INLINE inline
#define IZ_DEVICE
#endif

#include <cstdint>
