// Plain C++ interface to the TopV kernels (cuda/tokens/transport.cu). No CUDA headers;
// only used when built with INFERZIP_WITH_CUDA. Tensor pointers are device pointers of one
// batch item; the call runs on the calling thread's current device.
#pragma once

#include <cstdint>
#include <vector>

#include "native/shared/tokens/reduce_hd.h"
#include "native/shared/tokens/tome_hd.h"

namespace iz::cuda::tokens {

struct TransportInputs {
  const void* visual = nullptr;  // [n, c]
  iz::tokens::TokDType visual_dt = iz::tokens::TokDType::F32;
  // Targets with positions: `positioned` [positioned_rows, c] (the layer's targets, or the
  // visual tokens themselves when neither targets nor text are given; row j sits at grid
  // position j), then `text` [text_rows, c] without positions.
  const void* positioned = nullptr;
  iz::tokens::TokDType positioned_dt = iz::tokens::TokDType::F32;
  int64_t positioned_rows = 0;
  const void* text = nullptr;
  iz::tokens::TokDType text_dt = iz::tokens::TokDType::F32;
  int64_t text_rows = 0;
};

struct TransportKnobs {
  int64_t n = 0, c = 0;
  iz::tokens::TransportGeometry geometry;
  double alpha = 1, beta = 0, gamma = 0, eps = 0.1;
  int64_t iters = 1;
};

// The per-token TopV scores [n] (-n x the transport cost of the token's mass), copied to
// the host: cost matrix, row-shifted kernel, `iters` Sinkhorn rounds and the scores, every
// sum in the CPU backend's order. Inputs must already be checked (finite).
std::vector<double> TransportScores(const TransportInputs& in, const TransportKnobs& k);

}  // namespace iz::cuda::tokens
