// libFuzzer target for the DFloat11 decoders. Mode 0 reads a whole unit from the fuzz
// bytes; mode 1 encodes fuzz bytes as BF16 weights and then corrupts the unit with the
// remaining bytes (reaching deep into the stream checks). Either way the fast CPU
// decoder and the kernel simulator must agree: both reject with CorruptData (or
// ShapeMismatch) or both return the same words; a valid encoding must round-trip.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "native/core/df11/codec.h"
#include "native/core/parallel.h"
#include "native/shared/error.h"

namespace {

using namespace iz::df11;

struct Reader {
  const uint8_t* p;
  size_t left;
  uint32_t U16() {
    uint32_t v = 0;
    for (int i = 0; i < 2 && left; ++i, --left) v = (v << 8) | *p++;
    return v;
  }
  std::vector<uint8_t> Bytes(size_t n) {
    n = n < left ? n : left;
    std::vector<uint8_t> v(p, p + n);
    p += n;
    left -= n;
    return v;
  }
};

struct Result {
  bool ok = false;
  iz::ErrorCode code = iz::ErrorCode::Internal;
  std::vector<uint16_t> words;
};

template <class F>
Result Run(F&& decode, size_t n) {
  Result r;
  r.words.assign(n, 0);
  try {
    decode(r.words.data());
    r.ok = true;
  } catch (const iz::Error& e) {
    r.code = e.code();
    if (e.code() != iz::ErrorCode::CorruptData && e.code() != iz::ErrorCode::ShapeMismatch) abort();
  }
  return r;
}

void Check(const UnitView& u, size_t n, const uint16_t* expect) {
  Result fast = Run([&](uint16_t* out) { DecodeCpu(u, out, n, 1); }, n);
  Result sim = Run([&](uint16_t* out) { DecodeSimulateKernel(u, out, n); }, n);
  if (fast.ok != sim.ok) abort();
  if (fast.ok && fast.words != sim.words) abort();
  if (expect && (!fast.ok || std::memcmp(fast.words.data(), expect, n * 2) != 0)) abort();
}

UnitView View(const std::vector<uint8_t>& luts, const std::vector<uint8_t>& enc, const std::vector<uint8_t>& sm,
              const std::vector<uint8_t>& pos, const std::vector<uint8_t>& gaps) {
  return UnitView{luts.data(), luts.size(), enc.data(), enc.size(),  sm.data(),
                  sm.size(),   pos.data(),  pos.size(), gaps.data(), gaps.size()};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Reader r{data + 1, size - 1};
  if ((data[0] & 1) == 0) {
    // A unit straight from the bytes (sizes capped so runs stay fast).
    std::vector<uint8_t> luts = r.Bytes(size_t(r.U16() % 19) * 256 + (data[0] >> 7));
    std::vector<uint8_t> enc = r.Bytes(r.U16() % 20000);
    std::vector<uint8_t> pos = r.Bytes(r.U16() % 64);
    std::vector<uint8_t> gaps = r.Bytes(r.U16() % 4000);
    std::vector<uint8_t> sm(r.U16() % 60000, 0x5A);
    Check(View(luts, enc, sm, pos, gaps), sm.size(), nullptr);
    return 0;
  }
  // Encode fuzz words (exponents kept < 240), check the round trip, then corrupt and check agreement.
  size_t n_words = r.U16() % 12000;
  std::vector<uint16_t> words(n_words);
  for (size_t i = 0; i < n_words; ++i) {
    uint32_t w = r.U16() ^ uint32_t(i * 2654435761u >> 7);
    if (((w >> 7) & 0xFF) >= 240) w &= ~(uint32_t(0x10) << 7);
    words[i] = static_cast<uint16_t>(w);
  }
  EncodeOptions opt;
  opt.threads = 1;
  opt.max_code_length = 8 + (data[0] >> 1) % 25;
  EncodedUnit unit = Encode({Span{words.data(), words.size()}}, opt);
  if (!unit.raw_inputs.empty()) abort();
  Check(View(unit.luts, unit.encoded_exponent, unit.sign_mantissa, unit.output_positions, unit.gaps), n_words,
        words.data());
  std::vector<uint8_t>* bufs[] = {&unit.luts, &unit.encoded_exponent, &unit.output_positions, &unit.gaps};
  while (r.left >= 4) {
    std::vector<uint8_t>& b = *bufs[r.Bytes(1)[0] % 4];
    const uint32_t at = r.U16();
    const uint8_t x = r.Bytes(1)[0];
    if (b.empty()) continue;
    if (x == 0) {
      b.resize(at % (b.size() + 1));  // truncate
    } else {
      b[at % b.size()] ^= x;
    }
  }
  Check(View(unit.luts, unit.encoded_exponent, unit.sign_mantissa, unit.output_positions, unit.gaps), n_words, nullptr);
  return 0;
}
