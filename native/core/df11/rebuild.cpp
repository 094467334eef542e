// RebuildRun: the portable loop and the run-time choice of a vector one.
#include "native/core/df11/rebuild.h"

#include "native/core/simd.h"
#include "native/shared/df11/format.h"

namespace iz {
namespace df11 {

void RebuildRunPortable(const uint8_t* exps, const uint8_t* sm, uint16_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = RebuildBf16(exps[i], sm[i]);
}

void RebuildRun(const uint8_t* exps, const uint8_t* sm, uint16_t* out, size_t n, bool stream) {
  // Each vector path declines below its level (INFERZIP_SIMD caps it: tests cover every path).
  if (RebuildRunAvx512(exps, sm, out, n, stream) || RebuildRunAvx2(exps, sm, out, n, stream)) return;
  RebuildRunPortable(exps, sm, out, n);
}

}  // namespace df11
}  // namespace iz
