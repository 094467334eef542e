// Splits loops across CPU cores. Each call starts its own short-lived threads, so
// concurrent async operations never wait on each other's work queue.
#pragma once

#include <cstddef>
#include <functional>

namespace iz {

// The most CPU threads one call may ask for (exported to TypeScript by limits()).
constexpr int kMaxThreads = 1024;

// Number of threads CPU kernels use (defaults to the hardware concurrency).
int CpuThreads();
// Sets it; 0 restores the default. Clamped to [1, kMaxThreads].
void SetCpuThreads(int threads);

// Calls body(begin, end) on disjoint ranges covering [0, n). Ranges hold at least
// `grain` items (except the last); `threads` <= 0 means CpuThreads().
// The first exception thrown by a body is rethrown on the calling thread.
void ParallelFor(size_t n, size_t grain, const std::function<void(size_t, size_t)>& body, int threads = 0);

}  // namespace iz
