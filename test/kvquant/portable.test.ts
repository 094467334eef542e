// The portable (non-AVX2) inner loops must match the reference too: this file's process runs
// with INFERZIP_SIMD=portable, set before the addon is first used.
process.env.INFERZIP_SIMD = 'portable';

import { describe, expect, it } from 'vitest';

import { backend } from '../../lib/backend.js';

import { denseAttentionSync, dequantizeKVSync, quantizeKVSync } from '../../lib/kvquant/index.js';
import { maxAbs, maxAbsDiff, randTensor } from './helpers.js';

describe('portable KIVI loops', () => {
  it('run with SIMD off', () => {
    expect(backend().simd).toBe('portable');
  });

  it.each([
    [16, 16],
    [32, 32],
    [32, 8],
    [16, 64],
    [64, 16],
  ])('groupSize %i, channelGroupSize %i: fused == dequantize-then-attend', (G, Cg) => {
    const H = 2,
      T = 101,
      d = 64;
    const k = randTensor([H, T, d], G);
    const v = randTensor([H, T, d], Cg);
    for (const bits of [2, 4]) {
      using q = quantizeKVSync(k, v, { scheme: 'kivi', bits, groupSize: G, channelGroupSize: Cg });
      const deq = dequantizeKVSync(q);
      const query = randTensor([4, 3, d], 5);
      const ref = denseAttentionSync(query, deq.k, deq.v);
      expect(maxAbsDiff(q.attentionSync(query).data, ref.data)).toBeLessThanOrEqual(2e-6 * Math.max(1, maxAbs(ref.data)));
    }
  });
});
