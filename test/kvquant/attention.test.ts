// Fused attention from packed codes must equal dequantize-then-attend to float rounding,
// for every scheme, with GQA, batches, odd token counts, partly filled windows and decode steps.
import { describe, expect, it } from 'vitest';

import { QuantizedKVCache, denseAttentionSync, dequantizeKVSync, quantizeKVSync, type KVScheme } from '../../lib/kvquant/index.js';
import { tensor, type Tensor } from '../../lib/tensor.js';
import { maxAbs, maxAbsDiff, outlierKeys, randTensor, relErr, sliceTokens } from './helpers.js';

const SCHEMES: { scheme: KVScheme; bits?: number }[] = [
  { scheme: 'kivi', bits: 2 },
  { scheme: 'kivi', bits: 4 },
  { scheme: 'vidkv' },
  { scheme: 'zipcache' },
  { scheme: 'fp8' },
];

function expectClose(fused: Tensor<'f32'>, ref: Tensor<'f32'>): void {
  expect(fused.shape).toEqual(ref.shape);
  expect(fused.data.every(Number.isFinite)).toBe(true);
  expect(maxAbsDiff(fused.data, ref.data)).toBeLessThanOrEqual(2e-6 * Math.max(1, maxAbs(ref.data)));
}

describe.each(SCHEMES)('fused attention == dequantize-then-attend: $scheme $bits', ({ scheme, bits }) => {
  it('one-shot quantizeKV, batch 2, GQA 3:1, 77 tokens, 1 and 5 queries', () => {
    const B = 2,
      H = 2,
      Hq = 6,
      T = 77,
      d = 16;
    const k = randTensor([B, H, T, d], 11);
    const v = randTensor([B, H, T, d], 12);
    using q = quantizeKVSync(k, v, { scheme, bits, groupSize: 16 });
    const deq = dequantizeKVSync(q);
    expect(deq.k.shape).toEqual([B, H, T, d]);
    for (const [nq, causal] of [
      [1, false],
      [1, true],
      [5, true],
      [5, false],
    ] as const) {
      const query = randTensor([B, Hq, nq, d], 13 + nq);
      expectClose(q.attentionSync(query, { causal }), denseAttentionSync(query, deq.k, deq.v, { causal }));
    }
    // packed path differs from full precision by quantization error, not garbage
    const query = randTensor([B, Hq, 1, d], 99);
    const full = denseAttentionSync(query, k, v, { causal: false });
    const err = relErr(full.data, q.attentionSync(query, { causal: false }).data);
    // random normals are the worst case for 1-bit spectra (no channel structure): loose sanity bounds
    expect(err).toBeLessThan(scheme === 'fp8' ? 0.06 : bits === 4 ? 0.15 : scheme === 'vidkv' ? 0.8 : 0.6);
  });

  it('cache: prefill into a partly filled window, then one-token decode steps', async () => {
    const H = 2,
      Hq = 4,
      d = 16,
      T = 60;
    const k = outlierKeys([H, T, d], 21);
    const v = randTensor([H, T, d], 22);
    using cache = QuantizedKVCache.create({ scheme, bits, heads: H, headDim: d, groupSize: 8, residualLength: 16 });
    await cache.append(sliceTokens(k, 0, 45), sliceTokens(v, 0, 45));
    for (let t = 45; t <= T; t++) {
      if (t > 45) cache.appendSync(sliceTokens(k, t - 1, t), sliceTokens(v, t - 1, t));
      expect(cache.tokens).toBe(t);
      const deq = cache.dequantizeSync();
      const query = randTensor([1, Hq, 3, d], 30 + t);
      const fused = await cache.attention(query, { causal: true });
      expectClose(fused, denseAttentionSync(query, deq.k, deq.v, { causal: true }));
      // the residual window stays exact
      const m = cache.memory;
      const lastK = deq.k.data.subarray(((H - 1) * t + m.quantizedKeys) * d, H * t * d);
      const srcK = sliceTokens(k, m.quantizedKeys, t).data.subarray((H - 1) * (t - m.quantizedKeys) * d);
      expect(Array.from(lastK)).toEqual(Array.from(srcK));
    }
  });
});

describe('cache with a batch', () => {
  it.each(['kivi', 'zipcache'] as KVScheme[])('%s: batch 3, GQA 2:1, prefill + decode == dequantize-then-attend', (scheme) => {
    const B = 3,
      H = 2,
      d = 16,
      T = 41;
    const k = randTensor([B, H, T, d], 40);
    const v = randTensor([B, H, T, d], 41);
    using cache = QuantizedKVCache.create({ scheme, batch: B, heads: H, headDim: d, groupSize: 8, residualLength: 8 });
    const part = (t: Tensor<'f32'>, a: number, e: number) => {
      const out = new Float32Array(B * H * (e - a) * d);
      for (let i = 0; i < B * H; i++) out.set(t.data.subarray((i * T + a) * d, (i * T + e) * d), i * (e - a) * d);
      return tensor('f32', [B, H, e - a, d], out);
    };
    cache.appendSync(part(k, 0, 30), part(v, 0, 30));
    for (let t = 30; t < T; t++) cache.appendSync(part(k, t, t + 1), part(v, t, t + 1));
    const deq = cache.dequantizeSync();
    expect(deq.k.shape).toEqual([B, H, T, d]);
    const q = randTensor([B, 2 * H, 2, d], 42);
    expectClose(cache.attentionSync(q), denseAttentionSync(q, deq.k, deq.v));
    expect(() => cache.appendSync(randTensor([H, 1, d], 1), randTensor([H, 1, d], 2))).toThrow(/batch/);
  });
});

describe('residual window flush rules', () => {
  it('kivi: keys flush whole blocks of R tokens, values keep at most R tokens', () => {
    const H = 1,
      d = 16,
      R = 32;
    using cache = QuantizedKVCache.create({ scheme: 'kivi', heads: H, headDim: d, groupSize: 16, residualLength: R });
    const k = randTensor([H, 200, d], 1);
    const v = randTensor([H, 200, d], 2);
    cache.appendSync(sliceTokens(k, 0, 45), sliceTokens(v, 0, 45));
    expect(cache.memory.quantizedKeys).toBe(32);
    expect(cache.memory.quantizedValues).toBe(13);
    for (let t = 45; t < 64; t++) cache.appendSync(sliceTokens(k, t, t + 1), sliceTokens(v, t, t + 1));
    expect(cache.memory.quantizedKeys).toBe(64); // the 64th token completed a block of R
    expect(cache.memory.quantizedValues).toBe(32);
    cache.appendSync(sliceTokens(k, 64, 65), sliceTokens(v, 64, 65));
    expect(cache.memory.quantizedKeys).toBe(64);
    expect(cache.memory.quantizedValues).toBe(33); // the oldest value quantized once more than R are held
  });

  it('prefill of exactly R tokens: keys flush while no value has been quantized yet', () => {
    for (const scheme of ['kivi', 'vidkv', 'zipcache', 'fp8'] as KVScheme[]) {
      using cache = QuantizedKVCache.create({ scheme, heads: 2, headDim: 16, groupSize: 16, residualLength: 32 });
      const k = randTensor([2, 33, 16], 5);
      const v = randTensor([2, 33, 16], 6);
      cache.appendSync(sliceTokens(k, 0, 32), sliceTokens(v, 0, 32));
      expect(cache.memory.quantizedKeys).toBe(32);
      cache.appendSync(sliceTokens(k, 32, 33), sliceTokens(v, 32, 33));
      const deq = cache.dequantizeSync();
      const q = randTensor([2, 1, 16], 7);
      expectClose(cache.attentionSync(q), denseAttentionSync(q, deq.k, deq.v));
    }
  });

  it('defaults: b=2, G=32, R=128, 3 effective bits at head_dim 128', () => {
    using cache = QuantizedKVCache.create({ heads: 1, headDim: 128 });
    expect(cache.options).toMatchObject({ scheme: 'kivi', bits: 2, groupSize: 32, channelGroupSize: 32, residualLength: 128 });
    cache.appendSync(randTensor([1, 256 + 128, 128], 3), randTensor([1, 256 + 128, 128], 4));
    const m = cache.memory;
    expect(m.quantizedKeys).toBe(384); // the window reached R three times
    expect(m.quantizedValues).toBe(256); // the newest R values stay full precision
    expect(m.keyBits).toBe(3); // 2 + (16 + 16) / 32
    expect(m.valueBits).toBe(3);
    expect(m.residualBytes).toBe(128 * 128 * 4);
    expect(cache.memoryBytes).toBe(m.packedKeyBytes + m.packedValueBytes + m.residualBytes);
  });

  it('reports honest bits per scheme at head_dim 128', () => {
    const k = randTensor([2, 256, 128], 5);
    const v = randTensor([2, 256, 128], 6);
    const bits = (scheme: KVScheme, b?: number) => {
      using q = quantizeKVSync(k, v, { scheme, bits: b });
      return q.memory;
    };
    expect(bits('kivi', 2).keyBits).toBe(3);
    expect(bits('kivi', 4).valueBits).toBe(5);
    const fp8 = bits('fp8');
    expect(fp8.keyBits).toBeCloseTo(8 + 32 / (32 * 128), 10);
    const zip = bits('zipcache');
    // 40% at 2 bits, 60% at 4 bits, + 1 f16 pair per 32 channels, + index (64 bits per 32 tokens, split K/V)
    const low = Math.round(0.4 * 256);
    expect(zip.keyBits).toBeCloseTo((low * 2 + (256 - low) * 4) / 256 + 1 + 1 / 128, 6);
    const vid = bits('vidkv');
    // keys: 64 channels 2-bit + 32/32 params; 64 channels 1-bit + 32 bits of scales per token; + the layer's i16 channel order
    expect(vid.keyBits).toBeCloseTo((64 * 3 + 64 + 32) / 128 + (2 * 128 * 8) / (2 * 256 * 128), 6);
    // values: the non-salient 80% as ternary digits five per byte (stored once), a u8 scale
    // code per channel + an f16 reference per 32 tokens, the salient 20% as 2-bit codes + one
    // f16 (scale, min) pair per token, + the index (64 bits per 32 tokens)
    const sal = Math.round(0.2 * 256);
    const bytes =
      Math.ceil(Math.ceil(((256 - sal) * 128) / 5) / 4) * 4 + 8 * (128 + 2) + Math.ceil((sal * (2 * 128 + 32)) / 32) * 4 + 8 * 8;
    expect(vid.valueBits).toBeCloseTo((bytes * 8) / (256 * 128), 6);
    expect(vid.valueBits).toBeLessThanOrEqual(2.0);
  });
});

describe('tensor dtypes', () => {
  it('accepts f16 and bf16 input (converted exactly to f32 first)', () => {
    const k = randTensor([2, 40, 16], 7);
    const v = randTensor([2, 40, 16], 8);
    const f16 = (t: Tensor<'f32'>) =>
      tensor(
        'f16',
        t.shape,
        Uint16Array.from(t.data, (x) => 0x3c00 + (Math.round(Math.abs(x) * 100) % 1000)),
      );
    using q = quantizeKVSync(f16(k), f16(v), { scheme: 'kivi' });
    const d = dequantizeKVSync(q);
    expect(d.k.shape).toEqual([2, 40, 16]);
    expect(d.k.data.every((x) => x >= 1 && x < 2)).toBe(true);
  });
});

describe('KIVI fast loops for every group size they specialize (AVX2 where the CPU has it)', () => {
  it.each([
    [16, 8],
    [32, 32],
    [64, 64],
    [8, 16],
    [48, 32],
  ])('groupSize %i, channelGroupSize %i', (G, Cg) => {
    const H = 2,
      T = 150,
      d = 64;
    const k = randTensor([H, T, d], G + 1);
    const v = randTensor([H, T, d], Cg + 2);
    for (const bits of [2, 4]) {
      using q = quantizeKVSync(k, v, { scheme: 'kivi', bits, groupSize: G, channelGroupSize: Cg });
      const deq = dequantizeKVSync(q);
      const query = randTensor([6, 2, d], 7);
      expectClose(q.attentionSync(query), denseAttentionSync(query, deq.k, deq.v));
    }
  });
});
