// The host-side stages of TopV and Zero-TPrune that the CPU backend and the CUDA dispatch
// (native/core/tokens/reduce_device.cpp) share: parameter checks, the selection from the
// scores (top-k, recovery, tie rules) and Zero-TPrune's I/S-stage bookkeeping. The heavy
// parts (cost matrix, Sinkhorn, PageRank, similarities) run on either backend and hand
// their small per-token vectors to these.
#pragma once

#include <cstdint>
#include <vector>

#include "native/core/tokens/reduce.h"

namespace iz::tokens {

// --- TopV -------------------------------------------------------------------
// N, C, grid, eps and iters (ShapeMismatch / InvalidArgument).
void CheckTransportShape(const TransportParams& p);
// keep in [0, N], recover in [0, keep].
void CheckTransportCounts(const TransportParams& p);
// InvalidArgument when a score is not finite (the plan overflowed: eps too small).
void CheckTransportScores(const std::vector<double>& score, double eps);
// The kept set from the per-token scores [n]: top keep - recover by score (ties: lower
// index), then `recover` tokens spread evenly over the rest.
ScoredSelection SelectByTransportScores(const std::vector<double>& score, const TransportParams& p);
// Every token dropped (keep == 0).
ScoredSelection DropAll(int64_t n);

// --- Zero-TPrune ------------------------------------------------------------
// N, C, keep and similarShare.
void CheckGraphParams(const GraphParams& p);
// heads, N and iters of the I stage.
void CheckGraphShape(int64_t heads, int64_t n, int64_t iters);
// Throws the I stage's error for attention element k holding x (non-finite or negative).
[[noreturn]] void FailBadAttention(float x, int64_t k);

struct GraphStages {
  std::vector<int32_t> list;  // I-stage survivors, most important first
  int64_t rs = 0;             // tokens the S stage drops
  int64_t nb = 0, na = 0;     // S stage: list[0, nb) is B, list[nb, nb + na) is A (when rs > 0)
};
// The I stage from the importances [n].
GraphStages PlanGraphStages(const std::vector<double>& imp, const GraphParams& p);
// The S stage from sim [na] (each A token's highest cosine with a B token; empty when rs
// == 0) and the selection with the importances as scores.
ScoredSelection FinishGraphStages(const GraphStages& st, const std::vector<double>& sim, const std::vector<double>& imp,
                                  const GraphParams& p);

}  // namespace iz::tokens
