// RebuildRun: the portable loop and the run-time choice of the AVX2 one.
#include "native/core/df11/rebuild.h"

#include "native/core/simd.h"
#include "native/shared/df11/format.h"

namespace iz {
namespace df11 {

void RebuildRunPortable(const uint8_t* exps, const uint8_t* sm, uint16_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = RebuildBf16(exps[i], sm[i]);
}

void RebuildRun(const uint8_t* exps, const uint8_t* sm, uint16_t* out, size_t n, bool stream) {
  // RebuildRunAvx2 declines below the avx2 level (INFERZIP_SIMD=portable: tests cover both paths).
  if (!RebuildRunAvx2(exps, sm, out, n, stream)) RebuildRunPortable(exps, sm, out, n);
}

}  // namespace df11
}  // namespace iz
