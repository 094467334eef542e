import { describe, expect, it } from 'vitest';

import { InferzipError, attentionBias, maxMergeR, mergeSchedule, mergeTokens, mergeTokensSync, tensor, type Tensor } from '../../lib/index.js';
import { referenceMerge } from './reference.js';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}
function randomTokens(n: number, c: number, seed: number): number[][] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Array.from({ length: c }, () => r()));
}
const t2 = (rows: number[][]): Tensor => tensor('f32', [rows.length, rows[0]!.length], Float32Array.from(rows.flat()));
const rows = (t: Tensor, c: number): number[][] => Array.from({ length: t.data.length / c }, (_, i) => Array.from((t.data as Float32Array).subarray(i * c, (i + 1) * c)));
function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InferzipError);
    return (e as InferzipError).code;
  }
  return undefined;
}

describe('ToMe bipartite soft matching', () => {
  it('passes the spec check vector', async () => {
    const x = t2([[1, 0], [1, 0.1], [0, 1], [0.2, 1]]);
    const res = await mergeTokens(x, { r: 1 });
    expect(res.x.shape).toEqual([3, 2]);
    const out = rows(res.x, 2);
    expect(out[0]).toEqual([0, 1]);
    expect(out[1]![0]).toBeCloseTo(1, 6);
    expect(out[1]![1]).toBeCloseTo(0.05, 6);
    expect(out[2]![0]).toBeCloseTo(0.2, 6);
    expect(out[2]![1]).toBeCloseTo(1, 6);
    expect(Array.from(res.sizes.data)).toEqual([1, 2, 1]);
    expect(res.sources(1)).toEqual([0, 1]);
  });

  for (const [n, c, r, keepOrder, seed] of [[17, 8, 5, false, 1], [64, 32, 20, true, 2], [101, 5, 50, false, 3], [2, 3, 1, false, 4]] as const) {
    it(`equals the plain JS reference (n=${n}, c=${c}, r=${r}, keepOrder=${keepOrder})`, () => {
      const x = randomTokens(n, c, seed);
      const sizes = x.map((_, i) => 1 + (i % 3));
      const ref = referenceMerge(x, r, { sizes, keepOrder });
      const res = mergeTokensSync(t2(x), { r, sizes: Float32Array.from(sizes), keepOrder });
      expect(Array.from(res.assign.data)).toEqual(ref.assign);
      expect(Array.from(res.sizes.data)).toEqual(ref.sizes);
      rows(res.x, c).forEach((row, i) => row.forEach((v, k) => expect(v).toBeCloseTo(ref.x[i]![k]!, 5)));
    });
  }

  it('keeps the invariants: sizes sum to N, exactly r removed, protected tokens never merge', () => {
    const x = randomTokens(50, 16, 9);
    const protect = [0, 7, 10];
    const res = mergeTokensSync(t2(x), { r: 20, protectedTokens: protect });
    expect(res.x.shape).toEqual([30, 16]);
    expect(Array.from(res.sizes.data).reduce((a, b) => a + b, 0)).toBe(50);
    for (const p of protect) expect(res.sources(res.assign.data[p]!)).toEqual([p]); // alone: nothing merged in or out
    expect(referenceMerge(x, 20, { protect }).assign).toEqual(Array.from(res.assign.data));
  });

  it('unmerge(merge(x)) returns x when merged tokens were identical', () => {
    const base = randomTokens(8, 6, 11);
    const x = base.flatMap((row) => [row, row]); // pairs (2i, 2i+1) identical: A_i matches B_i exactly
    const res = mergeTokensSync(t2(x), { r: 8 });
    expect(res.x.shape).toEqual([8, 6]);
    const back = rows(res.unmerge(res.x), 6);
    back.forEach((row, i) => row.forEach((v, k) => expect(v).toBeCloseTo(x[i]![k]!, 6)));
  });

  it('handles batches, bf16 input and a separate metric', async () => {
    const a = randomTokens(20, 4, 21);
    const b = randomTokens(20, 4, 22);
    const x = tensor('f32', [2, 20, 4], Float32Array.from([...a.flat(), ...b.flat()]));
    const res = await mergeTokens(x, { r: 6 });
    expect(res.x.shape).toEqual([2, 14, 4]);
    expect(Array.from(res.assign.data.subarray(20))).toEqual(referenceMerge(b, 6).assign);
    const metric = tensor('f32', [2, 20, 4], x.data as Float32Array);
    const bf = await mergeTokens({ dtype: 'bf16', shape: [2, 20, 4], data: new Uint16Array(160).fill(0x3f80) }, { r: 6, metric });
    expect(bf.x.dtype).toBe('bf16');
    expect(Array.from(bf.assign.data)).toEqual(Array.from(res.assign.data));
  });

  it('rejects bad input with typed errors', () => {
    const x = t2(randomTokens(10, 4, 5));
    expect(codeOf(() => mergeTokensSync(x, { r: 6 }))).toBe('INVALID_ARGUMENT'); // at most 5
    expect(mergeTokensSync(x, { r: 6, clamp: true }).r).toBe(5);
    expect(codeOf(() => mergeTokensSync(x, { r: -1 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => mergeTokensSync(x, { r: 1.5 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => mergeTokensSync(tensor('f32', [0, 4]), { r: 0 }))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => mergeTokensSync(tensor('f32', [4]), { r: 0 }))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => mergeTokensSync(tensor('i32', [2, 2]), { r: 0 }))).toBe('DTYPE_MISMATCH');
    const nan = t2([[1, 0], [NaN, 1]]);
    expect(codeOf(() => mergeTokensSync(nan, { r: 1 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => mergeTokensSync(x, { r: 1, metric: tensor('f32', [9, 4]) }))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => mergeTokensSync(x, { r: 1, sizes: new Float32Array(10).fill(0) }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => mergeTokensSync(x, { r: 1, protectedTokens: [10] }))).toBe('INVALID_ARGUMENT');
    expect(maxMergeR(10, [0])).toBe(4);
    expect(maxMergeR(3, [1])).toBe(0);
  });

  it('gives the proportional-attention bias and merge schedules', () => {
    expect(Array.from(attentionBias(new Float32Array([1, 2, 4])))).toEqual([0, Math.fround(Math.log(2)), Math.fround(Math.log(4))]);
    expect(() => attentionBias(new Float32Array([0]))).toThrow(InferzipError);
    expect(mergeSchedule(4, 8)).toEqual([8, 8, 8, 8]);
    const s = mergeSchedule(5, { r: 10, inflection: 0.5 });
    expect(s[0]).toBeGreaterThan(s[4]!);
    expect(s.reduce((a, b) => a + b, 0)).toBe(50);
    expect(mergeSchedule(12, 16, 197).every((r) => r <= 98)).toBe(true);
    expect(mergeSchedule(12, 100, 50).reduce((a, b) => a + b, 0)).toBeLessThan(50);
  });
});

import { native } from '../../lib/native.js';
const hasCuda = native().backendInfo().cudaAvailable;

describe('ToMe on CUDA', () => {
  it.skipIf(!hasCuda)('matches the CPU result (GPU similarity + arg-max kernels)', async () => {
    const x = t2(randomTokens(577, 64, 33));
    const cpu = await mergeTokens(x, { r: 100, protectedTokens: [0], device: 'cpu' });
    const gpu = await mergeTokens(x, { r: 100, protectedTokens: [0], device: 'cuda' });
    expect(Array.from(gpu.assign.data)).toEqual(Array.from(cpu.assign.data));
    (gpu.x.data as Float32Array).forEach((v, i) => expect(v).toBeCloseTo((cpu.x.data as Float32Array)[i]!, 5));
  });
});
