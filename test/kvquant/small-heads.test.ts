// Regression: a KIVI flush that moves keys but no values (one-token decode steps with a
// tiny head_dim) dereferenced the value plane before it existed and crashed the process.
import { describe, expect, it } from 'vitest';

import { KV_SCHEMES, QuantizedKVCache, tensor } from '../../lib/index.js';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

describe('quantized KV cache with head_dim 8 (the bundled model)', () => {
  for (const scheme of KV_SCHEMES) {
    it(`${scheme}: 300 one-token decode steps, then attention`, () => {
      const r = rng(3);
      using cache = QuantizedKVCache.create({ scheme, heads: 4, headDim: 8 });
      for (let t = 0; t < 300; t++) {
        cache.appendSync(
          tensor('f32', [4, 1, 8], Float32Array.from({ length: 32 }, r)),
          tensor('f32', [4, 1, 8], Float32Array.from({ length: 32 }, r)),
        );
      }
      expect(cache.tokens).toBe(300);
      const out = cache.attentionSync(tensor('f32', [8, 1, 8], Float32Array.from({ length: 64 }, r)));
      expect(out.shape).toEqual([8, 1, 8]);
      expect(Array.from(out.data).every(Number.isFinite)).toBe(true);
      const { k, v } = cache.dequantizeSync();
      expect(k.shape).toEqual([1, 4, 300, 8]); // the cache always reports its batch dimension
      expect(v.shape).toEqual([1, 4, 300, 8]);
    });
  }
});
