#include "native/core/df11/dispatch.h"

#include <algorithm>
#include <string>
#include <vector>

#include "native/core/df11/codec.h"
#include "native/shared/error.h"

#if INFERZIP_WITH_CUDA
#include "cuda/df11/decode.h"
#endif

namespace iz::df11 {

namespace {

// Host bytes of a buffer (downloads CUDA memory into `scratch`).
const uint8_t* HostBytes(const UnitBuffer& b, std::vector<uint8_t>& scratch) {
  if (!b.cuda()) return b.data;
  scratch.resize(b.bytes);
  if (b.bytes)
    b.memory->CopyToHost(static_cast<size_t>(b.data - static_cast<const uint8_t*>(b.memory->data())), scratch.data(),
                         b.bytes);
  return scratch.data();
}

UnitView HostView(const UnitBuffers& u, std::vector<std::vector<uint8_t>>& scratch) {
  scratch.resize(5);
  UnitView v;
  v.luts = HostBytes(u.luts, scratch[0]);
  v.luts_bytes = u.luts.bytes;
  v.encoded_exponent = HostBytes(u.encoded_exponent, scratch[1]);
  v.encoded_bytes = u.encoded_exponent.bytes;
  v.sign_mantissa = HostBytes(u.sign_mantissa, scratch[2]);
  v.sign_mantissa_bytes = u.sign_mantissa.bytes;
  v.output_positions = HostBytes(u.output_positions, scratch[3]);
  v.output_positions_bytes = u.output_positions.bytes;
  v.gaps = HostBytes(u.gaps, scratch[4]);
  v.gaps_bytes = u.gaps.bytes;
  return v;
}

#if INFERZIP_WITH_CUDA
// Device pointer of a buffer, uploading host buffers into `keep`.
const uint8_t* DevicePtr(const UnitBuffer& b, std::vector<MemoryPtr>& keep) {
  if (b.cuda()) return b.data;
  auto m = DeviceMemory::Allocate(Device::Cuda, b.bytes);
  if (b.bytes) m->CopyFromHost(0, b.data, b.bytes);
  keep.push_back(m);
  return static_cast<const uint8_t*>(m->data());
}

void DecodeOnCuda(const UnitBuffers& u, const DecodeTarget& t) {
  // Validate the layout on host copies of the small buffers; the kernel checks the stream.
  std::vector<uint8_t> luts_host, pos_host;
  UnitView v;
  v.luts = HostBytes(u.luts, luts_host);
  v.luts_bytes = u.luts.bytes;
  v.output_positions = HostBytes(u.output_positions, pos_host);
  v.output_positions_bytes = u.output_positions.bytes;
  v.encoded_exponent = u.encoded_exponent.data;
  v.encoded_bytes = u.encoded_exponent.bytes;
  v.sign_mantissa = u.sign_mantissa.data;
  v.sign_mantissa_bytes = u.sign_mantissa.bytes;
  v.gaps = u.gaps.data;
  v.gaps_bytes = u.gaps.bytes;
  const UnitLayout layout = ValidateUnit(v);
  IZ_CHECK(t.elements == layout.n_elements, ShapeMismatch,
           "the output holds " + std::to_string(t.elements) + " elements but the unit decodes to " +
               std::to_string(layout.n_elements));
  if (layout.n_blocks == 0) return;
  uint32_t max_block = 0;
  auto position = [&](uint64_t i) {
    const uint8_t* p = v.output_positions + 4 * i;
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
  };
  for (uint64_t b = 0; b < layout.n_blocks; ++b) max_block = std::max(max_block, position(b + 1) - position(b));
  std::vector<MemoryPtr> keep;
  cuda::df11::DeviceUnit d;
  d.luts = DevicePtr(u.luts, keep);
  d.n_tables = layout.n_tables;
  d.encoded_exponent = DevicePtr(u.encoded_exponent, keep);
  d.encoded_bytes = u.encoded_exponent.bytes;
  d.sign_mantissa = DevicePtr(u.sign_mantissa, keep);
  d.output_positions = DevicePtr(u.output_positions, keep);
  d.gaps = DevicePtr(u.gaps, keep);
  d.gaps_bytes = u.gaps.bytes;
  d.n_elements = layout.n_elements;
  d.n_blocks = layout.n_blocks;
  d.max_block_elements = max_block;
  cuda::df11::Decode(d, t.out);
}
#endif

}  // namespace

void DecodeUnit(const UnitBuffers& unit, const DecodeTarget& target, int threads) {
  if (target.cuda) {
#if INFERZIP_WITH_CUDA
    // The kernel runs on the output's device; unit buffers in CUDA memory must live there too.
    for (const UnitBuffer* b :
         {&unit.luts, &unit.encoded_exponent, &unit.sign_mantissa, &unit.output_positions, &unit.gaps}) {
      if (b->cuda() && b->memory->index() != target.device_index) {
        Fail(ErrorCode::DeviceMismatch, "the unit's buffers live on " + b->memory->label() +
                                            " but the output is on cuda:" + std::to_string(target.device_index) +
                                            ": decode on the device that holds the unit");
      }
    }
    DeviceScope scope(target.device_index);
    DecodeOnCuda(unit, target);
    return;
#else
    Fail(ErrorCode::NoDevice, "this build has no CUDA backend");
#endif
  }
  std::vector<std::vector<uint8_t>> scratch;
  DecodeCpu(HostView(unit, scratch), target.out, target.elements, threads);
}

void SimulateUnit(const UnitBuffers& unit, const DecodeTarget& target) {
  IZ_CHECK(!target.cuda, InvalidArgument, "the kernel simulator decodes into host memory only");
  std::vector<std::vector<uint8_t>> scratch;
  DecodeSimulateKernel(HostView(unit, scratch), target.out, target.elements);
}

}  // namespace iz::df11
