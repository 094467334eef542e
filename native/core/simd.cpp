#include "native/core/simd.h"

#include <cstdlib>
#include <cstring>

#if IZ_X86_SIMD
#include <cpuid.h>
#endif

namespace iz {

bool SimdAllowed() {
  static const bool allowed = [] {
    const char* env = std::getenv("INFERZIP_SIMD");
    return env == nullptr || std::strcmp(env, "portable") != 0;
  }();
  return allowed;
}

bool HasAvx2Fma() {
  static const bool ok = [] {
    if (!SimdAllowed()) return false;
#if IZ_X86_SIMD
    unsigned a = 0, b = 0, c = 0, d = 0;
    const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;  // CPUID.1:ECX.F16C
    return f16c && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return false;
#endif
  }();
  return ok;
}

}  // namespace iz
