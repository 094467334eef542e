// Runs every IZ_TEST; prints a vitest-like summary line "N passed, N failed".
#include <cstring>
#include <exception>

#include "native/tests/testing.h"

namespace iz::testing {

std::vector<TestCase>& Registry() {
  static std::vector<TestCase> tests;
  return tests;
}

static int g_failures_in_test = 0;

void ReportFailure(const char* file, int line, const std::string& what) {
  ++g_failures_in_test;
  std::fprintf(stderr, "    FAIL %s:%d: %s\n", file, line, what.c_str());
}

}  // namespace iz::testing

int main(int argc, char** argv) {
  using namespace iz::testing;
  const char* filter = argc > 1 ? argv[1] : nullptr;
  int passed = 0, failed = 0;
  for (const auto& t : Registry()) {
    if (filter && !std::strstr(t.name, filter)) continue;
    g_failures_in_test = 0;
    try {
      t.body();
    } catch (const std::exception& e) {
      ReportFailure(__FILE__, __LINE__, std::string("uncaught exception: ") + e.what());
    }
    if (g_failures_in_test == 0) {
      ++passed;
      std::printf("  ok   %s\n", t.name);
    } else {
      ++failed;
      std::printf("  FAIL %s\n", t.name);
    }
  }
  std::printf("native: %d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}
