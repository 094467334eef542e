// Run-time dispatched AVX2 + FMA inner loops for 2-bit KIVI attention (x86-64 GCC/Clang).
#pragma once

#include <cstdint>

#include "native/core/simd.h"  // IZ_X86_SIMD: whether the .cpp holds the AVX2 loops or stubs

namespace iz::kv::cpu {

// True when this CPU runs AVX2 and FMA.
bool HasAvx2();
// Dense f32 helpers (the baseline and the residual window get the same SIMD as the packed path).
float DotAvx2(const float* a, const float* b, int d);
void AxpyAvx2(float alpha, const float* x, float* y, int d);
// Softmax pieces: the largest of x[0..n); out[j] = exp(x[j] - shift) for x[j] <= shift
// (0 below -87, so masked -inf logits give exactly 0), returning their sum.
float MaxAvx2(const float* x, int n);
float ExpSumAvx2(const float* x, int n, float shift, float* out);
// Return false when no specialization fits (the caller uses the portable loop).
// scratch: 2*d floats (keys) / 2*nt*d/Cg floats (values).
bool KeyGroup2Avx2(const uint8_t* block, uint32_t param_offset, int d, int bytes_per_chan, const float* q,
                   float* scratch, float* lg);
// Two query rows at once (GQA): scratch 4*d floats for keys.
bool KeyGroupPairAvx2(const uint8_t* block, uint32_t param_offset, int d, int bytes_per_chan, const float* q0,
                      const float* q1, float* scratch, float* lg0, float* lg1);
bool ValueBlockPairAvx2(const uint8_t* codes, const uint16_t* par, int d, int Cg, int nt, const float* p0,
                        const float* p1, float* acc0, float* acc1, float* scratch);
bool ValueBlock2Avx2(const uint8_t* codes, const uint16_t* par, int d, int Cg, int nt, const float* p, float* acc,
                     float* scratch);

}  // namespace iz::kv::cpu
