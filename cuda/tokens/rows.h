// Plain C++ interface to the row kernels TopV and Zero-TPrune share (cuda/tokens/rows.cu):
// input checks, f64 squared norms and all-pairs dot products in channel order (the sums
// of native/core/tokens/pair_dots.h, bit for bit), and the gather of kept rows. No CUDA
// headers; only used when built with INFERZIP_WITH_CUDA. Pointers are device pointers
// unless named *_host; every call runs on the calling thread's current device.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cuda/runtime.h"
#include "native/shared/tokens/tome_hd.h"

namespace iz::cuda::tokens {

// Blocks of `threads` covering `count` elements in one 1-D launch; Unsupported (naming `what`)
// past the grid's limit.
unsigned LaunchBlocks(int64_t count, int threads, const char* what);

// Index of the first element of x [count] (dtype dt) that is NaN or +-Inf, or with
// reject_negative also < 0; -1 when there is none. *value gets that element.
int64_t FirstBadElement(const void* x, iz::tokens::TokDType dt, int64_t count, bool reject_negative, float* value);

// out[i] = sum over k of double(x[row(i)][k])^2 in channel order, row(i) = ids ? ids[i] : i.
void SquaredNormsF64(const void* x, iz::tokens::TokDType dt, const int32_t* ids, int64_t rows, int64_t c, double* out);

// out[i * stride_i + j * stride_j] = sum over k of double(a[row_a(i)][k]) * double(b[row_b(j)][k]),
// each sum in channel order with separate multiply and add; row_a(i) = ids_a ? ids_a[i] : i.
struct RowSet {
  const void* x = nullptr;
  iz::tokens::TokDType dt = iz::tokens::TokDType::F32;
  const int32_t* ids = nullptr;
  int64_t count = 0;
};
void PairDotsF64(const RowSet& a, const RowSet& b, int64_t c, double* out, int64_t stride_i, int64_t stride_j);

// dst [batch, k, row_bytes] = src [batch, n, row_bytes] at the rows kept_host [batch * k]
// (indices within each batch item). row_bytes is a multiple of 2.
void GatherRows(const void* src, int64_t batch, int64_t n, int64_t row_bytes, const std::vector<int32_t>& kept_host,
                int64_t k, void* dst);

}  // namespace iz::cuda::tokens
