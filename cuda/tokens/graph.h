// Plain C++ interface to the Zero-TPrune kernels (cuda/tokens/graph.cu). No CUDA headers;
// only used when built with INFERZIP_WITH_CUDA. Tensor pointers are device pointers of one
// batch item; each call runs on the calling thread's current device.
#pragma once

#include <cstdint>
#include <vector>

#include "native/shared/tokens/tome_hd.h"

namespace iz::cuda::tokens {

// I stage: the weighted PageRank of each head of attention [heads, n, n] (row j = query j
// over the keys) run `iters` times from s = 1/n, then the mean over heads, [n] on the host.
// Same sums in the same order as the CPU backend. The attention must already be checked
// (finite, >= 0).
std::vector<double> GraphImportance(const void* attention, iz::tokens::TokDType dt, int64_t heads, int64_t n,
                                    int64_t iters);

// S stage: for each A token list_host[nb + k] (k < na), its highest cosine with a B token
// list_host[q] (q < nb) of tokens [*, c], [na] on the host.
std::vector<double> GraphSimilarity(const void* tokens, iz::tokens::TokDType dt, int64_t c,
                                    const std::vector<int32_t>& list_host, int64_t nb, int64_t na);

}  // namespace iz::cuda::tokens
