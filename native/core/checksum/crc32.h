// CRC-32 (IEEE 802.3, the polynomial zlib, gzip, PNG and the DFloat11 manifests use): the
// checksum inferzip verifies compressed models and saved KV caches with. Node's zlib.crc32
// runs one table lookup per byte (~2 GB/s here) on the main thread; this one folds 64-256
// bytes per step with carry-less multiplication where the CPU has it (PCLMULQDQ, or
// VPCLMULQDQ on AVX-512 CPUs), chosen at run time, and falls back to slicing-by-8.
#pragma once

#include <cstddef>
#include <cstdint>

namespace iz {

// The CRC-32 of `n` bytes continuing from `crc` (0 to start; pass a previous result to
// continue), bit-identical to zlib's crc32(crc, data, n). Runs Crc32Best().
uint32_t Crc32(const uint8_t* data, size_t n, uint32_t crc = 0);

// The implementations, slowest first.
enum class Crc32Impl : int { kPortable = 0, kPclmul = 1, kVpclmul = 2 };

// The fastest implementation this build, this CPU and INFERZIP_SIMD allow (chosen once).
Crc32Impl Crc32Best();
// "portable" (slicing-by-8), "pclmulqdq" or "vpclmulqdq".
const char* Crc32ImplName(Crc32Impl impl);
// Crc32 with a given implementation, which must not be above Crc32Best() (tests run each).
uint32_t Crc32Using(Crc32Impl impl, const uint8_t* data, size_t n, uint32_t crc = 0);

}  // namespace iz
