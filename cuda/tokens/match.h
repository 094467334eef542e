// CUDA side of ToMe matching (plain C++ interface; implemented in match.cu).
#pragma once

#include <cstddef>
#include <cstdint>

namespace iz::tokens::cuda {

// Same contract as iz::tokens::TomeMatch, on the GPU: host arrays in and out, the
// O(n^2 * cm) similarity and arg-max run on the device.
void TomeMatch(const float* metric, size_t n, size_t cm, const uint8_t* protect, int32_t* best, float* score);

}  // namespace iz::tokens::cuda
