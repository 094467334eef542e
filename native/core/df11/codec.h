// DFloat11 (v0.5.0 layout) lossless BF16 codec on the CPU: encoder, unit validation
// and a fast multi-threaded decoder. The per-thread format logic is in
// native/shared/df11/format.h, shared with the CUDA kernel.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace iz {
namespace df11 {

// One BF16 tensor to encode (raw bits).
struct Span {
  const uint16_t* data;
  size_t size;
};

// The buffers of one unit, named as in DFloat11 files.
struct EncodedUnit {
  std::vector<uint8_t> encoded_exponent;
  std::vector<uint8_t> sign_mantissa;
  std::vector<uint8_t> luts;              // (n_tables + 1) x 256
  std::vector<uint8_t> output_positions;  // u32 little-endian, blocks + 1
  std::vector<uint8_t> gaps;              // 5-bit MSB-first, padded to threads * blocks
  std::vector<int64_t> split_positions;   // cumulative sizes between the encoded tensors
  std::vector<uint32_t> encoded_inputs;   // indices of the inputs in the stream, in order
  std::vector<uint32_t> raw_inputs;       // inputs holding an exponent >= 240 (not encoded)
  uint64_t n_elements = 0;
  uint32_t n_tables = 0;
  uint32_t max_code_length = 0;
  uint64_t code_bits = 0;                 // exact Huffman payload in bits
  double entropy_bits = 0;                // n * H(exponent), the bound for the exponent codes
  std::array<uint64_t, 256> histogram{};  // exponent counts of the encoded inputs
};

struct EncodeOptions {
  int threads = 0;                // 0 = all cores
  uint32_t max_code_length = 32;  // lowered automatically until the tables fit
};

// Encodes the inputs (in order) into one unit. Inputs with an exponent >= 240
// (|x| >= 2^113, Inf, NaN) cannot be coded: they are left out and listed in
// raw_inputs, never altered. Throws InvalidArgument when the unit exceeds 2^32 - 1 elements.
EncodedUnit Encode(const std::vector<Span>& inputs, const EncodeOptions& options = {});

// Optimal length-limited code lengths for the given symbol counts (package-merge).
// Symbols with count 0 get length 0; a single used symbol gets length 1. Deterministic.
std::array<uint8_t, 256> LimitedCodeLengths(const std::array<uint64_t, 256>& counts, uint32_t max_length);

// Read-only view of a unit's buffers (from any encoder).
struct UnitView {
  const uint8_t* luts = nullptr;
  size_t luts_bytes = 0;
  const uint8_t* encoded_exponent = nullptr;
  size_t encoded_bytes = 0;
  const uint8_t* sign_mantissa = nullptr;
  size_t sign_mantissa_bytes = 0;
  const uint8_t* output_positions = nullptr;
  size_t output_positions_bytes = 0;
  const uint8_t* gaps = nullptr;
  size_t gaps_bytes = 0;
};

// What validation learns about a unit's layout.
struct UnitLayout {
  uint64_t n_elements = 0;
  uint64_t n_blocks = 0;
  uint32_t n_tables = 0;
};

// Structural checks that need no decoding (table pointers in range and acyclic within
// 4 levels, output_positions from 0, non-decreasing, ending at n, buffer lengths
// consistent). Throws CorruptData with what is wrong.
UnitLayout ValidateUnit(const UnitView& unit);

// Decodes a unit into `out` (n_elements BF16 words) using `threads` cores (0 = all).
// Validates everything first and while decoding (gaps against the stream, code counts
// against output_positions): a malformed or hostile unit throws CorruptData and never
// reads or writes out of bounds.
void DecodeCpu(const UnitView& unit, uint16_t* out, size_t out_elements, int threads = 0);

// The reference decode: runs the per-thread phase-1 / scan / phase-2 steps of the CUDA
// kernel serially over every thread of every block (for tests). Same errors.
void DecodeSimulateKernel(const UnitView& unit, uint16_t* out, size_t out_elements);

// Shannon entropy (bits per value) of an exponent histogram.
double EntropyBits(const std::array<uint64_t, 256>& histogram);

// Exponent histogram of BF16 words (multi-threaded).
std::array<uint64_t, 256> ExponentHistogram(const uint16_t* data, size_t n, int threads = 0);

}  // namespace df11
}  // namespace iz
