// Token-by-token decoding into an empty quantized cache, as a model does it. The first key
// flush of KIVI comes with no value to quantize (values keep R tokens); that used to
// dereference the not-yet-allocated value planes and crash the process.
import { describe, expect, it } from 'vitest';

import { KV_SCHEMES, QuantizedKVCache, tensor } from '../../lib/index.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

describe('decode steps from an empty quantized KV cache', () => {
  for (const scheme of KV_SCHEMES) {
    it(`${scheme}: one token at a time past several window flushes`, () => {
      const heads = 4, headDim = 8, R = 32, T = 100;
      const r = rng(7);
      const rand = (n: number) => Float32Array.from({ length: n }, r);
      using cache = QuantizedKVCache.create({ scheme, heads, headDim, residualLength: R, device: 'cpu' });
      for (let t = 0; t < T; t++) {
        cache.appendSync(tensor('f32', [heads, 1, headDim], rand(heads * headDim)), tensor('f32', [heads, 1, headDim], rand(heads * headDim)), {
          queries: tensor('f32', [2 * heads, 1, headDim], rand(2 * heads * headDim)),
        });
        const out = cache.attentionSync(tensor('f32', [2 * heads, 1, headDim], rand(2 * heads * headDim)));
        expect(out.data.every(Number.isFinite)).toBe(true);
      }
      expect(cache.tokens).toBe(T);
      expect(cache.memory.quantizedKeys).toBe(96); // three whole windows of R flushed
    });
  }
});
