// Plain C++ interface to the DFloat11 CUDA decode kernel (cuda/df11/decode.cu).
// No CUDA headers here: the CPU backend and the N-API layer include it freely; it is
// only implemented when the addon is built with INFERZIP_WITH_CUDA.
#pragma once

#include <cstdint>

namespace iz {
namespace cuda {
namespace df11 {

// A unit whose buffers all live in device memory. The host must have validated the
// layout first (iz::df11::ValidateUnit on host copies of luts and output_positions):
// n_tables, n_blocks and max_block_elements come from that validation.
struct DeviceUnit {
  const uint8_t* luts = nullptr;  // (n_tables + 1) x 256
  uint32_t n_tables = 0;
  const uint8_t* encoded_exponent = nullptr;
  uint64_t encoded_bytes = 0;
  const uint8_t* sign_mantissa = nullptr;     // n_elements bytes
  const uint8_t* output_positions = nullptr;  // n_blocks + 1 u32 (little-endian; device reads them as u32)
  const uint8_t* gaps = nullptr;
  uint64_t gaps_bytes = 0;
  uint64_t n_elements = 0;
  uint64_t n_blocks = 0;
  uint32_t max_block_elements = 0;  // largest output_positions[b + 1] - output_positions[b]
};

// Decodes the unit into `out` (n_elements BF16 words, device memory) on `stream`
// (a cudaStream_t, or nullptr for the default stream) and waits for it. Blocks whose
// output fits the shared-memory staging buffer write coalesced; larger ones write
// directly. Throws iz::Error CorruptData when the kernel finds the unit malformed
// (bad table entries, codes that disagree with gaps or output_positions); every read
// and write stays inside the buffers either way.
void Decode(const DeviceUnit& unit, uint16_t* out, void* stream = nullptr);

}  // namespace df11
}  // namespace cuda
}  // namespace iz
