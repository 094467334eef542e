// A quantized KV cache for one layer: packed codes and scales per (batch, kv-head) stream,
// a full-precision residual window, and attention computed from the packed codes.
// quantizeKV is the same object with no window, finalized (partial blocks allowed).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "native/core/device.h"
#include "native/shared/kvquant/layout.h"

namespace iz::kv {

struct CacheOptions {
  Scheme scheme = kKivi;
  int bits = 2;            // kivi: 2 | 4; zipcache: high bits (4); vidkv: 2 (salient values, anomalous keys)
  int fp8_format = kE4M3;  // fp8
  int batch = 1;
  int heads = 1;  // KV heads
  int head_dim = 0;
  int group = 32;          // G: tokens per key group / scale block
  int channel_group = 32;  // Cg: channels per per-token group (divides head_dim)
  int window = 128;        // R: full-precision residual window (multiple of G, or 0)
  double anomalous_fraction = 0.5;
  double salient_fraction = 0.2;
  double low_fraction = 0.4;
  double probe_fraction = 0.05;
  uint64_t seed = 0;
  Device device = Device::Cpu;
  int device_index = 0;  // the CUDA device of the mirror and the kernels
  // KV eviction (H2O / D2O, native/core/kvquant/evict.cpp): 0 none, 1 h2o, 2 d2o.
  int evict_method = 0;
  double evict_budget = 0;    // (0, 1): fraction of the prefill; integer >= 1: tokens
  double evict_recent = 0.5;  // (0, 1): fraction of the budget; integer >= 0: tokens
  int evict_granularity = 0;  // 0: per KV head, 1: one kept set per batch row
  double evict_beta = 0.5;    // d2o: EMA weight of the merge threshold
};

enum EvictMethod { kEvictNone = 0, kEvictH2O = 1, kEvictD2O = 2 };

// Throws INVALID_ARGUMENT / UNSUPPORTED with a message naming the option.
void ValidateOptions(const CacheOptions& o);

// Input of one append: f32 rows, layouts [batch][heads][n][head_dim]. `queries`
// ([batch][q_heads][n][head_dim]) and `scores` ([batch][heads][n]) are optional saliency inputs.
struct AppendInput {
  const float* k = nullptr;
  const float* v = nullptr;
  int64_t n = 0;
  const float* queries = nullptr;
  int q_heads = 0;
  const float* scores = nullptr;
};

struct CacheStats {
  int64_t tokens = 0;
  int64_t quantized_keys = 0;
  int64_t quantized_values = 0;
  uint64_t packed_key_bytes = 0;  // codes + scales + metadata of quantized keys (all streams)
  uint64_t packed_value_bytes = 0;
  uint64_t residual_bytes = 0;     // f32 residual window
  uint64_t capacity_bytes = 0;     // allocated (planes + residual)
  int64_t slots = 0;               // physical token slots (>= tokens when eviction leaves holes)
  uint64_t eviction_bytes = 0;     // positions, scores, live flags and thresholds of eviction
  double live_quantized_keys = 0;  // quantized key slots still live, averaged over streams
  double live_quantized_values = 0;
};

// Eviction state (all zero / empty when eviction is off). Physical token slots are shared by
// all streams (a slot is freed when no stream keeps it); each stream marks which slots it keeps.
struct EvictState {
  int64_t prefill = -1;  // P: kept tokens at the first attention call (-1: none yet)
  int64_t budget = 0, recent = 0;
  bool allocated = false;  // d2o: layer budget taken (allocateD2OBudgets or the next append)
  double density = 0;      // d2o: mean variance of the scores after the prefill attention
  int64_t next_pos = 0;
  std::vector<int32_t> pos;                // per slot: absolute position (i32, as saved)
  std::vector<std::vector<uint8_t>> live;  // [stream][slot]
  std::vector<std::vector<float>> score;   // [stream][slot]: accumulated attention
  std::vector<float> tau;                  // [stream]: d2o merge threshold (NaN: unset)
};

class KvCache {
 public:
  explicit KvCache(const CacheOptions& options);

  void Append(const AppendInput& in);
  // Quantizes everything still in the window (partial blocks allowed); no appends afterwards.
  void Finalize();
  bool finalized() const { return finalized_; }

  // out[b][hq][i][d] = softmax(q . K^T * scale) . V over all cached tokens, from packed codes.
  // Query i sits at position tokens - nq + i (causal masks later tokens).
  // With eviction on, adds every probability to the attended token's score in the same pass,
  // then runs one eviction round (evict.cpp).
  void Attention(const float* q, int q_heads, int64_t nq, float scale, bool causal, float* out);
  // Dequantizes all kept tokens (quantized + residual) into k, v [batch][heads][tokens][d].
  void Dequantize(float* k, float* v) const;

  // Eviction (evict.cpp).
  bool evicting() const { return opt_.evict_method != kEvictNone; }
  const EvictState& evict_state() const { return ev_; }
  // Kept tokens per stream (the same for every stream).
  int64_t KeptTokens() const;
  // d2o: takes a layer budget (B_l, R_l) and runs the round skipped at the prefill.
  void AllocateBudget(int64_t budget, int64_t recent);
  // Positions and scores of the kept tokens, [streams][kept].
  void KeptPositions(std::vector<int32_t>& pos, std::vector<float>& score) const;
  // Restores eviction state saved by SerializeCache (after SetState).
  void SetEvictState(const EvictState& st);

  CacheStats Stats() const;
  // CUDA, for tests: the device mirror against the host planes byte for byte (what a whole
  // upload would leave there), and the bytes eviction rounds uploaded so far next to what
  // whole-plane uploads would have moved.
  struct MirrorCheck {
    uint64_t differing_bytes = 0, round_upload_bytes = 0, whole_upload_bytes = 0;
    int64_t rounds = 0;
  };
  MirrorCheck CheckMirror() const;
  const CacheOptions& options() const { return opt_; }
  const Layout& layout() const { return L_; }
  int64_t tokens() const { return T_; }  // physical slots

  // Serialization: plane bytes are [streams][stride] with stride = PlaneStride(p).
  size_t PlaneStride(int p) const { return planes_[p].cap; }
  const uint8_t* PlaneData(int p) const { return planes_[p].mem ? planes_[p].mem->as<uint8_t>() : nullptr; }
  MemoryPtr PlaneMemory(int p) const { return planes_[p].mem; }
  struct State {
    int64_t tokens, quantized_keys, quantized_values;
    bool finalized, anomalous_chosen;
    std::vector<int16_t> chan_order;
    int n_anom;
    std::vector<uint64_t> units;                             // per stream
    std::vector<std::vector<float>> rk, rv, rscore, rcount;  // per stream
  };
  State GetState() const;
  // Restores a state saved by GetState with the same options; plane bytes [streams][stride].
  void SetState(const State& st, const std::vector<std::vector<uint8_t>>& planes, const std::vector<size_t>& strides);

 private:
  struct PlaneBuf {
    MemoryPtr mem;
    size_t cap = 0;  // bytes per stream
  };
  void Ensure(int p, size_t per_stream);
  size_t PlaneNeed(int p, int64_t tk, int64_t tv, uint64_t max_units) const;
  void Flush(int64_t nk, int64_t nv, bool final_partial);
  void FlushKivi(int64_t nk, int64_t nv);
  void FlushJoint(int64_t n);
  void ChooseAnomalous(int64_t n);
  void ProbeScores(const AppendInput& in);
  StreamView View(size_t s) const;
  bool on_cuda() const { return opt_.device == Device::Cuda; }
  // CUDA backend (cache_cuda.cpp): the host planes stay the source of truth for state and
  // saving; a device mirror holds the same bytes for the kernels.
  void EnsureDevice();
  void SyncRange(int p, const std::vector<size_t>& old_used, bool to_device);
  std::vector<size_t> UsedBytes(int p) const;
  void FlushKiviCuda(int64_t nk, int64_t nv);
  void FlushFp8Cuda(int64_t n);
  void UploadAll();
  void DequantizeSlots(float* k, float* v) const;
  void AttentionCuda(const float* q, int q_heads, int64_t nq, float scale, bool causal, float* out,
                     const std::vector<std::vector<uint8_t>>* live = nullptr,
                     std::vector<std::vector<float>>* scores = nullptr, int64_t causal_end = -1) const;
  // Eviction rounds edit the host planes in place (merged rows, compaction); each edit marks
  // the bytes it may have changed, and the round then uploads only those (cache_cuda.cpp).
  void MarkChanged(int p, size_t s, size_t from, size_t to);
  void MarkChangedBits(int p, size_t s, uint64_t bit0, uint64_t nbits) {
    MarkChanged(p, s, size_t(bit0 / 8), size_t((bit0 + nbits + 7) / 8));
  }
  void UploadChanged();
  void DequantizeCuda(float* k, float* v) const;
  // Packed attention over the slots with optional per-stream live masks (dead slots get no
  // probability) and score accumulation (scores[s][t] += probability, summed over the
  // stream's query rows) in the same pass over the codes (attention.cpp).
  // causal_end: query i of nq sits at slot causal_end - nq + i (-1: the last queries are the last slots).
  void AttendPacked(const float* q, int q_heads, int64_t nq, float scale, bool causal, float* out,
                    const std::vector<std::vector<uint8_t>>* live, std::vector<std::vector<float>>* scores,
                    int64_t causal_end = -1) const;
  // Eviction internals (evict.cpp).
  void EvictAppend(int64_t n);
  void EvictAfterAttention();
  void EvictRound();
  void ReadRow(size_t s, int64_t t, float* k, float* v) const;
  void ReadKeys(size_t s, const std::vector<int64_t>& slots, float* out) const;
  void WriteRow(size_t s, int64_t t, const float* k, const float* v);
  void Reclaim();
  void RemoveSlots(const std::vector<uint8_t>& remove);

  CacheOptions opt_;
  Layout L_{};
  size_t S_;
  int64_t T_ = 0, Tk_ = 0, Tv_ = 0;
  bool finalized_ = false;
  bool anom_chosen_ = false;
  PlaneBuf planes_[kNumPlanes];
  std::vector<uint64_t> units_;                      // pool units used per stream
  std::vector<std::vector<float>> rk_, rv_;          // residual rows per stream
  std::vector<std::vector<float>> rscore_, rcount_;  // attention received by residual tokens
  std::vector<float> fwd_, basis_;                   // vidkv spectrum tables
  PlaneBuf dev_[kNumPlanes];                         // CUDA mirror of planes_
  // [plane][stream]: byte ranges of the host planes an eviction round changed (CUDA only)
  std::vector<std::vector<std::pair<size_t, size_t>>> changed_[kNumPlanes];
  uint64_t round_upload_bytes_ = 0, whole_upload_bytes_ = 0;
  int64_t upload_rounds_ = 0;
  MemoryPtr dev_basis_;
  EvictState ev_;
};

// Plain f32 attention over dense K, V [batch][heads][tokens][d] (the baseline and the
// reference path). Same threading and online softmax as the packed path.
void DenseAttention(const float* q, int batch, int q_heads, int64_t nq, const float* k, const float* v, int heads,
                    int64_t tokens, int d, float scale, bool causal, float* out);

}  // namespace iz::kv
