// Tests of the shared native core: errors, the parallel loop, device memory bounds.
#include <atomic>
#include <cstring>
#include <vector>

#include "native/core/device.h"
#include "native/core/error.h"
#include "native/core/parallel.h"
#include "testing.h"

IZ_TEST(error_code_names_are_stable) {
  IZ_EXPECT(std::strcmp(iz::ErrorCodeName(iz::ErrorCode::CorruptData), "CORRUPT_DATA") == 0);
  IZ_EXPECT(std::strcmp(iz::ErrorCodeName(iz::ErrorCode::Disposed), "DISPOSED") == 0);
  IZ_EXPECT_THROWS_CODE(iz::Fail(iz::ErrorCode::Io, "x"), Io);
}

IZ_TEST(parallel_for_covers_every_index_once) {
  for (size_t n : {size_t(0), size_t(1), size_t(7), size_t(1000), size_t(100003)}) {
    std::vector<std::atomic<int>> hits(n);
    iz::ParallelFor(n, 16, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i) hits[i].fetch_add(1);
    }, 4);
    for (size_t i = 0; i < n; ++i) IZ_EXPECT_EQ(hits[i].load(), 1);
  }
}

IZ_TEST(parallel_for_rethrows_the_first_error) {
  IZ_EXPECT_THROWS_CODE(iz::ParallelFor(1000, 1, [](size_t b, size_t) {
    if (b >= 500) iz::Fail(iz::ErrorCode::CorruptData, "bad block");
  }, 4), CorruptData);
}

IZ_TEST(thread_count_is_clamped) {
  iz::SetCpuThreads(5000);
  IZ_EXPECT_EQ(iz::CpuThreads(), 1024);
  iz::SetCpuThreads(0);
  IZ_EXPECT(iz::CpuThreads() >= 1);
}

IZ_TEST(host_memory_copies_are_bounds_checked) {
  auto mem = iz::DeviceMemory::Allocate(iz::Device::Cpu, 16, true);
  uint8_t src[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  mem->CopyFromHost(8, src, 8);
  uint8_t dst[16];
  mem->CopyToHost(0, dst, 16);
  IZ_EXPECT_EQ(int(dst[0]), 0);
  IZ_EXPECT_EQ(int(dst[15]), 8);
  IZ_EXPECT_THROWS_CODE(mem->CopyFromHost(9, src, 8), InvalidArgument);
  IZ_EXPECT_THROWS_CODE(mem->CopyToHost(SIZE_MAX, dst, 2), InvalidArgument);
  auto other = iz::DeviceMemory::Allocate(iz::Device::Cpu, 4);
  IZ_EXPECT_THROWS_CODE(other->CopyFrom(0, *mem, 14, 4), InvalidArgument);
}

IZ_TEST(absurd_allocations_are_refused_not_attempted) {
  IZ_EXPECT_THROWS_CODE(iz::DeviceMemory::Allocate(iz::Device::Cpu, SIZE_MAX), InvalidArgument);
  IZ_EXPECT_THROWS_CODE(iz::DeviceMemory::Allocate(iz::Device::Cpu, iz::kMaxAllocationBytes + 1), InvalidArgument);
}

IZ_TEST(cuda_memory_without_a_device_is_no_device) {
  if (iz::GetBackendInfo().cuda_available) return;  // only meaningful without a GPU
  IZ_EXPECT_THROWS_CODE(iz::DeviceMemory::Allocate(iz::Device::Cuda, 16), NoDevice);
}
