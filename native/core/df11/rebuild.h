// Pass 2 of the fast decoder: BF16 words from decoded exponents and the unit's
// sign+mantissa bytes (RebuildBf16 of native/shared/df11/format.h over a run).
#pragma once

#include <cstddef>
#include <cstdint>

namespace iz {
namespace df11 {

// out[i] = RebuildBf16(exps[i], sm[i]) for i < n, with AVX-512 or AVX2 when the CPU has
// it and INFERZIP_SIMD allows. `stream`: the output is too large to stay in cache, so the
// vector paths write it with non-temporal stores (no read-for-ownership).
void RebuildRun(const uint8_t* exps, const uint8_t* sm, uint16_t* out, size_t n, bool stream);

// The paths, for tests. RebuildRunAvx2 / RebuildRunAvx512 return false (writing nothing)
// where this build, the CPU or INFERZIP_SIMD rules them out.
void RebuildRunPortable(const uint8_t* exps, const uint8_t* sm, uint16_t* out, size_t n);
bool RebuildRunAvx2(const uint8_t* exps, const uint8_t* sm, uint16_t* out, size_t n, bool stream);
bool RebuildRunAvx512(const uint8_t* exps, const uint8_t* sm, uint16_t* out, size_t n, bool stream);

}  // namespace df11
}  // namespace iz
