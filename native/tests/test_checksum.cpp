// CRC-32: every implementation this CPU has against a bit-at-a-time reference, over every
// length that exercises the folding loops' edges, unaligned starts and continued checksums.
#include <cstdint>
#include <random>
#include <vector>

#include "native/core/checksum/crc32.h"
#include "native/tests/testing.h"

namespace {

// The definition: reflected polynomial 0xEDB88320, one bit at a time.
uint32_t Reference(const uint8_t* p, size_t n, uint32_t crc) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

std::vector<iz::Crc32Impl> Available() {
  std::vector<iz::Crc32Impl> out;
  for (int i = 0; i <= static_cast<int>(iz::Crc32Best()); ++i) out.push_back(static_cast<iz::Crc32Impl>(i));
  return out;
}

}  // namespace

IZ_TEST(crc32_known_values) {
  const uint8_t* digits = reinterpret_cast<const uint8_t*>("123456789");
  for (iz::Crc32Impl impl : Available()) {
    IZ_EXPECT_EQ(iz::Crc32Using(impl, digits, 9), 0xCBF43926u);  // the standard check value
    IZ_EXPECT_EQ(iz::Crc32Using(impl, digits, 0), 0u);
  }
}

IZ_TEST(crc32_every_implementation_matches_the_definition) {
  std::mt19937 rng(20261207);
  std::vector<uint8_t> buf(4096 + 64);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  // all lengths to 1100 (past 4 x 256 bytes), then a few large ones, at 4 alignments
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 1100; ++n) lengths.push_back(n);
  for (size_t n : {2047, 2048, 2049, 4095, 4096}) lengths.push_back(n);
  for (iz::Crc32Impl impl : Available()) {
    for (size_t n : lengths) {
      for (size_t off : {0, 1, 7, 13}) {
        const uint32_t seed = n % 3 == 0 ? 0u : static_cast<uint32_t>(rng());
        IZ_EXPECT_EQ(iz::Crc32Using(impl, buf.data() + off, n, seed), Reference(buf.data() + off, n, seed));
      }
    }
  }
}

IZ_TEST(crc32_continues_across_pieces) {
  std::vector<uint8_t> buf(100000);
  std::mt19937 rng(7);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  const uint32_t whole = Reference(buf.data(), buf.size(), 0);
  for (iz::Crc32Impl impl : Available()) {
    uint32_t c = 0;
    for (size_t at = 0, step = 1; at < buf.size(); at += step, step = step * 3 + 1) {
      const size_t len = std::min(step, buf.size() - at);
      c = iz::Crc32Using(impl, buf.data() + at, len, c);
    }
    IZ_EXPECT_EQ(c, whole);
  }
  IZ_EXPECT_EQ(iz::Crc32(buf.data(), buf.size()), whole);
}
