#include "native/core/parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace iz {

namespace {
std::atomic<int> g_threads{0};

int DefaultThreads() {
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}
}  // namespace

int CpuThreads() {
  int t = g_threads.load();
  return t > 0 ? t : DefaultThreads();
}

void SetCpuThreads(int threads) { g_threads.store(threads <= 0 ? 0 : std::min(threads, kMaxThreads)); }

void ParallelFor(size_t n, size_t grain, const std::function<void(size_t, size_t)>& body, int threads) {
  if (n == 0) return;
  if (grain == 0) grain = 1;
  size_t want = static_cast<size_t>(threads > 0 ? threads : CpuThreads());
  size_t chunks = std::min(want, (n + grain - 1) / grain);
  if (chunks <= 1) {
    body(0, n);
    return;
  }
  // Dynamic scheduling over 4x more pieces than threads evens out uneven work.
  size_t pieces = std::min(n, chunks * 4);
  size_t step = (n + pieces - 1) / pieces;
  if (step < grain) step = grain;
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&]() {
    for (;;) {
      size_t begin = next.fetch_add(step);
      if (begin >= n) return;
      size_t end = std::min(n, begin + step);
      try {
        body(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        next.store(n);  // stop handing out work
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(chunks - 1);
  for (size_t i = 1; i < chunks; ++i) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace iz
