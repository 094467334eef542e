import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import {
  compress,
  compressSync,
  decompress,
  decompressSync,
  exponentEntropy,
  exponentHistogram,
  simulateKernelDecode,
  unitFromSafetensorsEntries,
  type CompressedUnit,
} from '../../lib/df11/index.js';
import { DeviceTensor } from '../../lib/device-tensor.js';
import { readSafetensorsBuffer } from '../../lib/safetensors/index.js';
import { tensor, type Tensor } from '../../lib/tensor.js';
import { concatU16, firstMismatch, gaussianBf16, rng } from './helpers.js';

const fixture = (p: string) => fileURLToPath(new URL(`../../fixtures/${p}`, import.meta.url));

function expectRoundTrip(unit: CompressedUnit, inputs: Record<string, Tensor<'bf16'>>): void {
  const out = decompressSync(unit);
  expect(Object.keys(out)).toEqual(Object.keys(inputs));
  for (const [name, t] of Object.entries(inputs)) {
    expect(out[name]!.shape).toEqual(t.shape);
    expect(firstMismatch(out[name]!.data, t.data)).toBe(-1);
  }
}

describe('df11 codec: bit patterns', () => {
  it('round-trips every BF16 pattern whose exponent is < 240 (both signs, -0, subnormals, all mantissas)', () => {
    const codable: number[] = [];
    for (let w = 0; w < 65536; w++) if (((w >> 7) & 0xff) < 240) codable.push(w);
    expect(codable.length).toBe(65536 - 2 * 16 * 128);
    const data = new Uint16Array(codable);
    const unit = compressSync({ all: tensor('bf16', [data.length], data) });
    expect(unit.stats.rawTensors).toEqual([]);
    expect(unit.stats.maxCodeLength).toBeLessThanOrEqual(32);
    expect(unit.stats.tables).toBeLessThanOrEqual(17);
    const out = decompressSync(unit).all!;
    expect(firstMismatch(out.data, data)).toBe(-1);
    expect(out.data[0x8000 - 0x8000]).toBe(0); // +0 first
    expect(firstMismatch(simulateKernelDecode(unit), data)).toBe(-1);
    // the same patterns shuffled into a long stream (several blocks)
    const big = new Uint16Array(data.length * 8);
    for (let i = 0; i < big.length; i++) big[i] = data[(i * 7919) % data.length]!;
    const bigUnit = compressSync({ big: tensor('bf16', [big.length], big) });
    expect(bigUnit.buffers.outputPositions.byteLength / 4 - 1).toBeGreaterThan(10);
    expect(firstMismatch(decompressSync(bigUnit).big!.data, big)).toBe(-1);
  });

  it('decodes a unit of more than 32 MiB of output (written with streaming stores) exactly, on 1 and 2 threads', () => {
    const r = rng(77);
    const n = 17_000_003; // 34 MB of BF16, an odd length so the output ends unaligned
    const big = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      const u = r();
      const exp = u < 0.5 ? 120 : u < 0.8 ? 121 : u < 0.95 ? 119 : 100 + ((i * 31) % 30); // short and long codes
      big[i] = (exp << 7) | ((i * 40503) & 0x807f);
    }
    const unit = compressSync({ big: tensor('bf16', [n], big) });
    const out = new Uint16Array(n + 1).subarray(1); // 2-byte aligned, not 16: the aligned-store head runs
    for (const threads of [1, 2]) {
      out.fill(0);
      decompressSync(unit, { out, threads });
      expect(firstMismatch(out, big)).toBe(-1);
    }
  });

  it('stores tensors with exponents >= 240 (Inf, NaN, |x| >= 2^113) raw and unaltered', () => {
    const special = new Uint16Array([0x7f80, 0xff80, 0x7fc0, 0xffc1, 0x7801, 0xf87f, 0x3f80, 0x0000]);
    const huge: number[] = [];
    for (let w = 0; w < 65536; w++) if (((w >> 7) & 0xff) >= 240) huge.push(w);
    const inputs = {
      a: gaussianBf16([64, 32], 0.02, 1),
      special: tensor('bf16', [special.length], special),
      b: gaussianBf16([32, 16], 0.05, 2),
      huge: tensor('bf16', [huge.length], new Uint16Array(huge)),
    };
    const unit = compressSync(inputs);
    expect(unit.stats.rawTensors).toEqual(['special', 'huge']);
    expect(unit.encodedElements).toBe(64 * 32 + 32 * 16);
    expect(unit.totalElements).toBe(unit.encodedElements + special.length + huge.length);
    expect(unit.raw.special!.data).toBe(special);
    expectRoundTrip(unit, inputs);
  });
});

/** Total bits of an optimal (unlimited) Huffman code: the sum of all merged weights. */
function huffmanBits(hist: Float64Array): number {
  const w = Array.from(hist).filter((c) => c > 0);
  if (w.length === 1) return w[0]!;
  let total = 0;
  while (w.length > 1) {
    w.sort((a, b) => a - b);
    const m = w.shift()! + w.shift()!;
    total += m;
    w.push(m);
  }
  return total;
}

describe('df11 codec: code optimality', () => {
  it('spends exactly the optimal Huffman bit count when the 32-bit limit does not bind', () => {
    const file = readSafetensorsBuffer(new Uint8Array(readFileSync(fixture('stories260K/model.safetensors'))));
    const weights = file.tensors.filter((e) => e.dtype === 'BF16').map((e) => file.readSync(e.name) as Tensor<'bf16'>);
    for (const t of [...weights.slice(0, 4), gaussianBf16([4096, 64], 0.02, 11)]) {
      const unit = compressSync({ t });
      const n = t.data.length;
      const codeBits = Math.round((unit.stats.payloadBitsPerWeight - 8) * n);
      expect(codeBits).toBe(huffmanBits(exponentHistogram(t)));
      expect(unit.buffers.encodedExponent.byteLength).toBe(Math.ceil(codeBits / 8));
    }
  });
});

describe('df11 codec: reference fixture', () => {
  const file = readSafetensorsBuffer(new Uint8Array(readFileSync(fixture('dfloat11-unit.safetensors'))));
  const a = file.readSync('original.a').data as Uint16Array;
  const b = file.readSync('original.b').data as Uint16Array;
  const expected = concatU16([a, b]);

  it('decodes the reference encoder unit (non-canonical codes, three levels) to original.a then original.b', async () => {
    const unit = unitFromSafetensorsEntries(file, 'unit');
    expect(unit.buffers.luts.byteLength).toBe(16 * 256);
    expect(unit.slices.map((s) => [s.offset, s.length])).toEqual([
      [0, 51200],
      [51200, 30000],
    ]);
    const out = new Uint16Array(unit.totalElements);
    decompressSync(unit, { out });
    expect(firstMismatch(out, expected)).toBe(-1);
    const again = await decompress(unit, { threads: 1 });
    expect(firstMismatch(again['unit.0']!.data, a)).toBe(-1);
    expect(firstMismatch(again['unit.1']!.data, b)).toBe(-1);
  });

  it('kernel simulator gives the same words as the CPU decoder on the reference unit', () => {
    const unit = unitFromSafetensorsEntries(file, 'unit');
    expect(firstMismatch(simulateKernelDecode(unit), expected)).toBe(-1);
  });

  it('our encoder matches or beats the reference encoder on the same data', () => {
    const ref = unitFromSafetensorsEntries(file, 'unit');
    const ours = compressSync([
      ['a', tensor('bf16', [256, 200], a)],
      ['b', tensor('bf16', [100, 300], b)],
    ]);
    expect(ours.buffers.encodedExponent.byteLength).toBeLessThanOrEqual(ref.buffers.encodedExponent.byteLength);
    expect(Array.from(ours.buffers.splitPositions)).toEqual([51200n]);
    expect(ours.stats.payloadBitsPerWeight).toBeLessThanOrEqual(ours.stats.entropyBound + 0.25);
  });
});

describe('df11 codec: real model and layouts', () => {
  it('round-trips every BF16 weight of the bundled stories260K model as one unit and per tensor', () => {
    const file = readSafetensorsBuffer(new Uint8Array(readFileSync(fixture('stories260K/model.safetensors'))));
    const inputs: Record<string, Tensor<'bf16'>> = {};
    for (const e of file.tensors) if (e.dtype === 'BF16') inputs[e.name] = file.readSync(e.name) as Tensor<'bf16'>;
    const total = Object.values(inputs).reduce((s, t) => s + t.data.length, 0);
    expect(total).toBe(260032);
    const unit = compressSync(inputs);
    expectRoundTrip(unit, inputs);
    expect(unit.stats.exponentEntropy).toBeGreaterThan(2.7);
    expect(unit.stats.exponentEntropy).toBeLessThan(2.85);
    expect(unit.stats.payloadBitsPerWeight).toBeLessThanOrEqual(unit.stats.entropyBound + 0.25);
    expect(firstMismatch(simulateKernelDecode(unit), concatU16(Object.values(inputs).map((t) => t.data)))).toBe(-1);
    for (const [name, t] of Object.entries(inputs)) expectRoundTrip(compressSync({ [name]: t }), { [name]: t });
  });

  it('splits concatenated matrices back exactly at split_positions', () => {
    const inputs = {
      q: gaussianBf16([64, 48], 0.02, 3),
      k: gaussianBf16([1, 7], 0.02, 4),
      empty: tensor('bf16', [0, 5]),
      v: gaussianBf16([33, 65], 0.1, 5),
    };
    const unit = compressSync(inputs);
    expect(Array.from(unit.buffers.splitPositions, Number)).toEqual([3072, 3079, 3079]);
    expect(unit.slices.map((s) => [s.name, s.offset, s.length])).toEqual([
      ['q', 0, 3072],
      ['k', 3072, 7],
      ['empty', 3079, 0],
      ['v', 3079, 33 * 65],
    ]);
    expectRoundTrip(unit, inputs);
  });

  it('codes an entropy-0 unit (one exponent value) with 1 bit per exponent', () => {
    const n = 100_003;
    const data = new Uint16Array(n);
    for (let i = 0; i < n; i++) data[i] = 0x3f80 | (i & 0x7f) | (i & 1 ? 0x8000 : 0); // exponent 127 everywhere
    const unit = compressSync({ w: tensor('bf16', [n], data) });
    expect(unit.stats.exponentEntropy).toBe(0);
    expect(unit.stats.maxCodeLength).toBe(1);
    expect(unit.buffers.encodedExponent.byteLength).toBe(Math.ceil(n / 8));
    expectRoundTrip(unit, { w: tensor('bf16', [n], data) });
    expect(firstMismatch(simulateKernelDecode(unit), data)).toBe(-1);
  });

  it('handles empty units', async () => {
    const unit = compressSync({});
    expect(unit.totalElements).toBe(0);
    expect(await decompress(unit)).toEqual({});
    const one = compressSync({ z: tensor('bf16', [0]) });
    expect(decompressSync(one).z!.data.length).toBe(0);
  });

  it('is deterministic: same input, same bytes, whatever the thread count', async () => {
    const inputs = { a: gaussianBf16([1000, 513], 0.02, 7), b: gaussianBf16([77, 1000], 0.3, 8) };
    const u1 = compressSync(inputs, { threads: 1 });
    const u2 = await compress(inputs, { threads: 2 });
    const u3 = compressSync(inputs);
    for (const k of ['encodedExponent', 'signMantissa', 'luts', 'outputPositions', 'gaps'] as const) {
      expect(Buffer.from(u2.buffers[k]).equals(Buffer.from(u1.buffers[k]))).toBe(true);
      expect(Buffer.from(u3.buffers[k]).equals(Buffer.from(u1.buffers[k]))).toBe(true);
    }
    expectRoundTrip(u2, inputs);
    const one = decompressSync(u1, { threads: 1 });
    expect(firstMismatch(one.a!.data, inputs.a.data)).toBe(-1);
  });

  it('keeps codes within maxCodeLength and tables within 16 children on skewed exponent histograms', () => {
    // 200 exponent values with geometric frequencies: unlimited Huffman codes would be ~40 bits long
    const parts: number[] = [];
    for (let e = 1; e <= 200; e++) {
      const reps = Math.max(1, Math.floor(2 ** (20 - e / 2)));
      for (let r = 0; r < Math.min(reps, 200_000); r++) parts.push((e << 7) | (r & 0x7f));
    }
    const data = new Uint16Array(parts);
    const inputs = { w: tensor('bf16', [data.length], data) };
    for (const maxCodeLength of [32, 16, 12]) {
      const unit = compressSync(inputs, { maxCodeLength });
      expect(unit.stats.maxCodeLength).toBeLessThanOrEqual(maxCodeLength);
      expect(unit.stats.tables).toBeLessThanOrEqual(17);
      expectRoundTrip(unit, inputs);
      expect(firstMismatch(simulateKernelDecode(unit), data)).toBe(-1);
    }
  });

  it('decodes into a caller buffer and into a DeviceTensor on the CPU backend', async () => {
    const inputs = { a: gaussianBf16([300, 300], 0.02, 9), inf: tensor('bf16', [2], new Uint16Array([0x7f80, 0x3f80])) };
    const unit = await compress(inputs);
    const out = new Uint16Array(unit.totalElements);
    const views = await decompress(unit, { out });
    expect(views.a!.data.buffer).toBe(out.buffer);
    expect(firstMismatch(views.a!.data, inputs.a.data)).toBe(-1);
    using dev = DeviceTensor.empty('bf16', [unit.totalElements], { device: 'cpu' });
    const slices = await decompress(unit, { out: dev });
    const host = dev.downloadSync().data;
    expect(firstMismatch(host.subarray(slices.a!.offset, slices.a!.offset + slices.a!.length), inputs.a.data)).toBe(-1);
    expect(Array.from(host.subarray(slices.inf!.offset, slices.inf!.offset + 2))).toEqual([0x7f80, 0x3f80]);
    using dev2 = DeviceTensor.empty('bf16', [unit.totalElements], { device: 'cpu' });
    decompressSync(unit, { out: dev2 });
    expect(firstMismatch(dev2.downloadSync().data, host)).toBe(-1);
  });

  it('exponentEntropy matches the unit statistics', () => {
    const t = gaussianBf16([512, 512], 0.02, 10);
    const h = exponentEntropy(t);
    expect(h).toBeGreaterThan(2);
    expect(h).toBeLessThan(3.5);
    expect(compressSync({ t }).stats.exponentEntropy).toBeCloseTo(h, 10);
  });

  it('rejects bad arguments with typed errors', () => {
    expect(() => compressSync({ f: tensor('f32', [2]) })).toThrow(expect.objectContaining({ code: 'DTYPE_MISMATCH' }));
    expect(() =>
      compressSync([
        ['a', gaussianBf16([2], 1, 1)],
        ['a', gaussianBf16([2], 1, 1)],
      ]),
    ).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => compressSync({ a: gaussianBf16([2], 1, 1) }, { maxCodeLength: 40 })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    const unit = compressSync({ a: gaussianBf16([10], 1, 1) });
    expect(() => decompressSync(unit, { out: new Uint16Array(9) })).toThrow(expect.objectContaining({ code: 'SHAPE_MISMATCH' }));
    expect(() => decompressSync(unit, { out: new Float32Array(10) as unknown as Uint16Array })).toThrow(
      expect.objectContaining({ code: 'DTYPE_MISMATCH' }),
    );
  });
});
