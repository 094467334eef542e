// The one way kernels' host code checks the CUDA runtime: IZ_CUDA_CHECK(cudaCall(...)) throws
// iz::Error (OUT_OF_MEMORY for allocation failures, INTERNAL otherwise) naming the failed
// call, its file and line, and CUDA's error name and text. Included by .cu files only.
#pragma once

#include <cuda_runtime.h>

namespace iz::cuda {

// Clears the sticky last error and throws when `err` is not cudaSuccess.
void CheckStatus(cudaError_t err, const char* what, const char* file, int line);

}  // namespace iz::cuda

#define IZ_CUDA_CHECK(expr) ::iz::cuda::CheckStatus((expr), #expr, __FILE__, __LINE__)
