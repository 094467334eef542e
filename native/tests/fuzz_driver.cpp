// Stand-in for libFuzzer when clang is unavailable (g++ builds): replays every corpus
// input once, then feeds the target mutated corpus inputs and random bytes until the
// time is up, under whatever sanitizers the build enables. Not coverage-guided, but it
// runs the same LLVMFuzzerTestOneInput, so every fuzz target is exercised everywhere.
//   fuzz_x [seconds=30] [corpus files or directories...]
// When a sanitizer reports an error, the input that caused it is written to
// ./fuzz-crash-input before the process dies (replay it: fuzz_x 0 fuzz-crash-input).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
// From the sanitizer runtime when linked (GCC and clang both ship it); null otherwise.
extern "C" void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

namespace {

std::vector<uint8_t> ReadFile(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void AddInputs(const char* arg, std::vector<std::vector<uint8_t>>* corpus) {
  std::error_code ec;
  std::filesystem::path p(arg);
  if (std::filesystem::is_directory(p, ec)) {
    for (const auto& entry : std::filesystem::recursive_directory_iterator(p, ec)) {
      if (entry.is_regular_file()) corpus->push_back(ReadFile(entry.path()));
    }
  } else if (std::filesystem::is_regular_file(p, ec)) {
    corpus->push_back(ReadFile(p));
  } else {
    std::fprintf(stderr, "fuzz: skipping '%s' (not a file or directory)\n", arg);
  }
}

const std::vector<uint8_t>* g_current = nullptr;

// Runs when a sanitizer is about to kill the process: leave a reproducer behind.
void SaveCrashInput() {
  if (!g_current) return;
  if (FILE* f = std::fopen("fuzz-crash-input", "wb")) {
    std::fwrite(g_current->data(), 1, g_current->size(), f);
    std::fclose(f);
    std::fprintf(stderr, "fuzz: the failing input (%zu bytes) is in ./fuzz-crash-input\n", g_current->size());
  }
}

void RunOne(const std::vector<uint8_t>& input) {
  g_current = &input;
  LLVMFuzzerTestOneInput(input.data(), input.size());
  g_current = nullptr;
}

void Mutate(std::vector<uint8_t>* buf, std::mt19937_64& rng) {
  size_t edits = 1 + rng() % 8;
  for (size_t k = 0; k < edits; ++k) {
    if (buf->empty()) {
      buf->push_back(uint8_t(rng()));
      continue;
    }
    size_t at = rng() % buf->size();
    switch (rng() % 6) {
      case 0:
        (*buf)[at] ^= uint8_t(1u << (rng() % 8));
        break;  // bit flip
      case 1:
        (*buf)[at] = uint8_t(rng());
        break;  // random byte
      case 2:
        buf->resize(rng() % (buf->size() + 1));
        break;  // truncate
      case 3:
        buf->insert(buf->begin() + long(at), uint8_t(rng()));
        break;   // insert
      case 4: {  // interesting value
        static const uint8_t kInteresting[] = {0, 1, 0x7f, 0x80, 0xff};
        (*buf)[at] = kInteresting[rng() % sizeof(kInteresting)];
        break;
      }
      default: {  // copy a chunk from elsewhere in the input
        size_t from = rng() % buf->size();
        size_t n = std::min<size_t>(1 + rng() % 16, std::min(buf->size() - at, buf->size() - from));
        std::copy(buf->begin() + long(from), buf->begin() + long(from + n), buf->begin() + long(at));
        break;
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 30.0;
  std::vector<std::vector<uint8_t>> corpus;
  for (int i = 2; i < argc; ++i) AddInputs(argv[i], &corpus);

  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(SaveCrashInput);

  size_t runs = 0;
  for (const auto& input : corpus) {  // the seeds themselves, unmodified
    RunOne(input);
    ++runs;
  }
  std::mt19937_64 rng(12345);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::vector<uint8_t> buf;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!corpus.empty() && rng() % 4 != 0) {
      buf = corpus[rng() % corpus.size()];
      Mutate(&buf, rng);
    } else {
      buf.resize(rng() % 4096);
      for (auto& b : buf) b = uint8_t(rng());
    }
    RunOne(buf);
    ++runs;
  }
  std::printf("fuzz: %zu inputs (%zu seeds) in %.0f s, no crash\n", runs, corpus.size(), seconds);
  return 0;
}
