import { describe, expect, it } from 'vitest';

import { DeviceTensor } from '../../lib/device-tensor.js';
import { InferzipError, nativeCall } from '../../lib/errors.js';
import { native } from '../../lib/native.js';
import { castFloat, tensor, toFloat32, type Tensor } from '../../lib/tensor.js';
import {
  attentionBias,
  maxMergeable,
  mergeSchedule,
  mergeTokens,
  mergeTokensSync,
  scheduleTokens,
  type SourceMap,
  type MergeResult,
} from '../../lib/tokens/index.js';
import { rng } from './random.js';
import { codeOf, codeOfAsync } from '../errors.js';

const hasCuda = (() => {
  try {
    return native().backendInfo().cudaAvailable;
  } catch {
    return false;
  }
})();

function randn(n: number, rand: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  return out;
}

/**
 * Plain, obviously-correct ToMe step on one row (doubles, full score matrix).
 * Returns tokens (rows), sizes and dest, in the documented order.
 */
function referenceMerge(x: number[][], metric: number[][], sizes: number[], r: number, protect: Set<number>, keepOrder: boolean) {
  const n = x.length;
  const norm = (v: number[]) => {
    const l = Math.sqrt(v.reduce((s, e) => s + e * e, 0));
    return v.map((e) => (l > 0 ? e / l : 0));
  };
  const m = metric.map(norm);
  const A = [...Array(n).keys()].filter((i) => i % 2 === 0);
  const B = [...Array(n).keys()].filter((i) => i % 2 === 1);
  const best: { a: number; b: number; score: number }[] = [];
  for (const a of A) {
    if (protect.has(a)) continue;
    let bestB = -1;
    let bestScore = -Infinity;
    for (const b of B) {
      if (protect.has(b)) continue;
      let dot = 0;
      for (let k = 0; k < m[a]!.length; k++) dot += m[a]![k]! * m[b]![k]!;
      if (dot > bestScore) {
        bestScore = dot;
        bestB = b;
      }
    }
    if (bestB >= 0) best.push({ a, b: bestB, score: bestScore });
  }
  best.sort((p, q) => q.score - p.score || p.a - q.a);
  const mergedInto = new Map<number, number>();
  for (const e of best.slice(0, r)) mergedInto.set(e.a, e.b);
  const survivors = keepOrder ? [...Array(n).keys()].filter((i) => !mergedInto.has(i)) : [...A.filter((a) => !mergedInto.has(a)), ...B];
  const tokens: number[][] = [];
  const outSizes: number[] = [];
  const dest = new Array<number>(n);
  survivors.forEach((s, j) => {
    const group = [...Array(n).keys()].filter((i) => i === s || mergedInto.get(i) === s);
    for (const i of group) dest[i] = j;
    const w = group.reduce((acc, i) => acc + sizes[i]!, 0);
    tokens.push(x[s]!.map((_, k) => group.reduce((acc, i) => acc + x[i]![k]! * sizes[i]!, 0) / w));
    outSizes.push(w);
  });
  return { tokens, sizes: outSizes, dest };
}

function rows(data: Float32Array, n: number, c: number, offset = 0): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from(data.subarray(offset + i * c, offset + (i + 1) * c)));
}

describe('ToMe mergeTokens', () => {
  it('reproduces the spec check vector', async () => {
    const x = tensor('f32', [4, 2], new Float32Array([1, 0, 1, 0.1, 0, 1, 0.2, 1]));
    const res = await mergeTokens(x, { r: 1 });
    expect(res.tokens.shape).toEqual([3, 2]);
    const got = Array.from(res.tokens.data);
    const want = [0, 1, 1, 0.05, 0.2, 1];
    got.forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 6));
    expect(Array.from(res.sizes.data)).toEqual([1, 2, 1]);
    expect(Array.from(res.dest)).toEqual([1, 1, 0, 2]);
    expect(res.source.sourcesOf(1)).toEqual([0, 1]);
    // order-preserving mode: the merged pair sits where B0 (index 1) was
    const ordered = mergeTokensSync(x, { r: 1, keepOrder: true });
    expect(Array.from(ordered.tokens.data).map((v) => Math.round(v * 1e6) / 1e6)).toEqual([1, 0.05, 0, 1, 0.2, 1]);
    expect(Array.from(ordered.sizes.data)).toEqual([2, 1, 1]);
  });

  it('the native best-match scores are the cosines of the check vector', () => {
    const m = new Float32Array([1, 0, 1, 0.1, 0, 1, 0.2, 1]);
    const { bestB, score } = native().tokensTomeBestMatch({ metric: m, batch: 1, n: 4, cm: 2 });
    expect(Array.from(bestB)).toEqual([0, 1]);
    expect(score[0]).toBeCloseTo(0.995037, 5);
    expect(score[1]).toBeCloseTo(0.980581, 5);
  });

  for (const [seed, batch, n, c, cm, r, keepOrder, prot] of [
    [1, 1, 37, 8, 8, 10, false, 0],
    [2, 2, 64, 16, 5, 31, true, 1],
    [3, 3, 101, 33, 33, 20, false, 3],
    [4, 1, 200, 64, 17, 99, true, 0],
  ] as const) {
    it(`matches the JS reference (batch ${batch}, N ${n}, C ${c}, Cm ${cm}, r ${r}, keepOrder ${keepOrder}, protected ${prot})`, async () => {
      const rand = rng(seed);
      const xs = randn(batch * n * c, rand);
      const ms = randn(batch * n * cm, rand);
      const sz = new Float32Array(batch * n).map(() => 1 + Math.floor(rand() * 4));
      const x = tensor('f32', [batch, n, c], xs);
      const metric = tensor('f32', [batch, n, cm], ms);
      const sizes = tensor('f32', [batch, n], sz);
      const res = await mergeTokens(x, { r, metric, sizes, keepOrder, protectedTokens: prot });
      const protect = new Set([...Array(prot).keys()]);
      for (let b = 0; b < batch; b++) {
        const ref = referenceMerge(
          rows(xs, n, c, b * n * c),
          rows(ms, n, cm, b * n * cm),
          Array.from(sz.subarray(b * n, (b + 1) * n)),
          r,
          protect,
          keepOrder,
        );
        expect(Array.from(res.dest.subarray(b * n, (b + 1) * n))).toEqual(ref.dest);
        expect(Array.from(res.sizes.data.subarray(b * (n - r), (b + 1) * (n - r)))).toEqual(ref.sizes);
        const got = res.tokens.data.subarray(b * (n - r) * c, (b + 1) * (n - r) * c);
        const want = ref.tokens.flat();
        for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!)).toBeLessThan(1e-5);
      }
    });
  }

  it('keeps the invariants: sizes sum to N, r removed per step, protected never merge', () => {
    const rand = rng(9);
    const n = 97;
    const c = 12;
    let x: Tensor = tensor('f32', [2, n, c], randn(2 * n * c, rand));
    let sizes: Tensor<'f32'> | undefined;
    let source: SourceMap | undefined;
    let tokens = n;
    for (const r of mergeSchedule(4, { r: 12, inflection: 0.5 }, { tokens: n, protectedTokens: [0, 1] })) {
      const res: MergeResult<Tensor> = mergeTokensSync(x, { r, sizes, source, protectedTokens: [0, 1], keepOrder: true });
      expect(res.tokens.shape).toEqual([2, tokens - r, c]);
      tokens -= r;
      for (let b = 0; b < 2; b++) {
        const s = res.sizes.data.subarray(b * tokens, (b + 1) * tokens);
        expect(s.reduce((a, v) => a + v, 0)).toBe(n);
        // protected tokens 0 and 1 stay alone at the front in keepOrder mode
        expect(res.source.sourcesOf(0, b)).toEqual([0]);
        expect(res.source.sourcesOf(1, b)).toEqual([1]);
        expect(s[0]).toBe(1);
        expect(s[1]).toBe(1);
      }
      x = res.tokens;
      sizes = res.sizes;
      source = res.source;
    }
  });

  it('unmerge(merge(x)) == x when merged tokens were identical', () => {
    const rand = rng(5);
    const n = 40;
    const c = 6;
    const data = new Float32Array(n * c);
    // tokens 2i and 2i+1 are identical (so every A token has an exact twin in B)
    for (let i = 0; i < n / 2; i++) {
      const row = randn(c, rand);
      data.set(row, 2 * i * c);
      data.set(row, (2 * i + 1) * c);
    }
    const x = tensor('f32', [n, c], data);
    for (const keepOrder of [false, true]) {
      const res = mergeTokensSync(x, { r: n / 2, keepOrder });
      expect(Array.from(res.unmerge(res.tokens).data)).toEqual(Array.from(data));
    }
  });

  it('merges f16 and bf16 tensors and returns their dtype', () => {
    const rand = rng(11);
    const f = tensor('f32', [50, 16], randn(800, rand));
    for (const dt of ['f16', 'bf16'] as const) {
      const x = castFloat(f, dt);
      const res = mergeTokensSync(x, { r: 20 });
      expect(res.tokens.dtype).toBe(dt);
      const ref = mergeTokensSync(tensor('f32', [50, 16], toFloat32(x)), { r: 20 });
      expect(Array.from(res.dest)).toEqual(Array.from(ref.dest));
      const back = toFloat32(res.tokens);
      for (let i = 0; i < back.length; i++)
        expect(Math.abs(back[i]! - ref.tokens.data[i]!)).toBeLessThan(0.02 * (1 + Math.abs(ref.tokens.data[i]!)));
    }
  });

  it('DeviceTensors on the CPU backend give the host result', async () => {
    const rand = rng(12);
    const xs = tensor('f32', [2, 30, 8], randn(480, rand));
    const dx = DeviceTensor.fromSync(xs, { device: 'cpu' });
    const res = await mergeTokens(dx, { r: 7, keepOrder: true });
    const host = mergeTokensSync(xs, { r: 7, keepOrder: true });
    expect(res.tokens).toBeInstanceOf(DeviceTensor);
    expect(Array.from(res.tokens.downloadSync().data)).toEqual(Array.from(host.tokens.data));
    expect(Array.from(res.sizes.downloadSync().data)).toEqual(Array.from(host.sizes.data));
    const un = res.unmerge(res.tokens);
    expect(un.shape).toEqual([2, 30, 8]);
    dx.dispose();
    res.tokens.dispose();
    res.sizes.dispose();
    un.dispose();
  });

  it('f16/bf16 DeviceTensors use the shared kernel conversions and match the host path', () => {
    const rand = rng(14);
    const f = tensor('f32', [3, 41, 24], randn(3 * 41 * 24, rand));
    for (const dt of ['f16', 'bf16'] as const) {
      const xs = castFloat(f, dt);
      const sizes = tensor(
        'f32',
        [3, 41],
        new Float32Array(123).map(() => 1 + Math.floor(rand() * 3)),
      );
      const dx = DeviceTensor.fromSync(xs, { device: 'cpu' });
      const ds = DeviceTensor.fromSync(sizes, { device: 'cpu' });
      const dev = mergeTokensSync(dx, { r: 15, sizes: ds, protectedTokens: [0, 5] });
      const host = mergeTokensSync(xs, { r: 15, sizes, protectedTokens: [0, 5] });
      expect(dev.tokens.dtype).toBe(dt);
      expect(Array.from(dev.dest)).toEqual(Array.from(host.dest));
      // both round the same f32 results to nearest even: identical bits
      expect(Array.from(dev.tokens.downloadSync().data)).toEqual(Array.from(host.tokens.data));
      expect(Array.from(dev.sizes.downloadSync().data)).toEqual(Array.from(host.sizes.data));
      for (const t of [dx, ds, dev.tokens, dev.sizes]) t.dispose();
    }
  });

  // ViT-L/14-336 has 577 tokens; INFERZIP_TEST_TRIM=1 (CI's emulated-GPU runs, where every warp
  // shuffle is a fiber switch) takes 197 (ViT-B/16) with the same r / N ratio.
  const tomeN = process.env.INFERZIP_TEST_TRIM === '1' ? 197 : 577;
  it.skipIf(!hasCuda)(`CUDA gives the CPU result (N ${tomeN})`, async () => {
    const rand = rng(13);
    const N = tomeN;
    for (const dt of ['f32', 'f16', 'bf16'] as const) {
      const xs = castFloat(tensor('f32', [2, N, 64], randn(2 * N * 64, rand)), dt);
      const dx = DeviceTensor.fromSync(xs, { device: 'cuda' });
      const sz = tensor(
        'f32',
        [2, N],
        Float32Array.from({ length: 2 * N }, () => 1 + Math.floor(rand() * 3)),
      );
      const ds = DeviceTensor.fromSync(sz, { device: 'cuda' });
      for (const [keepOrder, sizes] of [
        [false, undefined],
        [true, sz],
      ] as const) {
        const r = Math.round((100 * N) / 577);
        const res = await mergeTokens(dx, { r, protectedTokens: 1, keepOrder, ...(sizes ? { sizes: ds } : {}) });
        const host = mergeTokensSync(xs, { r, protectedTokens: 1, keepOrder, ...(sizes ? { sizes } : {}) });
        expect(Array.from(res.dest)).toEqual(Array.from(host.dest));
        expect(Array.from(res.sizes.downloadSync().data)).toEqual(Array.from(host.sizes.data));
        const got = toFloat32(res.tokens.downloadSync());
        const want = toFloat32(host.tokens);
        // bit-identical: the reduce kernel sums in the CPU's order with __fmul_rn/__fadd_rn and is
        // built with -fmad=false, and both round the same f32 results to the output dtype
        expect(new Uint32Array(got.buffer, got.byteOffset, got.length)).toEqual(new Uint32Array(want.buffer, want.byteOffset, want.length));
        res.tokens.dispose();
        res.sizes.dispose();
      }
      dx.dispose();
      ds.dispose();
    }
  });

  describe.each([
    ['cpu', false],
    ['cuda', !hasCuda],
  ] as const)('device tensors on %s', (device, skip) => {
    it.skipIf(skip)('NaN/Inf tokens or metric and bad sizes are INVALID_ARGUMENT, like host tensors', async () => {
      const rand = rng(17);
      const data = randn(2 * 16 * 8, rand);
      const clean = DeviceTensor.fromSync(tensor('f32', [2, 16, 8], data), { device });
      for (const bad of [NaN, Infinity, -Infinity]) {
        const x = data.slice();
        x[37] = bad;
        const dx = DeviceTensor.fromSync(tensor('f32', [2, 16, 8], x), { device });
        expect(await codeOfAsync(() => mergeTokens(dx, { r: 4 }))).toBe('INVALID_ARGUMENT');
        expect(await codeOfAsync(() => mergeTokens(clean, { r: 4, metric: dx }))).toBe('INVALID_ARGUMENT');
        dx.dispose();
      }
      for (const bad of [0, -1, NaN, Infinity]) {
        const sz = new Float32Array(32).fill(1);
        sz[20] = bad;
        const ds = DeviceTensor.fromSync(tensor('f32', [2, 16], sz), { device });
        expect(await codeOfAsync(() => mergeTokens(clean, { r: 4, sizes: ds }))).toBe('INVALID_ARGUMENT');
        ds.dispose();
      }
      const ok = await mergeTokens(clean, { r: 4 });
      expect(ok.r).toBe(4);
      ok.tokens.dispose();
      ok.sizes.dispose();
      clean.dispose();
    });
  });

  it('attentionBias is log(size)', () => {
    const b = attentionBias(tensor('f32', [3], new Float32Array([1, 2, 4])));
    expect(Array.from(b.data)).toEqual([0, Math.fround(Math.log(2)), Math.fround(Math.log(4))]);
    expect(() => attentionBias(new Float32Array([1, 0]))).toThrow(InferzipError);
  });

  it('schedules r per layer', () => {
    expect(mergeSchedule(4, 8)).toEqual([8, 8, 8, 8]);
    const ramp = mergeSchedule(12, { r: 10, inflection: 0.5 });
    expect(ramp[0]).toBe(15);
    expect(ramp[11]).toBe(5);
    expect(ramp.reduce((a, v) => a + v, 0)).toBe(120);
    const capped = mergeSchedule(5, 100, { tokens: 197, protectedTokens: 1 });
    expect(capped).toEqual([98, 49, 24, 12, 6]);
    expect(scheduleTokens(197, capped)).toEqual([197, 99, 50, 26, 14, 8]);
    expect(maxMergeable(197, 1)).toBe(98);
    expect(maxMergeable(1)).toBe(0);
  });

  it('rejects bad input with typed errors', () => {
    const x = tensor('f32', [4, 2], new Float32Array([1, 0, 1, 0.1, 0, 1, 0.2, 1]));
    expect(codeOf(() => mergeTokensSync(x, { r: 3 }))).toBe('INVALID_ARGUMENT');
    expect(mergeTokensSync(x, { r: 3, clampR: true }).r).toBe(2);
    expect(codeOf(() => mergeTokensSync(x, { r: -1 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => mergeTokensSync(x, { r: 1.5 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => mergeTokensSync(tensor('f32', [0, 2]), { r: 0 }))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => mergeTokensSync(tensor('f32', [8]), { r: 0 }))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => mergeTokensSync(tensor('i32', [4, 2]), { r: 1 }))).toBe('DTYPE_MISMATCH');
    expect(codeOf(() => mergeTokensSync(tensor('f32', [4, 2], new Float32Array([1, NaN, 0, 0, 0, 0, 0, 0])), { r: 1 }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(codeOf(() => mergeTokensSync(x, { r: 1, metric: tensor('f32', [3, 2]) }))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => mergeTokensSync(x, { r: 1, sizes: new Float32Array([1, 1, 0, 1]) }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => mergeTokensSync(x, { r: 1, sizes: new Float32Array([1, 1]) }))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => mergeTokensSync(x, { r: 1, protectedTokens: [7] }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => mergeTokensSync(x, { r: 2, protectedTokens: 1 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => mergeSchedule(0, 1))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => mergeSchedule(3, { r: 2, inflection: 2 }))).toBe('INVALID_ARGUMENT');
    // native layer re-validates what TS already checked
    const base = { x: new Float32Array(8), batch: 1, n: 4, c: 2, cm: 2, r: 1, keepOrder: false };
    const cases: [Partial<typeof base>, string][] = [
      [{ r: 3 }, 'INVALID_ARGUMENT'],
      [{ x: new Float32Array(7) }, 'SHAPE_MISMATCH'],
      [{ x: new Float32Array([NaN, 0, 0, 0, 0, 0, 0, 0]) }, 'INVALID_ARGUMENT'],
    ];
    for (const [change, want] of cases) expect(codeOf(() => nativeCall(() => native().tokensTomeMerge({ ...base, ...change })))).toBe(want);
  });

  it('the native device entry point rejects hostile sizes and masks', () => {
    const code = (fn: () => unknown) => {
      try {
        nativeCall(fn);
      } catch (e) {
        return (e as InferzipError).code;
      }
      return 'no error';
    };
    const small = DeviceTensor.fromSync(tensor('f32', [4, 2]), { device: 'cpu' });
    const sizes = DeviceTensor.fromSync(tensor('f32', [2]), { device: 'cpu' });
    const device = { x: small.buffer, batch: 1, n: 4, c: 2, cm: 2, r: 1, keepOrder: false, dtype: 'f32' as const };
    const deviceCases: [object, string][] = [
      [{ n: 1000 }, 'SHAPE_MISMATCH'], // claims 1000 tokens over an 8-float buffer
      [{ sizes: sizes.buffer }, 'SHAPE_MISMATCH'],
      [{ protect: new Uint8Array(3) }, 'SHAPE_MISMATCH'],
      [{ dtype: 'i8' }, 'DTYPE_MISMATCH'],
      [{ cm: 3 }, 'SHAPE_MISMATCH'],
    ];
    for (const [change, want] of deviceCases) expect(code(() => native().tokensTomeMergeDevice({ ...device, ...change }))).toBe(want);
    const host = { x: new Float32Array(8), batch: 1, n: 4, c: 2, cm: 2, r: 1, keepOrder: false };
    const hostCases: [object, string][] = [
      [{ metric: new Float32Array(8), sizes: new Float32Array([1, 1, -1, 1]) }, 'INVALID_ARGUMENT'],
      [{ keepOrder: 'yes' }, 'INVALID_ARGUMENT'],
    ];
    for (const [change, want] of hostCases) expect(code(() => native().tokensTomeMerge({ ...host, ...change }))).toBe(want);
    small.dispose();
    sizes.dispose();
  });

  it('rejects a disposed DeviceTensor', async () => {
    const dx = DeviceTensor.fromSync(tensor('f32', [4, 2]), { device: 'cpu' });
    dx.dispose();
    await expect(mergeTokens(dx, { r: 1 })).rejects.toMatchObject({ code: 'DISPOSED' });
  });
});
