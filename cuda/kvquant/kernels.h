// Plain C++ interface to the KV-quantization CUDA kernels (kernels.cu). No CUDA headers:
// native/core calls these only when built with INFERZIP_WITH_CUDA. All pointers are device
// pointers; every plane stores stream s at base + s * stride.
#pragma once

#include <cstddef>
#include <cstdint>

#include "native/shared/kvquant/layout.h"

namespace iz::kv::gpu {

struct Planes {
  uint8_t* base[kNumPlanes];
  uint64_t stride[kNumPlanes];
};

// KIVI: encodes key blocks [first_block, first_block + nblocks) of every stream from f32 rows
// x[s][token][d] (token 0 = first token of first_block; the last block may be partial: ntok_last).
void KiviEncodeKeys(const Layout& L, const Planes& P, size_t streams, const float* x, uint64_t first_block, int nblocks,
                    int ntok_last);
// KIVI: encodes value tokens [t0, t0 + n) of every stream from f32 rows x[s][i][d].
void KiviEncodeValues(const Layout& L, const Planes& P, size_t streams, const float* x, uint64_t t0, int64_t n);
// FP8: encodes key and value blocks starting at token t0 (a multiple of G) for n tokens.
void Fp8Encode(const Layout& L, const Planes& P, size_t streams, const float* k, const float* v, uint64_t t0,
               int64_t n);

// Dequantizes the quantized tokens: keys [0, tk) into k[s][t][d], values [0, tv) into v[s][t][d]
// (rows are `T` apart per stream; residual rows are left untouched).
void Dequantize(const Layout& L, const Planes& P, size_t streams, int64_t tk, int64_t tv, int64_t T, const float* basis,
                float* k, float* v);

struct AttentionArgs {
  int batch, heads, q_heads;
  int64_t nq, T, tk, tv;
  const float* q;      // [batch][q_heads][nq][d], already multiplied by the logit scale
  const float* rk;     // residual keys [streams][T - tk][d]
  const float* rv;     // residual values [streams][T - tv][d]
  const float* basis;  // vidkv spectrum table (n*n) or null
  bool causal;
  int64_t causal_end;  // query i of nq sits at causal_end - nq + i (T: the last queries are the last tokens)
  float* out;          // [batch][q_heads][nq][d]
  // Eviction (null when off): live[s][t] masks evicted slots; scores[s][t] receives each
  // probability summed over the stream's rows. The chunk kernel keeps every probability with
  // the running max it was taken against (probs [rows][T], tile_m [rows][tiles]); the merge
  // kernel records each row's final max and sum (row_m, row_l); a third kernel rescales and
  // adds them up per token: no second pass over the codes.
  const uint8_t* live;
  float* scores;
};
// softmax(q.K^T).V from the packed planes plus the residual rows; tokens split into chunks
// (one block per stream x row x chunk, online softmax), merged by a second kernel.
void Attention(const Layout& L, const Planes& P, const AttentionArgs& a);

}  // namespace iz::kv::gpu
