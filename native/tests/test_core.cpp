// Tests of the shared native core: errors, the parallel loop, device memory bounds.
#include <atomic>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "native/core/device.h"
#include "native/core/parallel.h"
#include "native/shared/error.h"
#include "native/tests/testing.h"

IZ_TEST(error_code_names_are_stable) {
  IZ_EXPECT(std::strcmp(iz::ErrorCodeName(iz::ErrorCode::CorruptData), "CORRUPT_DATA") == 0);
  IZ_EXPECT(std::strcmp(iz::ErrorCodeName(iz::ErrorCode::Disposed), "DISPOSED") == 0);
  IZ_EXPECT_THROWS_CODE(iz::Fail(iz::ErrorCode::Io, "x"), Io);
}

IZ_TEST(parallel_for_covers_every_index_once) {
  for (size_t n : {size_t(0), size_t(1), size_t(7), size_t(1000), size_t(100003)}) {
    std::vector<std::atomic<int>> hits(n);
    iz::ParallelFor(
        n, 16,
        [&](size_t b, size_t e) {
          for (size_t i = b; i < e; ++i) hits[i].fetch_add(1);
        },
        4);
    for (size_t i = 0; i < n; ++i) IZ_EXPECT_EQ(hits[i].load(), 1);
  }
}

IZ_TEST(parallel_for_rethrows_the_first_error) {
  IZ_EXPECT_THROWS_CODE(iz::ParallelFor(
                            1000, 1,
                            [](size_t b, size_t) {
                              if (b >= 500) iz::Fail(iz::ErrorCode::CorruptData, "bad block");
                            },
                            4),
                        CorruptData);
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

IZ_TEST(device_labels_indices_and_per_device_counters) {
  IZ_EXPECT(iz::DeviceLabel(iz::Device::Cpu, 3) == "cpu");
  IZ_EXPECT(iz::DeviceLabel(iz::Device::Cuda, 3) == "cuda:3");
  IZ_EXPECT(std::strcmp(iz::ErrorCodeName(iz::ErrorCode::DeviceMismatch), "DEVICE_MISMATCH") == 0);
  // Host memory is counted while it lives and given back when freed.
  const iz::MemoryCounters before = iz::HostMemoryCounters();
  {
    auto a = iz::DeviceMemory::Allocate(iz::Device::Cpu, 1000);
    auto b = iz::DeviceMemory::Allocate(iz::Device::Cpu, 24);
    IZ_EXPECT_EQ(a->index(), 0);
    IZ_EXPECT(a->label() == "cpu");
    const iz::MemoryCounters during = iz::HostMemoryCounters();
    IZ_EXPECT_EQ(during.bytes - before.bytes, size_t(1024));
    IZ_EXPECT_EQ(during.allocations - before.allocations, size_t(2));
    IZ_EXPECT(during.peak >= during.bytes);
  }
  IZ_EXPECT_EQ(iz::HostMemoryCounters().bytes, before.bytes);
  IZ_EXPECT_EQ(iz::HostMemoryCounters().allocations, before.allocations);
  IZ_EXPECT_THROWS_CODE(iz::CudaMemoryCounters(-1), InvalidArgument);
  IZ_EXPECT_THROWS_CODE(iz::CudaMemoryCounters(iz::kMaxCudaDevices), InvalidArgument);
  // A scope for the CPU (index < 0) does nothing; a CUDA index past the devices is refused.
  { iz::DeviceScope cpu(-1); }
  const auto& info = iz::GetBackendInfo();
  if (!info.cuda_available) {
    IZ_EXPECT_THROWS_CODE(iz::DeviceMemory::Allocate(iz::Device::Cuda, 16, false, 0), NoDevice);
  } else {
    const int n = static_cast<int>(info.devices.size());
    IZ_EXPECT_THROWS_CODE(iz::DeviceMemory::Allocate(iz::Device::Cuda, 16, false, n), InvalidArgument);
    auto last = iz::DeviceMemory::Allocate(iz::Device::Cuda, 16, false, n - 1);
    IZ_EXPECT_EQ(last->index(), n - 1);
    IZ_EXPECT_EQ(iz::CurrentCudaDevice(), 0);  // the allocation's scope restored the device
  }
}

IZ_TEST(parallel_for_respects_grain_and_small_inputs) {
  // grain larger than n: one call covering everything, on the calling thread
  size_t calls = 0;
  iz::ParallelFor(
      10, 100,
      [&](size_t b, size_t e) {
        ++calls;
        IZ_EXPECT_EQ(b, size_t(0));
        IZ_EXPECT_EQ(e, size_t(10));
      },
      8);
  IZ_EXPECT_EQ(calls, size_t(1));
  // every range except the last holds at least `grain` items
  std::atomic<size_t> small{0};
  iz::ParallelFor(
      1000, 64,
      [&](size_t b, size_t e) {
        if (e - b < 64 && e != 1000) small.fetch_add(1);
      },
      3);
  IZ_EXPECT_EQ(small.load(), size_t(0));
  // grain 0 is treated as 1, more threads than items is fine
  std::atomic<size_t> sum{0};
  iz::ParallelFor(
      3, 0, [&](size_t b, size_t e) { sum.fetch_add(e - b); }, 64);
  IZ_EXPECT_EQ(sum.load(), size_t(3));
}

IZ_TEST(parallel_for_rethrows_std_exceptions_from_worker_threads) {
  bool threw = false;
  try {
    iz::ParallelFor(
        1 << 16, 1,
        [](size_t b, size_t) {
          if (b != 0) throw std::runtime_error("a worker's block fails");
        },
        4);
  } catch (const std::runtime_error& e) {
    threw = std::strcmp(e.what(), "a worker's block fails") == 0;
  }
  IZ_EXPECT(threw);
}

IZ_TEST(device_names_parse_strictly) {
  IZ_EXPECT(iz::ParseDevice("cpu") == iz::Device::Cpu);
  IZ_EXPECT(iz::ParseDevice("cuda") == iz::Device::Cuda);
  IZ_EXPECT_THROWS_CODE(iz::ParseDevice("CUDA"), InvalidArgument);
  IZ_EXPECT_THROWS_CODE(iz::ParseDevice(""), InvalidArgument);
  IZ_EXPECT(std::strcmp(iz::DeviceName(iz::Device::Cuda), "cuda") == 0);
}

IZ_TEST(zero_byte_buffers_work) {
  auto mem = iz::DeviceMemory::Allocate(iz::Device::Cpu, 0, true);
  IZ_EXPECT_EQ(mem->bytes(), size_t(0));
  IZ_EXPECT(mem->data() != nullptr);
  mem->CopyFromHost(0, nullptr, 0);
  mem->CopyToHost(0, nullptr, 0);
  IZ_EXPECT_THROWS_CODE(mem->CopyFromHost(1, nullptr, 0), InvalidArgument);
}

IZ_TEST(host_buffers_are_aligned_and_overlapping_copies_are_safe) {
  auto mem = iz::DeviceMemory::Allocate(iz::Device::Cpu, 10, true);
  IZ_EXPECT_EQ(reinterpret_cast<uintptr_t>(mem->data()) % 64, uintptr_t(0));
  uint8_t src[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  mem->CopyFromHost(0, src, 10);
  mem->CopyFrom(2, *mem, 0, 8);  // overlapping ranges in one buffer behave like memmove
  uint8_t out[10];
  mem->CopyToHost(0, out, 10);
  const uint8_t want[10] = {0, 1, 0, 1, 2, 3, 4, 5, 6, 7};
  IZ_EXPECT(std::memcmp(out, want, 10) == 0);
}

IZ_TEST(backend_info_is_consistent) {
  const auto& info = iz::GetBackendInfo();
  IZ_EXPECT_EQ(info.cuda_compiled, iz::CudaCompiled());
  if (!info.cuda_available) IZ_EXPECT(!info.reason.empty());
  if (info.cuda_available) IZ_EXPECT(!info.devices.empty());
  IZ_EXPECT(&info == &iz::GetBackendInfo());  // queried once
}
