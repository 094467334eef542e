// DFloat11 encoder: canonical length-limited Huffman codes for the exponents, decode
// tables in the reference layout, and a parallel bit-packer that also records the
// per-thread gaps and per-block output positions the GPU decoder starts from.
#include <algorithm>
#include <cstring>
#include <map>
#include <string>

#include "native/core/df11/codec.h"
#include "native/core/parallel.h"
#include "native/core/simd.h"
#include "native/shared/df11/format.h"
#include "native/shared/error.h"

namespace iz {
namespace df11 {

namespace {

struct Code {
  uint32_t bits;
  uint32_t length;
};

// Canonical codes: ordered by (length, exponent), consecutive values within a length.
std::array<Code, 256> CanonicalCodes(const std::array<uint8_t, 256>& lengths) {
  std::array<Code, 256> codes{};
  std::vector<uint32_t> order;
  for (uint32_t s = 0; s < 256; ++s) {
    if (lengths[s]) order.push_back(s);
  }
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return lengths[a] < lengths[b]; });
  uint64_t code = 0;
  uint32_t prev = 0;
  for (uint32_t s : order) {
    code <<= (lengths[s] - prev);
    prev = lengths[s];
    codes[s] = {static_cast<uint32_t>(code), lengths[s]};
    ++code;
  }
  return codes;
}

// Child tables needed: one per distinct whole-byte prefix (8, 16, 24 bits) of longer codes.
std::map<std::pair<uint32_t, uint32_t>, uint32_t> ChildTables(const std::array<Code, 256>& codes) {
  std::map<std::pair<uint32_t, uint32_t>, uint32_t> tables;  // (prefix bytes, prefix) -> index
  for (uint32_t s = 0; s < 256; ++s) {
    const Code& c = codes[s];
    for (uint32_t level = 1; c.length > 8 * level; ++level) {
      tables.emplace(std::make_pair(level, c.bits >> (c.length - 8 * level)), 0);
    }
  }
  uint32_t next = 1;  // map order = (level, prefix): parents before children
  for (auto& t : tables) t.second = next++;
  return tables;
}

std::vector<uint8_t> BuildLuts(const std::array<Code, 256>& codes,
                               const std::map<std::pair<uint32_t, uint32_t>, uint32_t>& children) {
  const uint32_t n_tables = static_cast<uint32_t>(children.size()) + 1;
  std::vector<uint8_t> luts((n_tables + 1) * 256, 0);
  for (uint32_t s = 0; s < 256; ++s) {
    const Code& c = codes[s];
    if (!c.length) continue;
    luts[n_tables * 256 + s] = static_cast<uint8_t>(c.length);
    uint32_t table = 0;
    for (uint32_t level = 0;; ++level) {
      uint32_t rest = c.length - 8 * level;  // bits of the code from this table on
      if (rest <= 8) {
        uint32_t first = (c.bits & ((1u << rest) - 1)) << (8 - rest);
        std::memset(&luts[table * 256 + first], static_cast<int>(s), size_t(1) << (8 - rest));
        break;
      }
      uint32_t byte = (c.bits >> (rest - 8)) & 0xFF;
      uint32_t child = children.at(std::make_pair(level + 1, c.bits >> (rest - 8)));
      luts[table * 256 + byte] = static_cast<uint8_t>(256 - child);
      table = child;
    }
  }
  return luts;
}

// A piece of one input: the unit of parallel work (histogram, then packing).
struct Piece {
  const uint16_t* data;
  uint64_t size;
  uint32_t input;
  uint64_t first;  // global index of its first element in the unit (encoded pieces)
  uint64_t bit;    // stream bit of its first code
  std::array<uint32_t, 256> hist;
};

inline void OrByte(uint8_t* p, uint8_t v) { __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }

// Big-endian 8-byte store (bit stream order: most significant bit first).
inline void StoreBE64(uint8_t* out, uint64_t word) {
  word = __builtin_bswap64(word);
  std::memcpy(out, &word, 8);
}

#if defined(__GNUC__) || defined(__clang__)
#define IZ_ALWAYS_INLINE_LAMBDA __attribute__((always_inline))
#else
#define IZ_ALWAYS_INLINE_LAMBDA
#endif

// sign_mantissa bytes of a run of BF16 words: a plain loop each SIMD target vectorizes.
template <SimdLevel L>
IZ_FORCE_INLINE void SplitSignMantissaBody(const uint16_t* w, uint64_t n, uint8_t* sm) {
  for (uint64_t i = 0; i < n; ++i) sm[i] = SignMantissaOf(w[i]);
}
IZ_SIMD_DGEN(void, SplitSignMantissa, (const uint16_t* w, uint64_t n, uint8_t* sm), (w, n, sm))

// The packer's position in the bit stream (see PackMiddle).
struct PackState {
  uint64_t pos, byte, acc;
  uint32_t nacc;
  uint64_t prev_chunk, prev_block;
};

// The branch-free middle of a piece: codes of data[i..n) while an 8-byte store at the current
// byte stays below end_byte. After each code, the pending bits (< 8 carried + the code) are
// stored as 8 big-endian bytes (zeros past them, overwritten by the next store) and only whole
// bytes advance. Locals and restrict pointers keep the state in registers: the byte stores
// would otherwise force every captured variable to be reloaded. Returns the next element.
uint64_t PackMiddle(const uint16_t* __restrict data, uint64_t i, uint64_t n, const uint64_t* __restrict packed,
                    uint8_t* __restrict out, uint64_t end_byte, uint8_t* __restrict gaps,
                    uint32_t* __restrict positions, uint64_t first, PackState& st) {
  uint64_t pos = st.pos, byte = st.byte, acc = st.acc, prev_chunk = st.prev_chunk, prev_block = st.prev_block;
  uint32_t nacc = st.nacc;
  // The value gaps[prev_chunk] holds: re-storing it when the chunk did not change keeps the
  // store unconditional (a conditional move instead of a branch).
  // Entering mid-chunk, that chunk's gap may belong to another thread's piece: no store until
  // a chunk starts here (a branch taken only then, so predicted).
  uint8_t cur_gap = 0;
  bool gap_known = false;
  for (; i < n && byte + 8 <= end_byte; ++i) {
    const uint64_t pc = packed[ExponentOf(data[i])];
    const uint64_t chunk = pos / kBitsPerThread;
    const bool fresh = chunk != prev_chunk;
    cur_gap = fresh ? static_cast<uint8_t>(pos & 63) : cur_gap;
    gap_known |= fresh;
    if (__builtin_expect(gap_known, 1)) gaps[chunk] = cur_gap;
    prev_chunk = chunk;
    const uint64_t block = pos / (8 * kBytesPerBlock);
    if (__builtin_expect(block != prev_block, 0)) {
      for (uint64_t b = prev_block + 1; b <= block; ++b) positions[b] = static_cast<uint32_t>(first + i);
      prev_block = block;
    }
    const uint32_t clen = static_cast<uint32_t>(pc >> 32);
    acc = (acc << clen) | (pc & 0xFFFFFFFFu);
    nacc += clen;
    pos += clen;
    StoreBE64(out + byte, acc << (64 - nacc));
    byte += nacc >> 3;
    nacc &= 7;
  }
  st = PackState{pos, byte, acc, nacc, prev_chunk, prev_block};
  return i;
}

}  // namespace

EncodedUnit Encode(const std::vector<Span>& inputs, const EncodeOptions& options) {
  EncodedUnit unit;
  const int threads = options.threads;

  // 1. Exponent histograms per piece; inputs holding exponents >= 240 are kept out
  //    (stored raw by the caller).
  constexpr uint64_t kPiece = uint64_t(1) << 18;
  std::vector<Piece> pieces;
  for (size_t i = 0; i < inputs.size(); ++i) {
    IZ_CHECK(inputs[i].data != nullptr || inputs[i].size == 0, InvalidArgument,
             "input " + std::to_string(i) + " has no data");
    for (uint64_t off = 0; off < inputs[i].size; off += kPiece) {
      Piece p{};
      p.data = inputs[i].data + off;
      p.size = std::min<uint64_t>(kPiece, inputs[i].size - off);
      p.input = static_cast<uint32_t>(i);
      pieces.push_back(p);
    }
  }
  ParallelFor(
      pieces.size(), 1,
      [&](size_t p0, size_t p1) {
        for (size_t k = p0; k < p1; ++k) {
          Piece& p = pieces[k];
          std::array<std::array<uint32_t, 256>, 4> h{};
          uint64_t j = 0;
          for (; j + 4 <= p.size; j += 4) {
            ++h[0][ExponentOf(p.data[j])];
            ++h[1][ExponentOf(p.data[j + 1])];
            ++h[2][ExponentOf(p.data[j + 2])];
            ++h[3][ExponentOf(p.data[j + 3])];
          }
          for (; j < p.size; ++j) ++h[0][ExponentOf(p.data[j])];
          for (int e = 0; e < 256; ++e) p.hist[e] = h[0][e] + h[1][e] + h[2][e] + h[3][e];
        }
      },
      threads);
  std::vector<bool> codable(inputs.size(), true);
  for (const Piece& p : pieces) {
    for (uint32_t e = kFirstPointer; e < 256; ++e) {
      if (p.hist[e]) codable[p.input] = false;
    }
  }
  uint64_t n = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!codable[i]) {
      unit.raw_inputs.push_back(static_cast<uint32_t>(i));
      continue;
    }
    if (!unit.encoded_inputs.empty()) unit.split_positions.push_back(static_cast<int64_t>(n));
    unit.encoded_inputs.push_back(static_cast<uint32_t>(i));
    n += inputs[i].size;
  }
  std::vector<Piece*> enc;  // encoded pieces in stream order
  for (Piece& p : pieces) {
    if (!codable[p.input]) continue;
    for (int e = 0; e < 256; ++e) unit.histogram[e] += p.hist[e];
    enc.push_back(&p);
  }
  IZ_CHECK(
      n <= 0xFFFFFFFFull, InvalidArgument,
      "a unit holds at most 4294967295 elements (output_positions are 32-bit); split the tensors into several units");
  unit.n_elements = n;
  unit.entropy_bits = EntropyBits(unit.histogram) * double(n);

  // 2. Codes: optimal under the length limit; lower the limit until the tables fit 16 children.
  uint32_t limit = std::min<uint32_t>(std::max<uint32_t>(options.max_code_length, 8), kMaxCodeLength);
  std::array<Code, 256> codes{};
  std::map<std::pair<uint32_t, uint32_t>, uint32_t> children;
  for (;; --limit) {
    auto lengths = LimitedCodeLengths(unit.histogram, limit);
    codes = CanonicalCodes(lengths);
    children = ChildTables(codes);
    if (children.size() <= kMaxChildTables) break;
  }
  unit.n_tables = static_cast<uint32_t>(children.size()) + 1;
  for (const Code& c : codes) unit.max_code_length = std::max(unit.max_code_length, c.length);
  unit.luts = BuildLuts(codes, children);
  uint64_t packed[256];
  for (int s = 0; s < 256; ++s) packed[s] = (uint64_t(codes[s].length) << 32) | codes[s].bits;

  unit.sign_mantissa.resize(n);
  if (n == 0) {
    unit.output_positions.assign(4, 0);
    return unit;
  }

  // 3. Each piece's first element and first bit follow from the histograms alone.
  uint64_t elem = 0, bit = 0;
  for (Piece* p : enc) {
    p->first = elem;
    p->bit = bit;
    elem += p->size;
    for (int e = 0; e < 256; ++e) bit += uint64_t(p->hist[e]) * codes[e].length;
  }
  const uint64_t total_bits = bit;
  std::vector<uint64_t> enc_end_bit(enc.size());
  for (size_t k = 0; k < enc.size(); ++k) enc_end_bit[k] = k + 1 < enc.size() ? enc[k + 1]->bit : total_bits;
  unit.code_bits = total_bits;
  const uint64_t n_bytes = (total_bits + 7) / 8;
  const uint64_t n_blocks = (n_bytes + kBytesPerBlock - 1) / kBytesPerBlock;
  const uint64_t n_threads = n_blocks * kThreadsPerBlock;
  unit.encoded_exponent.assign(n_bytes + 4, 0);   // 4 spare bytes for the 32-bit flushes, trimmed below
  std::vector<uint8_t> gap_values(n_threads, 0);  // chunks where no code starts keep 0
  std::vector<uint32_t> positions(n_blocks + 1, static_cast<uint32_t>(n));

  // 4. Pack the codes; record the first code start of every chunk and block.
  uint8_t* out = unit.encoded_exponent.data();
  uint8_t* sm = unit.sign_mantissa.data();
  ParallelFor(
      enc.size(), 1,
      [&](size_t s0, size_t s1) {
        for (size_t s = s0; s < s1; ++s) {
          const Piece& piece = *enc[s];
          uint64_t pos = piece.bit;
          // Chunk / block of the previous code's start (it may belong to the previous piece).
          uint64_t prev_chunk = UINT64_MAX, prev_block = UINT64_MAX;
          if (s > 0) {
            const Piece& prev = *enc[s - 1];
            uint64_t prev_start = pos - codes[ExponentOf(prev.data[prev.size - 1])].length;
            prev_chunk = prev_start / kBitsPerThread;
            prev_block = prev_start / (8 * kBytesPerBlock);
          }
          // Bytes: the first (start) may be shared with the previous piece and the last (end)
          // with the next; those two are OR-ed atomically. Everything between belongs to this
          // piece alone, so the middle runs branch-free: after each code, 8 bytes are stored at
          // the current byte (the bytes past the pending bits are zeros, overwritten by the next
          // store), and only whole bytes advance the position.
          const uint64_t end_byte = (enc_end_bit[s]) >> 3;
          uint64_t byte = pos >> 3;
          uint64_t acc = 0;
          uint32_t nacc = static_cast<uint32_t>(pos & 7);
          uint8_t* smp = sm + piece.first;
          SplitSignMantissa(piece.data, piece.size, smp);
          uint8_t dummy_gap = 0;
          uint64_t i = 0;
          // Code start bookkeeping: the first code starting in each 64-bit chunk gives that chunk's
          // gap (a store redirected to a dummy when the chunk did not change: no branch), and each
          // block's first element index is written when a code starts in a new block (rare).
          auto track = [&](uint64_t at) IZ_ALWAYS_INLINE_LAMBDA {
            const uint64_t chunk = at / kBitsPerThread;
            uint8_t* g = chunk != prev_chunk ? &gap_values[chunk] : &dummy_gap;
            *g = static_cast<uint8_t>(at & 63);
            prev_chunk = chunk;
            const uint64_t block = at / (8 * kBytesPerBlock);
            if (__builtin_expect(block != prev_block, 0)) {
              for (uint64_t b = prev_block + 1; b <= block; ++b) positions[b] = static_cast<uint32_t>(piece.first + i);
              prev_block = block;
            }
          };
          // Appends element i's code to the bit accumulator (the head and tail loops).
          auto append = [&](uint64_t k) IZ_ALWAYS_INLINE_LAMBDA {
            const uint64_t pc = packed[ExponentOf(piece.data[k])];
            track(pos);
            const uint32_t clen = static_cast<uint32_t>(pc >> 32);
            acc = (acc << clen) | (pc & 0xFFFFFFFFu);
            nacc += clen;
            pos += clen;
          };
          // Head: gather codes until the shared first byte is complete.
          for (; i < piece.size && nacc < 8; ++i) append(i);
          if (nacc >= 8) {
            nacc -= 8;
            OrByte(out + byte, static_cast<uint8_t>(acc >> nacc));
            ++byte;
            // Middle: while an 8-byte store at `byte` stays below the shared last byte.
            PackState st{pos, byte, acc, nacc, prev_chunk, prev_block};
            i = PackMiddle(piece.data, i, piece.size, packed, out, end_byte, gap_values.data(), positions.data(),
                           piece.first, st);
            pos = st.pos, byte = st.byte, acc = st.acc, nacc = st.nacc, prev_chunk = st.prev_chunk,
            prev_block = st.prev_block;
            // Tail: 32-bit flushes and single bytes, all below end_byte but the partial last.
            for (; i < piece.size; ++i) {
              append(i);
              while (nacc >= 8) {
                nacc -= 8;
                out[byte++] = static_cast<uint8_t>(acc >> nacc);
              }
            }
          }
          if (nacc > 0) OrByte(out + byte, static_cast<uint8_t>(acc << (8 - nacc)));
        }
      },
      threads);
  unit.encoded_exponent.resize(n_bytes);
  positions[0] = 0;
  positions[n_blocks] = static_cast<uint32_t>(n);

  unit.output_positions.resize((n_blocks + 1) * 4);
  for (uint64_t b = 0; b <= n_blocks; ++b) {
    uint32_t v = positions[b];
    for (int k = 0; k < 4; ++k) unit.output_positions[b * 4 + k] = static_cast<uint8_t>(v >> (8 * k));
  }
  unit.gaps.assign(GapBytes(n_threads), 0);
  for (uint64_t t = 0; t < n_threads; ++t) {
    uint32_t g = gap_values[t];
    uint64_t gbit = t * kGapBits;
    uint32_t shifted = g << (11 - (gbit & 7));  // 5 bits placed MSB-first across two bytes
    unit.gaps[gbit >> 3] |= static_cast<uint8_t>(shifted >> 8);
    if ((gbit >> 3) + 1 < unit.gaps.size()) unit.gaps[(gbit >> 3) + 1] |= static_cast<uint8_t>(shifted);
  }
  return unit;
}

}  // namespace df11
}  // namespace iz
