// A tiny self-registering test framework for the native core (no downloads needed).
//   IZ_TEST(suite_name) { IZ_EXPECT(cond); IZ_EXPECT_THROWS_CODE(expr, InvalidArgument); }
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "native/shared/error.h"

namespace iz::testing {

// n deterministic pseudo-random floats in [lo, lo + 1) (a 32-bit LCG: same values on every platform).
inline std::vector<float> Noise(size_t n, uint32_t seed, float lo = -0.5f) {
  std::vector<float> v(n);
  for (auto& x : v) {
    seed = seed * 1664525u + 1013904223u;
    x = static_cast<float>(seed >> 8) / 16777216.0f + lo;
  }
  return v;
}

struct TestCase {
  const char* name;
  std::function<void()> body;
};

std::vector<TestCase>& Registry();
void ReportFailure(const char* file, int line, const std::string& what);

struct Registrar {
  Registrar(const char* name, std::function<void()> body) { Registry().push_back({name, std::move(body)}); }
};

}  // namespace iz::testing

#define IZ_TEST_CONCAT2(a, b) a##b
#define IZ_TEST_CONCAT(a, b) IZ_TEST_CONCAT2(a, b)
#define IZ_TEST(name)                                                                                   \
  static void IZ_TEST_CONCAT(iz_test_, name)();                                                         \
  static ::iz::testing::Registrar IZ_TEST_CONCAT(iz_reg_, name)(#name, IZ_TEST_CONCAT(iz_test_, name)); \
  static void IZ_TEST_CONCAT(iz_test_, name)()

#define IZ_EXPECT(cond)                                                   \
  do {                                                                    \
    if (!(cond)) ::iz::testing::ReportFailure(__FILE__, __LINE__, #cond); \
  } while (0)

#define IZ_EXPECT_EQ(a, b)                                                                                \
  do {                                                                                                    \
    auto iz_a_ = (a);                                                                                     \
    auto iz_b_ = (b);                                                                                     \
    if (!(iz_a_ == iz_b_))                                                                                \
      ::iz::testing::ReportFailure(                                                                       \
          __FILE__, __LINE__,                                                                             \
          std::string(#a " == " #b " (") + std::to_string(iz_a_) + " vs " + std::to_string(iz_b_) + ")"); \
  } while (0)

// Expects `expr` to throw iz::Error with the given ErrorCode (and nothing else).
#define IZ_EXPECT_THROWS_CODE(expr, code_name)                                                                        \
  do {                                                                                                                \
    bool iz_threw_ = false;                                                                                           \
    try {                                                                                                             \
      (void)(expr);                                                                                                   \
    } catch (const ::iz::Error& e) {                                                                                  \
      iz_threw_ = true;                                                                                               \
      if (e.code() != ::iz::ErrorCode::code_name)                                                                     \
        ::iz::testing::ReportFailure(__FILE__, __LINE__,                                                              \
                                     std::string(#expr " threw ") + ::iz::ErrorCodeName(e.code()) + ": " + e.what()); \
    } catch (const std::exception& e) {                                                                               \
      iz_threw_ = true;                                                                                               \
      ::iz::testing::ReportFailure(__FILE__, __LINE__, std::string(#expr " threw a non-iz error: ") + e.what());      \
    }                                                                                                                 \
    if (!iz_threw_) ::iz::testing::ReportFailure(__FILE__, __LINE__, #expr " did not throw " #code_name);             \
  } while (0)
