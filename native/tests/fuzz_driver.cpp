// Stand-in for libFuzzer when clang is unavailable: feeds a fuzz target random and
// mutated inputs for a bounded time, under whatever sanitizers the build enables.
//   fuzz_x [seconds=30] [corpus files...]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <random>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 30.0;
  std::vector<std::vector<uint8_t>> corpus;
  for (int i = 2; i < argc; ++i) {
    std::ifstream f(argv[i], std::ios::binary);
    corpus.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  std::mt19937_64 rng(12345);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  size_t runs = 0;
  std::vector<uint8_t> buf;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!corpus.empty() && rng() % 4 != 0) {
      buf = corpus[rng() % corpus.size()];
      size_t flips = 1 + rng() % 8;
      for (size_t k = 0; k < flips && !buf.empty(); ++k) {
        switch (rng() % 4) {
          case 0: buf[rng() % buf.size()] ^= uint8_t(1u << (rng() % 8)); break;
          case 1: buf[rng() % buf.size()] = uint8_t(rng()); break;
          case 2: buf.resize(rng() % (buf.size() + 1)); break;
          default: buf.insert(buf.begin() + long(rng() % (buf.size() + 1)), uint8_t(rng())); break;
        }
      }
    } else {
      buf.resize(rng() % 4096);
      for (auto& b : buf) b = uint8_t(rng());
    }
    LLVMFuzzerTestOneInput(buf.data(), buf.size());
    ++runs;
  }
  std::printf("fuzz: %zu inputs in %.0f s, no crash\n", runs, seconds);
  return 0;
}
