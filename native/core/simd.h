// Whether CPU kernels may use the vector instructions (AVX2, FMA, F16C) they find at run
// time. INFERZIP_SIMD=portable forces the portable loops everywhere: the tests run both paths
// on one machine, and a user can rule out a SIMD path when chasing a numerical difference.
#pragma once

// Whether this build contains the x86-64 AVX2 code paths at all (compiled with target
// attributes, picked at run time). INFERZIP_NO_X86_SIMD leaves them out, as a build for
// another architecture does: CI builds that way so the portable-only build keeps compiling.
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && !defined(INFERZIP_NO_X86_SIMD)
#define IZ_X86_SIMD 1
#else
#define IZ_X86_SIMD 0
#endif

namespace iz {

// False when INFERZIP_SIMD=portable (read once, on first use).
bool SimdAllowed();

// True when SimdAllowed() and the CPU runs AVX2 + FMA + F16C.
bool HasAvx2Fma();

}  // namespace iz
