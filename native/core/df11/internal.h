// Helpers shared by the CPU decoder and the kernel replay (not part of the codec API).
#pragma once

#include <cstdint>
#include <string>

#include "native/core/df11/codec.h"
#include "native/shared/df11/format.h"
#include "native/shared/error.h"

namespace iz {
namespace df11 {

[[noreturn]] inline void Corrupt(unsigned status, uint64_t block, uint64_t thread) {
  Fail(ErrorCode::CorruptData, std::string("DFloat11 unit: ") + StatusText(status) + " (block " +
                                   std::to_string(block) + ", chunk " + std::to_string(thread) + ")");
}

inline uint32_t Position(const UnitView& u, uint64_t b) {
  const uint8_t* p = u.output_positions + 4 * b;
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

// The caller's output must hold exactly the unit's elements.
inline void CheckOutput(const UnitLayout& layout, size_t out_elements) {
  IZ_CHECK(out_elements == layout.n_elements, ShapeMismatch,
           "the output holds " + std::to_string(out_elements) + " elements but the unit decodes to " +
               std::to_string(layout.n_elements));
}

}  // namespace df11
}  // namespace iz
