// CUDA backend == CPU backend. Runs only where a GPU answers (skipped visibly otherwise);
// the kernels' arithmetic is covered on the CPU through the shared headers in the other tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { backend } from '../../lib/backend.js';
import { QuantizedKVCache, dequantizeKVSync, quantizeKVSync, type KVScheme } from '../../lib/kvquant/index.js';
import { maxAbs, maxAbsDiff, outlierKeys, randTensor, sliceTokens } from './helpers.js';

const hasCuda = backend().devices.length > 0;
// Encode and dequantize are documented bit-identical on both backends (the kernels are built
// with -fmad=false and share their arithmetic with the CPU); attention is within a tolerance
// (__expf, another summation order).
const bits = (x: Float32Array) => new Uint32Array(x.buffer, x.byteOffset, x.length);
const dir = mkdtempSync(join(tmpdir(), 'iz-kv-cuda-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(['kivi', 'vidkv', 'zipcache', 'fp8'] as KVScheme[])('CUDA vs CPU: %s', (scheme) => {
  it.skipIf(!hasCuda)('same packed bytes, dequantized values and attention', async () => {
    const H = 2,
      d = 32,
      T = 150;
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
    expect(bits(b.k.data)).toEqual(bits(a.k.data));
    expect(bits(b.v.data)).toEqual(bits(a.v.data));
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
    const da = dequantizeKVSync(a),
      db = dequantizeKVSync(b);
    expect(bits(db.k.data)).toEqual(bits(da.k.data));
    expect(bits(db.v.data)).toEqual(bits(da.v.data));
    const q = randTensor([2, 4, 2, 16], 6);
    expect(maxAbsDiff(a.attentionSync(q).data, b.attentionSync(q).data)).toBeLessThanOrEqual(
      1e-4 * Math.max(1, maxAbs(a.attentionSync(q).data)),
    );
  });
});

// head_dim 8 (the bundled model) packs two 2-bit tokens per 32-bit word, and a 16-token flush
// leaves a 32-token pool mask half written: each flush ORs codes into the last word of the
// previous one, which must move between the host planes and the device mirror too (KIVI is
// encoded on the GPU and copied back for saving; zipcache/vidkv are encoded on the host).
describe.each(['kivi', 'vidkv', 'zipcache', 'fp8'] as KVScheme[])(
  'CUDA vs CPU, words shared between flushes (head_dim 8): %s',
  (scheme) => {
    it.skipIf(!hasCuda)('one-token appends, 16-token flushes: same dequantized values, attention and saved planes', async () => {
      const H = 2,
        d = 8,
        T = 90;
      const k = outlierKeys([H, T, d], 7);
      const v = randTensor([H, T, d], 8);
      const opts = { scheme, heads: H, headDim: d, groupSize: 16, channelGroupSize: 8, residualLength: 16 } as const;
      using cpu = QuantizedKVCache.create({ ...opts, device: 'cpu' });
      using gpu = QuantizedKVCache.create({ ...opts, device: 'cuda' });
      for (const c of [cpu, gpu]) for (let t = 0; t < T; t++) c.appendSync(sliceTokens(k, t, t + 1), sliceTokens(v, t, t + 1));
      expect(gpu.memory.quantizedKeys).toBe(cpu.memory.quantizedKeys);
      const a = cpu.dequantizeSync();
      const b = gpu.dequantizeSync();
      expect(bits(b.k.data)).toEqual(bits(a.k.data));
      expect(bits(b.v.data)).toEqual(bits(a.v.data));
      const q = randTensor([4, 2, d], 9);
      const oc = cpu.attentionSync(q);
      expect(maxAbsDiff(oc.data, gpu.attentionSync(q).data)).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(oc.data)));
      // the host planes of the CUDA cache (what save() writes) hold every code too
      const path = join(dir, `${scheme}-d8.safetensors`);
      await gpu.save(path);
      using back = await QuantizedKVCache.load(path, { device: 'cpu' });
      const c = back.dequantizeSync();
      expect(bits(c.k.data)).toEqual(bits(a.k.data));
      expect(bits(c.v.data)).toEqual(bits(a.v.data));
    });
  },
);
