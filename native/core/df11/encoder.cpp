// DFloat11 encoder: canonical length-limited Huffman codes for the exponents, decode
// tables in the reference layout, and a parallel bit-packer that also records the
// per-thread gaps and per-block output positions the GPU decoder starts from.
#include <algorithm>
#include <cstring>
#include <map>
#include <string>

#include "../../../cuda/df11/format.h"
#include "../error.h"
#include "../parallel.h"
#include "codec.h"

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

// The encoded inputs seen as one array; visits [begin, end) piece by piece.
struct Concat {
  std::vector<Span> spans;
  std::vector<uint64_t> starts;  // global index of each span's first element
  uint64_t size = 0;

  template <class F>
  void Visit(uint64_t begin, uint64_t end, F&& f) const {
    size_t k = std::upper_bound(starts.begin(), starts.end(), begin) - starts.begin() - 1;
    while (begin < end) {
      uint64_t off = begin - starts[k];
      uint64_t take = std::min<uint64_t>(spans[k].size - off, end - begin);
      if (take) f(spans[k].data + off, take, begin);
      begin += take;
      ++k;
    }
  }
  uint16_t At(uint64_t i) const {
    size_t k = std::upper_bound(starts.begin(), starts.end(), i) - starts.begin() - 1;
    return spans[k].data[i - starts[k]];
  }
};

inline void OrByte(uint8_t* p, uint8_t v) { __atomic_fetch_or(p, v, __ATOMIC_RELAXED); }

}  // namespace

EncodedUnit Encode(const std::vector<Span>& inputs, const EncodeOptions& options) {
  EncodedUnit unit;
  const int threads = options.threads;

  // 1. Exponent histograms; inputs holding exponents >= 240 are kept out (stored raw by the caller).
  Concat all;
  for (size_t i = 0; i < inputs.size(); ++i) {
    IZ_CHECK(inputs[i].data != nullptr || inputs[i].size == 0, InvalidArgument, "input " + std::to_string(i) + " has no data");
    auto h = ExponentHistogram(inputs[i].data, inputs[i].size, threads);
    bool codable = true;
    for (uint32_t e = kFirstPointer; e < 256; ++e) codable = codable && h[e] == 0;
    if (!codable) {
      unit.raw_inputs.push_back(static_cast<uint32_t>(i));
      continue;
    }
    unit.encoded_inputs.push_back(static_cast<uint32_t>(i));
    for (int e = 0; e < 256; ++e) unit.histogram[e] += h[e];
    all.starts.push_back(all.size);
    all.spans.push_back(inputs[i]);
    all.size += inputs[i].size;
    if (unit.encoded_inputs.size() > 1) unit.split_positions.push_back(static_cast<int64_t>(all.starts.back()));
  }
  const uint64_t n = all.size;
  IZ_CHECK(n <= 0xFFFFFFFFull, InvalidArgument,
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

  // 3. Bits per segment, then each segment's first bit.
  const uint64_t seg_size = std::max<uint64_t>(uint64_t(1) << 16, std::min<uint64_t>(uint64_t(1) << 20, n / 64 + 1));
  const uint64_t n_segs = (n + seg_size - 1) / seg_size;
  std::vector<uint64_t> seg_bits(n_segs + 1, 0);
  ParallelFor(
      n_segs, 1,
      [&](size_t s0, size_t s1) {
        for (size_t s = s0; s < s1; ++s) {
          uint64_t bits = 0;
          all.Visit(s * seg_size, std::min(n, (s + 1) * seg_size), [&](const uint16_t* p, uint64_t len, uint64_t) {
            for (uint64_t i = 0; i < len; ++i) bits += codes[(p[i] >> 7) & 0xFF].length;
          });
          seg_bits[s + 1] = bits;
        }
      },
      threads);
  for (uint64_t s = 0; s < n_segs; ++s) seg_bits[s + 1] += seg_bits[s];
  const uint64_t total_bits = seg_bits[n_segs];
  unit.code_bits = total_bits;
  const uint64_t n_bytes = (total_bits + 7) / 8;
  const uint64_t n_blocks = (n_bytes + kBytesPerBlock - 1) / kBytesPerBlock;
  const uint64_t n_threads = n_blocks * kThreadsPerBlock;
  unit.encoded_exponent.assign(n_bytes, 0);
  std::vector<uint8_t> gap_values(n_threads, 0);  // chunks where no code starts keep 0
  std::vector<uint32_t> positions(n_blocks + 1, static_cast<uint32_t>(n));

  // 4. Pack the codes; record the first code start of every chunk and block.
  uint8_t* out = unit.encoded_exponent.data();
  uint8_t* sm = unit.sign_mantissa.data();
  ParallelFor(
      n_segs, 1,
      [&](size_t s0, size_t s1) {
        for (size_t s = s0; s < s1; ++s) {
          const uint64_t first_elem = s * seg_size;
          uint64_t pos = seg_bits[s];
          // Chunk / block of the previous code's start (it may belong to the previous segment).
          uint64_t prev_chunk = UINT64_MAX, prev_block = UINT64_MAX;
          if (first_elem > 0) {
            uint64_t prev_start = pos - codes[ExponentOf(all.At(first_elem - 1))].length;
            prev_chunk = prev_start / kBitsPerThread;
            prev_block = prev_start / (8 * kBytesPerBlock);
          }
          const uint64_t first_byte = pos >> 3;
          uint64_t byte = first_byte;
          uint64_t acc = 0;
          uint32_t nacc = static_cast<uint32_t>(pos & 7);
          auto emit = [&](uint8_t v) {
            if (byte == first_byte) {
              OrByte(out + byte, v);  // shared with the previous segment
            } else {
              out[byte] = v;
            }
            ++byte;
          };
          all.Visit(first_elem, std::min(n, first_elem + seg_size), [&](const uint16_t* p, uint64_t len, uint64_t g0) {
            for (uint64_t i = 0; i < len; ++i) {
              const uint16_t w = p[i];
              sm[g0 + i] = SignMantissaOf(w);
              const uint64_t pc = packed[ExponentOf(w)];
              const uint64_t chunk = pos / kBitsPerThread;
              if (chunk != prev_chunk) {
                gap_values[chunk] = static_cast<uint8_t>(pos & 63);
                prev_chunk = chunk;
                const uint64_t block = pos / (8 * kBytesPerBlock);
                if (block != prev_block) {
                  for (uint64_t b = prev_block + 1; b <= block; ++b) positions[b] = static_cast<uint32_t>(g0 + i);
                  prev_block = block;
                }
              }
              const uint32_t clen = static_cast<uint32_t>(pc >> 32);
              acc = (acc << clen) | (pc & 0xFFFFFFFFu);
              nacc += clen;
              pos += clen;
              while (nacc >= 8) {
                nacc -= 8;
                emit(static_cast<uint8_t>(acc >> nacc));
              }
            }
          });
          if (nacc > 0) OrByte(out + byte, static_cast<uint8_t>(acc << (8 - nacc)));  // shared with the next
        }
      },
      threads);
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
    uint64_t bit = t * kGapBits;
    uint32_t shifted = g << (11 - (bit & 7));  // 5 bits placed MSB-first across two bytes
    unit.gaps[bit >> 3] |= static_cast<uint8_t>(shifted >> 8);
    if ((bit >> 3) + 1 < unit.gaps.size()) unit.gaps[(bit >> 3) + 1] |= static_cast<uint8_t>(shifted);
  }
  return unit;
}

}  // namespace df11
}  // namespace iz
