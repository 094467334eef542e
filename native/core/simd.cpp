#include "native/core/simd.h"

#include <cstdlib>
#include <cstring>

#if IZ_X86_SIMD
#include <cpuid.h>
#endif

namespace iz {

namespace {

#if IZ_X86_SIMD
// XCR0: whether the OS saves the YMM (bits 1-2) and ZMM/opmask (bits 5-7) state.
unsigned long long Xcr0() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d) || (c & (1u << 27)) == 0) return 0;  // OSXSAVE
  unsigned lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<unsigned long long>(hi) << 32) | lo;
}
#endif

SimdLevel Detect() {
  if (!SimdAllowed()) return SimdLevel::kPortable;
#if IZ_X86_SIMD
  unsigned a = 0, b = 0, c = 0, d = 0;
  const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;  // CPUID.1:ECX.F16C
  const unsigned long long xcr0 = Xcr0();
  // IZ_TARGET_AVX2 also lets the compiler use BMI1/2, LZCNT and POPCNT (the DF11 decoder's
  // shifts and counts do): every AVX2 CPU has them, but check rather than assume.
  const bool lzcnt = __get_cpuid(0x80000001, &a, &b, &c, &d) && (c & (1u << 5)) != 0;  // CPUID.80000001:ECX.ABM
  if (!f16c || !lzcnt || (xcr0 & 0x6) != 0x6 || !__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") ||
      !__builtin_cpu_supports("bmi") || !__builtin_cpu_supports("bmi2") || !__builtin_cpu_supports("popcnt"))
    return SimdLevel::kPortable;
  const char* env = std::getenv("INFERZIP_SIMD");
  if (env && std::strcmp(env, "avx2") == 0) return SimdLevel::kAvx2;
  if ((xcr0 & 0xe6) == 0xe6 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return SimdLevel::kAvx512;
  return SimdLevel::kAvx2;
#else
  return SimdLevel::kPortable;
#endif
}

}  // namespace

bool SimdAllowed() {
  static const bool allowed = [] {
    const char* env = std::getenv("INFERZIP_SIMD");
    return env == nullptr || std::strcmp(env, "portable") != 0;
  }();
  return allowed;
}

SimdLevel CpuSimdLevel() {
  static const SimdLevel level = Detect();
  return level;
}

const char* SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kAvx512:
      return "avx512";
    case SimdLevel::kAvx2:
      return "avx2";
    default:
      return "portable";
  }
}

bool HasAvx2Fma() { return CpuSimdLevel() >= SimdLevel::kAvx2; }

bool HasAvx512Vbmi2() {
  static const bool ok = [] {
#if IZ_X86_SIMD
    return CpuSimdLevel() == SimdLevel::kAvx512 && __builtin_cpu_supports("avx512vbmi") &&
           __builtin_cpu_supports("avx512vbmi2");
#else
    return false;
#endif
  }();
  return ok;
}

}  // namespace iz
