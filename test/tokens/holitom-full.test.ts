// HoliTom's inner-LLM merge (mergeByAttention) with the full attention matrix [heads, N, N]:
// the keep set is ranked by FastV's full-matrix criterion (the attention each token receives
// from all queries and heads, the same code path as pruneByAttention), then every dropped span
// token merges into its most similar kept span token. Checked against the plain reference,
// against the last-token form when only the last query row is non-zero, with a known answer,
// invariants and hostile shapes.
import { describe, expect, it } from 'vitest';

import { DeviceTensor } from '../../lib/device-tensor.js';
import { tensor, toFloat32 } from '../../lib/tensor.js';
import { mergeByAttention, mergeByAttentionSync, pruneByAttentionSync } from '../../lib/tokens/index.js';
import { codeOf, codeOfAsync } from '../errors.js';
import { expectSameArray, expectSameTensor } from './exact.js';
import { rng } from './random.js';
import * as prune from './reference/prune.js';
import * as ref from './reference/reduce.js';

function rows(rand: () => number, n: number, c: number): Float32Array {
  return Float32Array.from({ length: n * c }, () => rand() * 2 - 1);
}

describe('mergeByAttention with a full [heads, N, N] matrix', () => {
  it('equals the reference merge ranked by the reference received attention (ties, sizes, spans; sync and async)', async () => {
    const rand = rng(1511);
    for (let trial = 0; trial < 24; trial++) {
      const n = 2 + Math.floor(rand() * 70);
      const c = 1 + Math.floor(rand() * 24);
      const heads = 1 + Math.floor(rand() * 4);
      // quantized weights so equal received attention (ranking ties) happens
      const a = Float32Array.from({ length: heads * n * n }, () => Math.floor(rand() * 6) / 6);
      const x = tensor('f32', [n, c], rows(rand, n, c));
      const start = Math.floor(rand() * (n - 1));
      const options = {
        span: [start, n] as [number, number],
        ...(trial % 3 ? { ratio: 0.7 * rand() } : { keep: 1 + Math.floor(rand() * (n - start)) }),
        ...(trial % 2 ? { sizes: Float32Array.from({ length: n }, () => 1 + Math.floor(rand() * 4)) } : {}),
      };
      const want = prune.mergeByAttention(x, ref.receivedAttention(a, heads, n), options);
      const att = tensor('f32', [heads, n, n], a);
      const got = trial % 2 ? await mergeByAttention(x, att, options) : mergeByAttentionSync(x, att, options);
      expectSameArray(got.kept, want.kept);
      expectSameArray(got.dropped, want.dropped);
      expectSameArray(got.assignment, want.assignment);
      expectSameArray(got.sizes, want.sizes);
      expectSameTensor(got.tokens, want.tokens);
      // the keep set is the one pruneByAttention picks from the same matrix (one ranking path)
      expect(Array.from(got.kept)).toEqual(Array.from(pruneByAttentionSync(x, att, options).kept));
    }
  });

  it('only the last query row non-zero: the same merge as the last-token form [heads, N]', async () => {
    const rand = rng(1512);
    for (let trial = 0; trial < 12; trial++) {
      const n = 3 + Math.floor(rand() * 60);
      const heads = 1 + Math.floor(rand() * 4);
      const last = Float32Array.from({ length: heads * n }, () => rand()); // continuous: no near-ties
      const full = new Float32Array(heads * n * n);
      for (let h = 0; h < heads; h++) full.set(last.subarray(h * n, (h + 1) * n), (h * n + n - 1) * n);
      const x = tensor('f32', [n, 5], rows(rand, n, 5));
      const options = { ratio: 0.25 + 0.5 * rand(), span: [1, n] as [number, number] };
      const viaFull = await mergeByAttention(x, tensor('f32', [heads, n, n], full), options);
      const viaLast = mergeByAttentionSync(x, tensor('f32', [heads, n], last), options);
      expectSameArray(viaFull.kept, viaLast.kept);
      expectSameArray(viaFull.assignment, viaLast.assignment);
      expectSameArray(viaFull.sizes, viaLast.sizes);
      expectSameTensor(viaFull.tokens, viaLast.tokens);
    }
  });

  it('a known answer: causal attention where the last query disagrees with the average', () => {
    // 4 tokens, 1 head. Received: [1.3, 1.8, 0.8, 0.1] / 4 keeps 0 and 1; the last row alone
    // ([0.1, 0.1, 0.7, 0.1]) would keep 2 and 0.
    const att = tensor('f32', [1, 4, 4], Float32Array.from([1, 0, 0, 0, 0.1, 0.9, 0, 0, 0.1, 0.8, 0.1, 0, 0.1, 0.1, 0.7, 0.1]));
    // token 2 resembles token 1, token 3 resembles token 0
    const x = tensor('f32', [4, 2], Float32Array.from([1, 0, 0, 1, 0, 3, 2, 0.2]));
    const res = mergeByAttentionSync(x, att, { keep: 2 });
    expect(Array.from(res.kept)).toEqual([0, 1]);
    expect(Array.from(res.dropped)).toEqual([2, 3]);
    expect(Array.from(res.assignment)).toEqual([0, 1, 1, 0]);
    expect(Array.from(res.sizes)).toEqual([2, 2]);
    expect(Array.from(res.tokens.data)).toEqual(Array.from(Float32Array.from([1.5, 0.1, 0, 2]))); // rows: (x0 + x3) / 2 and (x1 + x2) / 2
    const lastRow = mergeByAttentionSync(x, tensor('f32', [1, 4], Float32Array.from([0.1, 0.1, 0.7, 0.1])), { keep: 2 });
    expect(Array.from(lastRow.kept)).toEqual([0, 2]);
  });

  it('invariants: sizes are conserved and every output is the size-weighted mean of its inputs', async () => {
    const rand = rng(1513);
    const [n, c, heads] = [90, 12, 3];
    const a = Float32Array.from({ length: heads * n * n }, () => rand());
    const x = rows(rand, n, c);
    const sizes = Float32Array.from({ length: n }, () => 1 + Math.floor(rand() * 3));
    const res = await mergeByAttention(tensor('f32', [n, c], x), tensor('f32', [heads, n, n], a), { ratio: 0.6, span: [10, 80], sizes });
    const m = res.kept.length;
    expect(m).toBe(n - Math.round(0.6 * 70));
    expect(res.sizes.reduce((s, v) => s + v, 0)).toBe(sizes.reduce((s, v) => s + v, 0));
    const got = toFloat32(res.tokens);
    for (let j = 0; j < m; j++) {
      let w = 0;
      const acc = new Float64Array(c);
      for (let i = 0; i < n; i++) {
        if (res.assignment[i] !== j) continue;
        // tokens outside the span never merge
        if (i < 10 || i >= 80) expect(res.kept[j]).toBe(i);
        w += sizes[i]!;
        for (let k = 0; k < c; k++) acc[k]! += sizes[i]! * x[i * c + k]!;
      }
      expect(res.sizes[j]).toBe(w);
      for (let k = 0; k < c; k++) expect(got[j * c + k]).toBeCloseTo(acc[k]! / w, 5);
    }
  });

  it('hostile shapes and values: typed errors, sync and async', async () => {
    const x = tensor('f32', [3, 2], Float32Array.from([1, 0, 0, 1, 1, 1]));
    const cases: [unknown, string][] = [
      [tensor('f32', [1, 3, 4], new Float32Array(12)), 'SHAPE_MISMATCH'], // not square
      [tensor('f32', [2, 4, 4], new Float32Array(32)), 'SHAPE_MISMATCH'], // N != tokens
      [tensor('f32', [0, 3, 3], new Float32Array(0)), 'SHAPE_MISMATCH'], // no heads
      [tensor('i32', [1, 3, 3], new Int32Array(9)), 'DTYPE_MISMATCH'],
      [tensor('f32', [1, 1, 3, 3], new Float32Array(9)), 'SHAPE_MISMATCH'], // rank 4
      [tensor('f32', [1, 3, 3], Float32Array.from([0, 0, 0, 0, NaN, 0, 0, 0, 0])), 'INVALID_ARGUMENT'],
      [tensor('f32', [1, 3, 3], Float32Array.from([0, 0, 0, 0, Infinity, 0, 0, 0, 0])), 'INVALID_ARGUMENT'],
    ];
    for (const [att, code] of cases) {
      expect(codeOf(() => mergeByAttentionSync(x, att as never, { keep: 1 }))).toBe(code);
      expect(await codeOfAsync(() => mergeByAttention(x, att as never, { keep: 1 }))).toBe(code);
    }
    const dev = DeviceTensor.fromSync(tensor('f32', [1, 3, 3], new Float32Array(9)), { device: 'cpu' });
    expect(codeOf(() => mergeByAttentionSync(x, dev as never, { keep: 1 }))).toBe('INVALID_ARGUMENT');
    expect(await codeOfAsync(() => mergeByAttention(x, dev as never, { keep: 1 }))).toBe('INVALID_ARGUMENT');
    dev.dispose();
    // options are still checked with a full matrix
    const ok = tensor('f32', [1, 3, 3], new Float32Array(9).fill(1 / 3));
    expect(codeOf(() => mergeByAttentionSync(x, ok, { keep: 0 }))).toBe('INVALID_ARGUMENT');
    expect(await codeOfAsync(() => mergeByAttention(x, ok, { sizes: new Float32Array(2) }))).toBe('SHAPE_MISMATCH');
  });
});
