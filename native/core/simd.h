// One switch for the CPU kernels' vector paths. Kernels are written once (a body templated
// on the SIMD level, or plain loops the compiler vectorizes), compiled once per x86 target
// through __attribute__((target)), and one of the variants is picked at run time from the
// CPU's features: the pattern of zstd's HUF_DGEN. INFERZIP_SIMD=portable forces the portable
// loops everywhere (the tests run both paths on one machine, and a user can rule out a SIMD
// path when chasing a numerical difference); INFERZIP_SIMD=avx2 caps the choice at AVX2.
#pragma once

// Whether this build contains the x86-64 vector code paths at all (compiled with target
// attributes, picked at run time). INFERZIP_NO_X86_SIMD leaves them out, as a build for
// another architecture does: CI builds that way so the portable-only build keeps compiling.
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__)) && \
    !defined(INFERZIP_NO_X86_SIMD)
#define IZ_X86_SIMD 1
#else
#define IZ_X86_SIMD 0
#endif

#if defined(__GNUC__) || defined(__clang__)
#define IZ_FORCE_INLINE inline __attribute__((always_inline))
#else
#define IZ_FORCE_INLINE inline
#endif

#if IZ_X86_SIMD
// The feature sets of the two x86 levels. AVX2 implies FMA, F16C, BMI1/2, LZCNT and POPCNT
// here (every AVX2 CPU shipped has them, and the run-time check asks for all); AVX-512 is the Skylake-X /
// Zen 4 subset F + BW + DQ + VL, plus VBMI2 checked on its own (HasAvx512Vbmi2).
#define IZ_TARGET_AVX2 __attribute__((target("avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt")))
#define IZ_TARGET_AVX512 \
  __attribute__((target("avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt,avx512f,avx512bw,avx512dq,avx512vl")))
#define IZ_TARGET_AVX512_VBMI2 \
  __attribute__((              \
      target("avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt,avx512f,avx512bw,avx512dq,avx512vl,avx512vbmi,avx512vbmi2")))
#endif

namespace iz {

// The vector instruction sets a kernel may use, in increasing order.
enum class SimdLevel : int { kPortable = 0, kAvx2 = 1, kAvx512 = 2 };

// False when INFERZIP_SIMD=portable (read once, on first use).
bool SimdAllowed();

// The highest level this build, this CPU (and its OS's saved register state) and
// INFERZIP_SIMD allow; read once.
SimdLevel CpuSimdLevel();

// "portable", "avx2" or "avx512".
const char* SimdLevelName(SimdLevel level);

// True when CpuSimdLevel() >= kAvx2 (AVX2 + FMA + F16C).
bool HasAvx2Fma();

// True when CpuSimdLevel() == kAvx512 and the CPU also has AVX512-VBMI and VBMI2.
bool HasAvx512Vbmi2();

// Picks one of a kernel's per-level variants (nullptr where a variant is not built).
template <typename Fn>
Fn PickSimd(Fn portable, Fn avx2, Fn avx512) {
  const SimdLevel l = CpuSimdLevel();
  if (l >= SimdLevel::kAvx512 && avx512) return avx512;
  if (l >= SimdLevel::kAvx2 && avx2) return avx2;
  return portable;
}

}  // namespace iz

// IZ_SIMD_DGEN(ret, name, params, args): given a body
//   template <iz::SimdLevel L> IZ_FORCE_INLINE ret name##Body params
// defines name##Portable / name##Avx2 / name##Avx512 (each the same body compiled for its
// target, so loops and `if constexpr (L == ...)` intrinsic paths vectorize for it) and
//   ret name params
// which calls the variant CpuSimdLevel() picks (chosen once). params and args are
// parenthesized lists: IZ_SIMD_DGEN(void, Scale, (float* x, int n), (x, n)).
#if IZ_X86_SIMD
#define IZ_SIMD_DGEN(ret, name, params, args)                                                           \
  static ret name##Portable params { return name##Body<::iz::SimdLevel::kPortable> args; }              \
  static IZ_TARGET_AVX2 ret name##Avx2 params { return name##Body<::iz::SimdLevel::kAvx2> args; }       \
  static IZ_TARGET_AVX512 ret name##Avx512 params { return name##Body<::iz::SimdLevel::kAvx512> args; } \
  static ret name params {                                                                              \
    static const auto fn = ::iz::PickSimd(&name##Portable, &name##Avx2, &name##Avx512);                 \
    return fn args;                                                                                     \
  }
#else
#define IZ_SIMD_DGEN(ret, name, params, args)                                              \
  static ret name##Portable params { return name##Body<::iz::SimdLevel::kPortable> args; } \
  static ret name params { return name##Portable args; }
#endif
