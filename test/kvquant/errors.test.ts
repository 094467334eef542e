// Bad input raises typed InferzipErrors (never a crash, hang or silent corruption).
import { describe, expect, it } from 'vitest';

import { InferzipError } from '../../lib/errors.js';
import { QuantizedKVCache, denseAttentionSync, dequantizeKV, quantizeKV, quantizeKVSync } from '../../lib/kvquant/index.js';
import { tensor } from '../../lib/tensor.js';
import { randTensor } from './helpers.js';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InferzipError);
    return (err as InferzipError).code;
  }
  throw new Error('expected an error');
}
async function codeAsync(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InferzipError);
    return (err as InferzipError).code;
  }
  throw new Error('expected an error');
}

const k = randTensor([2, 40, 16], 1);
const v = randTensor([2, 40, 16], 2);

describe('quantizeKV input errors', () => {
  it('mismatched K/V shapes, wrong rank, wrong dtype, empty', () => {
    expect(code(() => quantizeKVSync(k, randTensor([2, 41, 16], 3)))).toBe('SHAPE_MISMATCH');
    expect(code(() => quantizeKVSync(k, randTensor([3, 40, 16], 3)))).toBe('SHAPE_MISMATCH');
    expect(code(() => quantizeKVSync(randTensor([40, 16], 1), randTensor([40, 16], 2)))).toBe('SHAPE_MISMATCH');
    expect(code(() => quantizeKVSync(tensor('i32', [2, 40, 16]), v))).toBe('DTYPE_MISMATCH');
    expect(code(() => quantizeKVSync(tensor('f32', [2, 0, 16]), tensor('f32', [2, 0, 16])))).toBe('SHAPE_MISMATCH');
    expect(code(() => quantizeKVSync({ dtype: 'f32', shape: [2, 40, 16], data: new Float32Array(3) } as never, v))).toBe('SHAPE_MISMATCH');
  });

  it('unsupported bits, group sizes that do not divide, bad options', () => {
    expect(code(() => quantizeKVSync(k, v, { scheme: 'kivi', bits: 3 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => quantizeKVSync(k, v, { scheme: 'kivi', bits: 8 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => quantizeKVSync(k, v, { scheme: 'zipcache', bits: 2 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => quantizeKVSync(k, v, { scheme: 'fp8', bits: 4 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => quantizeKVSync(k, v, { channelGroupSize: 6 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => quantizeKVSync(k, v, { groupSize: 0 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => quantizeKVSync(k, v, { groupSize: 2.5 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => quantizeKVSync(k, v, { scheme: 'nope' as never }))).toBe('INVALID_ARGUMENT');
    expect(code(() => quantizeKVSync(k, v, { scheme: 'vidkv', salientFraction: 1.5 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => quantizeKVSync(k, v, { scheme: 'zipcache', probeFraction: 0 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => quantizeKVSync(randTensor([2, 40, 12], 1), randTensor([2, 40, 12], 2)))).toBe('INVALID_ARGUMENT');
    expect(code(() => QuantizedKVCache.create({ heads: 2, headDim: 16, groupSize: 32, residualLength: 48 }))).toBe('INVALID_ARGUMENT');
  });

  it('NaN or Infinity in K or V (sync and async)', async () => {
    const bad = randTensor([2, 40, 16], 4);
    bad.data[40 * 16 + 77] = NaN; // second head: the first head must not be half-appended
    expect(code(() => quantizeKVSync(bad, v))).toBe('INVALID_ARGUMENT');
    const inf = randTensor([2, 40, 16], 5);
    inf.data[3] = -Infinity;
    expect(await codeAsync(() => quantizeKV(k, inf, { scheme: 'fp8' }))).toBe('INVALID_ARGUMENT');
    using cache = QuantizedKVCache.create({ heads: 2, headDim: 16, groupSize: 8, residualLength: 16 });
    expect(await codeAsync(() => cache.append(bad, v))).toBe('INVALID_ARGUMENT');
    expect(cache.tokens).toBe(0); // nothing was half-appended
    cache.appendSync(k, v);
    expect(cache.dequantizeSync().k.data.length).toBe(2 * 40 * 16);
  });

  it('saliency inputs with the wrong shape', () => {
    expect(code(() => quantizeKVSync(k, v, { scheme: 'zipcache', queries: randTensor([3, 40, 16], 1) }))).toBe('SHAPE_MISMATCH');
    expect(code(() => quantizeKVSync(k, v, { scheme: 'zipcache', queries: randTensor([4, 39, 16], 1) }))).toBe('SHAPE_MISMATCH');
    expect(code(() => quantizeKVSync(k, v, { scheme: 'vidkv', scores: tensor('f32', [2, 39]) }))).toBe('SHAPE_MISMATCH');
    const s = tensor('f32', [2, 40]);
    s.data[5] = NaN;
    expect(code(() => quantizeKVSync(k, v, { scheme: 'vidkv', scores: s }))).toBe('INVALID_ARGUMENT');
  });
});

describe('cache errors', () => {
  it('head counts, head_dim, batch that differ from the cache', () => {
    using cache = QuantizedKVCache.create({ heads: 2, headDim: 16, groupSize: 8, residualLength: 16 });
    expect(code(() => cache.appendSync(randTensor([3, 4, 16], 1), randTensor([3, 4, 16], 2)))).toBe('SHAPE_MISMATCH');
    expect(code(() => cache.appendSync(randTensor([2, 4, 24], 1), randTensor([2, 4, 24], 2)))).toBe('SHAPE_MISMATCH');
    expect(code(() => cache.appendSync(randTensor([2, 2, 4, 16], 1), randTensor([2, 2, 4, 16], 2)))).toBe('SHAPE_MISMATCH');
    expect(code(() => cache.attentionSync(randTensor([4, 1, 16], 1)))).toBe('INVALID_ARGUMENT'); // empty cache
    cache.appendSync(randTensor([2, 4, 16], 1), randTensor([2, 4, 16], 2));
    expect(code(() => cache.attentionSync(randTensor([3, 1, 16], 1)))).toBe('SHAPE_MISMATCH'); // 3 query heads vs 2 KV heads
    expect(code(() => cache.attentionSync(randTensor([4, 5, 16], 1)))).toBe('SHAPE_MISMATCH'); // 5 causal queries, 4 tokens
    expect(code(() => cache.attentionSync(randTensor([4, 1, 16], 1), { scale: NaN }))).toBe('INVALID_ARGUMENT');
    const q = randTensor([4, 1, 16], 1);
    q.data[0] = Infinity;
    expect(code(() => cache.attentionSync(q))).toBe('INVALID_ARGUMENT');
  });

  it('use after dispose -> DISPOSED (cache and QuantizedKV)', async () => {
    const cache = QuantizedKVCache.create({ heads: 2, headDim: 16, groupSize: 8, residualLength: 16 });
    cache.appendSync(randTensor([2, 4, 16], 1), randTensor([2, 4, 16], 2));
    const pending = cache.attention(randTensor([2, 1, 16], 3)); // in flight while disposed
    cache.dispose();
    cache.dispose(); // twice is fine
    expect((await pending).shape).toEqual([2, 1, 16]);
    expect(code(() => cache.appendSync(randTensor([2, 1, 16], 1), randTensor([2, 1, 16], 2)))).toBe('DISPOSED');
    expect(await codeAsync(() => cache.append(randTensor([2, 1, 16], 1), randTensor([2, 1, 16], 2)))).toBe('DISPOSED');
    expect(code(() => cache.memoryBytes)).toBe('DISPOSED');
    const q = quantizeKVSync(k, v);
    const planes = q.planes;
    expect(planes.keyBlocks?.shape[0]).toBe(1);
    q.dispose();
    expect(await codeAsync(() => dequantizeKV(q))).toBe('DISPOSED');
    expect(code(() => q.planes)).toBe('DISPOSED');
  });

  it('denseAttention validates too', () => {
    expect(code(() => denseAttentionSync(randTensor([3, 1, 16], 1), k, v))).toBe('SHAPE_MISMATCH');
    expect(code(() => denseAttentionSync(randTensor([2, 1, 8], 1), k, v))).toBe('SHAPE_MISMATCH');
  });
});
