// Decodes a DFloat11 unit wherever its output lives: the CPU decoder for host memory,
// the CUDA kernel for CUDA memory (uploading host-side unit buffers as needed). The
// N-API layer only converts arguments; this is the one place that picks the device.
#pragma once

#include <cstddef>
#include <cstdint>

#include "native/core/device.h"

namespace iz::df11 {

// One buffer of a unit: host bytes, or DeviceMemory (host or CUDA) that keeps them alive.
struct UnitBuffer {
  const uint8_t* data = nullptr;
  size_t bytes = 0;
  MemoryPtr memory;  // null for plain host bytes
  bool cuda() const { return memory && memory->device() == Device::Cuda; }
};

struct UnitBuffers {
  UnitBuffer luts, encoded_exponent, sign_mantissa, output_positions, gaps;
};

// Where the decoded BF16 words go: `elements` words at `out` (host or CUDA memory).
struct DecodeTarget {
  uint16_t* out = nullptr;
  size_t elements = 0;
  bool cuda = false;
  int device_index = 0;  // the CUDA device of `out` (the decode runs there)
};

// Throws CorruptData for a damaged unit, ShapeMismatch when `elements` is not the unit's size.
void DecodeUnit(const UnitBuffers& unit, const DecodeTarget& target, int threads);

// The CUDA kernel's per-thread steps, run serially on the CPU (host output only).
void SimulateUnit(const UnitBuffers& unit, const DecodeTarget& target);

}  // namespace iz::df11
