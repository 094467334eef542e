// Whether CPU kernels may use the vector instructions (AVX2, FMA, F16C) they find at run
// time. INFERZIP_SIMD=portable forces the portable loops everywhere: the tests run both paths
// on one machine, and a user can rule out a SIMD path when chasing a numerical difference.
#pragma once

namespace iz {

// False when INFERZIP_SIMD=portable (read once, on first use).
bool SimdAllowed();

// True when SimdAllowed() and the CPU runs AVX2 + FMA + F16C.
bool HasAvx2Fma();

}  // namespace iz
