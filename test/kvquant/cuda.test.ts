// CUDA backend == CPU backend. Runs only where a GPU answers (skipped visibly otherwise);
// the kernels' arithmetic is covered on the CPU through the shared headers in the other tests.
import { describe, expect, it } from 'vitest';

import { backend } from '../../lib/backend.js';
import { QuantizedKVCache, dequantizeKVSync, quantizeKVSync, type KVScheme } from '../../lib/kvquant/index.js';
import { maxAbs, maxAbsDiff, outlierKeys, randTensor, sliceTokens } from './helpers.js';

const hasCuda = backend().devices.length > 0;

describe.each(['kivi', 'vidkv', 'zipcache', 'fp8'] as KVScheme[])('CUDA vs CPU: %s', (scheme) => {
  it.skipIf(!hasCuda)('same packed bytes, dequantized values and attention', async () => {
    const H = 2, d = 32, T = 150;
    const k = outlierKeys([H, T, d], 1);
    const v = randTensor([H, T, d], 2);
    const opts = { scheme, heads: H, headDim: d, groupSize: 16, residualLength: 32 } as const;
    using cpu = QuantizedKVCache.create({ ...opts, device: 'cpu' });
    using gpu = QuantizedKVCache.create({ ...opts, device: 'cuda' });
    for (const c of [cpu, gpu]) {
      await c.append(sliceTokens(k, 0, 100), sliceTokens(v, 0, 100));
      for (let t = 100; t < T; t++) c.appendSync(sliceTokens(k, t, t + 1), sliceTokens(v, t, t + 1));
    }
    expect(gpu.memory.quantizedKeys).toBe(cpu.memory.quantizedKeys);
    const a = cpu.dequantizeSync();
    const b = gpu.dequantizeSync();
    expect(maxAbsDiff(a.k.data, b.k.data)).toBeLessThanOrEqual(1e-5 * maxAbs(a.k.data));
    expect(maxAbsDiff(a.v.data, b.v.data)).toBeLessThanOrEqual(1e-5 * maxAbs(a.v.data));
    const q = randTensor([4, 3, d], 3);
    const oc = cpu.attentionSync(q);
    const og = gpu.attentionSync(q);
    expect(maxAbsDiff(oc.data, og.data)).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(oc.data)));
  });
});

describe.each(['kivi', 'vidkv', 'zipcache', 'fp8'] as KVScheme[])('CUDA vs CPU one-shot quantizeKV (partial last group): %s', (scheme) => {
  it.skipIf(!hasCuda)('77 tokens, batch 2, GQA', () => {
    const k = randTensor([2, 2, 77, 16], 4);
    const v = randTensor([2, 2, 77, 16], 5);
    using a = quantizeKVSync(k, v, { scheme, groupSize: 16, device: 'cpu' });
    using b = quantizeKVSync(k, v, { scheme, groupSize: 16, device: 'cuda' });
    const da = dequantizeKVSync(a), db = dequantizeKVSync(b);
    expect(maxAbsDiff(da.k.data, db.k.data)).toBeLessThanOrEqual(1e-5 * maxAbs(da.k.data));
    expect(maxAbsDiff(da.v.data, db.v.data)).toBeLessThanOrEqual(1e-5 * maxAbs(da.v.data));
    const q = randTensor([2, 4, 2, 16], 6);
    expect(maxAbsDiff(a.attentionSync(q).data, b.attentionSync(q).data)).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(a.attentionSync(q).data)));
  });
});
