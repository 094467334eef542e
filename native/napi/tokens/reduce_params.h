// The scalar options of TopV and Zero-TPrune, read the same way by the host entry points
// (reduce.cpp) and the device ones (reduce_device.cpp).
#pragma once

#include <napi.h>

#include "native/core/tokens/reduce.h"
#include "native/napi/options.h"

namespace iz::napi {

// { gridH, gridW, alpha, beta, gamma, eps, iters, keep, recover }; p.n set already.
inline void ReadTransportOptions(const Napi::Object& o, iz::tokens::TransportParams& p) {
  p.grid_h = OptDim(o, "gridH");
  p.grid_w = OptDim(o, "gridW");
  p.alpha = OptNumber(o, "alpha");
  p.beta = OptNumber(o, "beta");
  p.gamma = OptNumber(o, "gamma");
  p.eps = OptNumber(o, "eps");
  p.iters = OptInt(o, "iters", 1, 100000);
  p.keep = OptInt(o, "keep", 0, p.n);
  p.recover = OptInt(o, "recover", 0, p.keep);
}

// { n, c, heads, iters, similarShare, keep }.
inline void ReadGraphOptions(const Napi::Object& o, iz::tokens::GraphParams& p) {
  p.n = OptDim(o, "n");
  p.c = OptDim(o, "c");
  p.heads = OptDim(o, "heads");
  p.iters = OptInt(o, "iters", 0, 100000);
  p.similar_share = OptNumber(o, "similarShare");
  p.keep = OptInt(o, "keep", 0, p.n);
}

}  // namespace iz::napi
