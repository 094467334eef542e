// TopV (pruneByTransport), Zero-TPrune (pruneByAttentionGraph) and TempMe (mergeClips):
// the spec's worked examples, equality with the plain TypeScript references
// (test/tokens/reference/reduce.ts) on random inputs, invariants, and hostile inputs.
// Kept sets and merge decisions must match exactly; scores and merged features agree to
// float rounding (exp/log/sqrt may differ in the last bit between V8 and libm).
import { describe, expect, it } from 'vitest';

import { InferzipError } from '../../lib/errors.js';
import { castFloat, tensor } from '../../lib/tensor.js';
import {
  mergeClips,
  mergeClipsSync,
  pruneByAttentionGraph,
  pruneByAttentionGraphSync,
  pruneByTransport,
  pruneByTransportSync,
} from '../../lib/tokens/index.js';
import * as lib from '../../lib/index.js';
import { rng } from './random.js';
import * as ref from './reference/reduce.js';

const f32 = (shape: number[], values: number[]) => tensor('f32', shape, Float32Array.from(values));

function randn(rand: () => number, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const u = Math.max(rand(), 1e-12);
    out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  }
  return out;
}

/** Softmax rows of random logits: [heads, n, n]. */
function softmaxRows(rand: () => number, heads: number, n: number, sharp = 3): Float32Array {
  const out = new Float32Array(heads * n * n);
  for (let r = 0; r < heads * n; r++) {
    let sum = 0;
    for (let j = 0; j < n; j++) sum += out[r * n + j] = Math.exp(sharp * rand());
    for (let j = 0; j < n; j++) out[r * n + j] = out[r * n + j]! / sum;
  }
  return out;
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rel = 1e-5): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const tol = rel * Math.max(1, Math.abs(want[i]!));
    if (!(Math.abs(got[i]! - want[i]!) <= tol)) expect.fail(`element ${i}: got ${got[i]}, want ${want[i]} (tol ${tol})`);
  }
}

async function expectCode(fn: () => unknown, code: string): Promise<void> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InferzipError);
    expect((e as InferzipError).code).toBe(code);
    return;
  }
  expect.fail(`expected ${code}`);
}

describe('public names', () => {
  it('are exported from the package root with Sync twins', () => {
    for (const name of ['pruneByTransport', 'pruneByAttentionGraph', 'mergeClips']) {
      expect(typeof (lib as Record<string, unknown>)[name]).toBe('function');
      expect(typeof (lib as Record<string, unknown>)[`${name}Sync`]).toBe('function');
    }
  });
});

describe('pruneByTransport (TopV)', () => {
  const visual = f32([6, 2], [1, 0, 0.9, 0.3, 0, 1, 1, 0.1, -1, 0.2, 0.2, -1]);
  const text = f32([2, 2], [1, 0, 0, 1]);

  it('the spec example: cost rows, scores and the kept set', async () => {
    const o = {
      grid: [2, 3] as [number, number],
      text: ref.toRows(text.data, 2, 2),
      alpha: 1,
      beta: 0.25,
      gamma: 0.25,
      eps: 0.1,
      iters: 10,
    };
    const cost = ref.transportCost(ref.toRows(visual.data, 6, 2), o);
    expectClose(cost[0]!, [0.25, 1.25], 1e-6);
    expectClose(cost[1]!, [0.16312, 0.795576], 1e-5);
    expectClose(
      ref.transportScores(ref.toRows(visual.data, 6, 2), o),
      [-0.227488, -0.439998, -0.311206, -0.259658, -1.139867, -0.885197],
      1e-5,
    );
    for (const res of [
      pruneByTransportSync(visual, { keep: 2, text, grid: [2, 3] }),
      await pruneByTransport(visual, { keep: 2, text, grid: [2, 3] }),
    ]) {
      expect(Array.from(res.kept)).toEqual([0, 3]);
      expect(Array.from(res.dropped)).toEqual([1, 2, 4, 5]);
      expectClose(res.scores, [-0.227488, -0.259658], 1e-5);
      expect(Array.from(res.tokens.data)).toEqual([1, 0, 1, Math.fround(0.1)]);
      expect(res.tokens.shape).toEqual([2, 2]);
    }
  });

  it('equals the reference on random inputs (targets, text, grids, recovery, dtypes, batches)', async () => {
    const rand = rng(101);
    for (let trial = 0; trial < 30; trial++) {
      const h = 1 + Math.floor(rand() * 6);
      const w = 1 + Math.floor(rand() * 7);
      const n = h * w;
      const c = 1 + Math.floor(rand() * 12);
      const batch = trial % 5 === 4 ? 2 : 0;
      const rows = batch || 1;
      const vis = randn(rand, rows * n * c);
      const useTarget = rand() < 0.5;
      const l = rand() < 0.5 ? 1 + Math.floor(rand() * 5) : 0;
      const tgt = randn(rand, rows * n * c);
      const txt = randn(rand, rows * l * c);
      const shape = (r: number) => (batch ? [batch, r, c] : [r, c]);
      const dtype = (['f32', 'bf16', 'f16'] as const)[trial % 3]!;
      const vt = castFloat(tensor('f32', shape(n), vis), dtype);
      const keep = Math.floor(rand() * (n + 2));
      const recover = rand() < 0.3 ? rand() : 0;
      const opts = {
        keep,
        grid: [h, w] as [number, number],
        recover,
        alpha: 0.5 + rand(),
        beta: rand() * 0.5,
        gamma: rand() * 0.5,
        eps: 0.05 + rand() * 0.3,
        iters: 1 + Math.floor(rand() * 20),
        ...(useTarget ? { target: castFloat(tensor('f32', shape(n), tgt), dtype) } : {}),
        ...(l ? { text: castFloat(tensor('f32', shape(l), txt), dtype) } : {}),
      };
      const got = trial % 2 ? await pruneByTransport(vt, opts) : pruneByTransportSync(vt, opts);
      const k = Math.min(keep, n);
      expect(got.kept.length).toBe(rows * k);
      const vf = lib.toFloat32(vt);
      const tf = opts.target ? lib.toFloat32(opts.target) : undefined;
      const xf = opts.text ? lib.toFloat32(opts.text) : undefined;
      for (let b = 0; b < rows; b++) {
        const want = ref.pruneByTransport(
          ref.toRows(vf, n, c, b * n * c),
          { ...opts, target: tf && ref.toRows(tf, n, c, b * n * c), text: xf && ref.toRows(xf, l, c, b * l * c) },
          k,
          Math.floor(k * recover + 1e-9),
        );
        expect(Array.from(got.kept.subarray(b * k, (b + 1) * k))).toEqual(want.kept);
        expect(Array.from(got.dropped.subarray(b * (n - k), (b + 1) * (n - k)))).toEqual(want.dropped);
        expectClose(got.scores.subarray(b * k, (b + 1) * k), want.scores, 1e-5);
      }
    }
  });

  it('invariants: ratio count, kept/dropped partition, scores of kept = top scores', () => {
    const rand = rng(102);
    const n = 64;
    const vt = tensor('f32', [n, 16], randn(rand, n * 16));
    const all = pruneByTransportSync(vt, { keep: n });
    expect(Array.from(all.kept)).toEqual([...Array(n).keys()]);
    const half = pruneByTransportSync(vt, { ratio: 0.3 });
    expect(half.kept.length).toBe(Math.floor(n * 0.3 + 1e-9));
    const seen = new Set([...half.kept, ...half.dropped]);
    expect(seen.size).toBe(n);
    const byIndex = new Map(Array.from(all.kept, (i, j) => [i, all.scores[j]!]));
    const minKept = Math.min(...half.scores);
    for (const d of half.dropped) expect(byIndex.get(d)!).toBeLessThanOrEqual(minKept);
    for (let j = 0; j < half.kept.length; j++) expect(half.scores[j]).toBe(byIndex.get(half.kept[j]!));
    const none = pruneByTransportSync(vt, { keep: 0 });
    expect(none.kept.length).toBe(0);
    expect(none.tokens.shape).toEqual([0, 16]);
  });

  it('a known answer: outlier tokens that match no target are pruned first', () => {
    // 8 tokens near (1, 0) or (0, 1) like the text, and 2 pointing away from both
    const rows = [
      [1, 0.05],
      [0.02, 1],
      [-1, -1],
      [1, -0.03],
      [0.01, 0.98],
      [0.97, 0.02],
      [-0.9, -1.1],
      [0.03, 1.02],
      [1.01, 0.01],
      [0.02, 0.99],
    ];
    const vt = f32([10, 2], rows.flat());
    const res = pruneByTransportSync(vt, { keep: 8, text: f32([2, 2], [1, 0, 0, 1]), beta: 0, gamma: 0 });
    expect(Array.from(res.dropped)).toEqual([2, 6]);
  });

  it('hostile inputs: typed errors, no crash', async () => {
    const vt = f32([4, 2], [1, 0, 0, 1, 1, 1, 0.5, 0.5]);
    await expectCode(() => pruneByTransport(vt, {} as never), 'INVALID_ARGUMENT');
    await expectCode(() => pruneByTransport(vt, { keep: 1, ratio: 0.5 }), 'INVALID_ARGUMENT');
    await expectCode(() => pruneByTransport(vt, { keep: -1 }), 'INVALID_ARGUMENT');
    await expectCode(() => pruneByTransport(vt, { keep: 1.5 }), 'INVALID_ARGUMENT');
    await expectCode(() => pruneByTransport(vt, { ratio: 1.5 }), 'INVALID_ARGUMENT');
    await expectCode(() => pruneByTransport(vt, { keep: 1, grid: [3, 3] }), 'SHAPE_MISMATCH');
    await expectCode(() => pruneByTransport(vt, { keep: 1, eps: 0 }), 'INVALID_ARGUMENT');
    await expectCode(() => pruneByTransport(vt, { keep: 1, eps: 1e-6 }), 'INVALID_ARGUMENT');
    await expectCode(() => pruneByTransport(vt, { keep: 1, target: f32([3, 2], [1, 0, 0, 1, 1, 1]) }), 'SHAPE_MISMATCH');
    await expectCode(() => pruneByTransport(vt, { keep: 1, text: f32([3, 3], [1, 0, 0, 1, 1, 1, 0, 0, 0]) }), 'SHAPE_MISMATCH');
    await expectCode(() => pruneByTransport(f32([2, 2], [1, NaN, 0, 1]), { keep: 1 }), 'INVALID_ARGUMENT');
    await expectCode(() => pruneByTransport(vt, { keep: 1, text: f32([1, 2], [Infinity, 0]) }), 'INVALID_ARGUMENT');
    await expectCode(() => pruneByTransport(f32([0, 2], []), { keep: 0 }), 'SHAPE_MISMATCH');
    await expectCode(() => pruneByTransport(tensor('i32', [2, 2], Int32Array.from([1, 2, 3, 4])) as never, { keep: 1 }), 'DTYPE_MISMATCH');
    await expectCode(() => pruneByTransport(null as never, { keep: 1 }), 'INVALID_ARGUMENT');
    // zero rows have cosine 0, not NaN
    const z = pruneByTransportSync(f32([4, 2], [0, 0, 0, 0, 1, 0, 0, 1]), { keep: 2 });
    expect(z.scores.every(Number.isFinite)).toBe(true);
  });
});

describe('pruneByAttentionGraph (Zero-TPrune)', () => {
  const tokens = f32([6, 2], [1, 0, 0, 1, 1, 0.05, 0.6, 0.8, -1, 0, 0.1, 1]);
  const att = f32(
    [6, 6],
    [
      0.5, 0.2, 0.1, 0.05, 0.1, 0.05, 0.3, 0.3, 0.2, 0.05, 0.05, 0.1, 0.2, 0.4, 0.2, 0.1, 0.05, 0.05, 0.1, 0.3, 0.1, 0.3, 0.15, 0.05, 0.4,
      0.1, 0.2, 0.05, 0.2, 0.05, 0.2, 0.2, 0.3, 0.1, 0.05, 0.15,
    ],
  );

  it('the spec example: importance, I stage, S stage', async () => {
    const heads = [ref.toRows(att.data, 6, 6)];
    expectClose(ref.graphImportance(heads, 30), [0.336069, 0.258262, 0.16515, 0.082337, 0.088279, 0.069903], 1e-5);
    for (const res of [pruneByAttentionGraphSync(tokens, att, { keep: 3 }), await pruneByAttentionGraph(tokens, att, { keep: 3 })]) {
      expect(Array.from(res.kept)).toEqual([0, 1, 4]);
      expectClose(res.scores, [0.336069, 0.258262, 0.088279], 1e-5);
      expect(Array.from(res.tokens.data)).toEqual([1, 0, 0, 1, -1, 0]);
    }
    // without the S stage the near-copy 2 stays and the unimportant 4 goes
    expect(Array.from(pruneByAttentionGraphSync(tokens, att, { keep: 3, similarShare: 0 }).kept)).toEqual([0, 1, 2]);
  });

  it('equals the reference on random inputs (heads, batches, shares, dtypes)', async () => {
    const rand = rng(201);
    for (let trial = 0; trial < 30; trial++) {
      const n = 1 + Math.floor(rand() * 40);
      const c = 1 + Math.floor(rand() * 10);
      const heads = 1 + Math.floor(rand() * 4);
      const batch = trial % 5 === 4 ? 2 : 0;
      const rows = batch || 1;
      const x = randn(rand, rows * n * c);
      const a = softmaxRows(rand, rows * heads, n);
      if (trial % 7 === 3) a.fill(0, 0, n); // a zero row: uniform
      const dtype = (['f32', 'bf16', 'f16'] as const)[trial % 3]!;
      const xt = castFloat(tensor('f32', batch ? [batch, n, c] : [n, c], x), dtype);
      const at = tensor('f32', batch ? [batch, heads, n, n] : heads === 1 && rand() < 0.5 ? [n, n] : [heads, n, n], a);
      const keep = Math.floor(rand() * (n + 1));
      const opts = { keep, iters: Math.floor(rand() * 40), similarShare: rand() };
      const got = trial % 2 ? await pruneByAttentionGraph(xt, at, opts) : pruneByAttentionGraphSync(xt, at, opts);
      const xf = lib.toFloat32(xt);
      for (let b = 0; b < rows; b++) {
        const hs = Array.from({ length: heads }, (_, h) => ref.toRows(a, n, n, (b * heads + h) * n * n));
        const want = ref.pruneByAttentionGraph(ref.toRows(xf, n, c, b * n * c), hs, keep, opts.iters, opts.similarShare);
        expect(Array.from(got.kept.subarray(b * keep, (b + 1) * keep))).toEqual(want.kept);
        expectClose(got.scores.subarray(b * keep, (b + 1) * keep), want.scores, 1e-6);
      }
    }
  });

  it('invariants: importance sums to 1, counts, ratio', () => {
    const rand = rng(202);
    const n = 50;
    const res = pruneByAttentionGraphSync(tensor('f32', [n, 8], randn(rand, n * 8)), tensor('f32', [3, n, n], softmaxRows(rand, 3, n)), {
      keep: n,
    });
    expect(res.kept.length).toBe(n);
    expect(res.scores.reduce((s, x) => s + x, 0)).toBeCloseTo(1, 5);
    const r = pruneByAttentionGraphSync(tensor('f32', [n, 8], randn(rand, n * 8)), tensor('f32', [n, n], softmaxRows(rand, 1, n)), {
      ratio: 0.25,
    });
    expect(r.kept.length).toBe(12);
    expect(new Set([...r.kept, ...r.dropped]).size).toBe(n);
  });

  it('hostile inputs: typed errors, no crash', async () => {
    await expectCode(() => pruneByAttentionGraph(tokens, f32([5, 5], new Array(25).fill(0.2)), { keep: 2 }), 'SHAPE_MISMATCH');
    await expectCode(() => pruneByAttentionGraph(tokens, f32([6], new Array(6).fill(0.2)), { keep: 2 }), 'SHAPE_MISMATCH');
    const neg = att.data.slice();
    neg[7] = -0.1;
    await expectCode(() => pruneByAttentionGraph(tokens, f32([6, 6], Array.from(neg)), { keep: 2 }), 'INVALID_ARGUMENT');
    const nan = att.data.slice();
    nan[3] = NaN;
    await expectCode(() => pruneByAttentionGraph(tokens, f32([6, 6], Array.from(nan)), { keep: 2 }), 'INVALID_ARGUMENT');
    await expectCode(() => pruneByAttentionGraph(tokens, att, {} as never), 'INVALID_ARGUMENT');
    await expectCode(() => pruneByAttentionGraph(tokens, att, { keep: 2, similarShare: 2 }), 'INVALID_ARGUMENT');
    await expectCode(() => pruneByAttentionGraph(tokens, att, { keep: 2, iters: -1 }), 'INVALID_ARGUMENT');
    await expectCode(() => pruneByAttentionGraph(f32([1, 6, 2], Array.from(tokens.data)), att, { keep: 2 }), 'SHAPE_MISMATCH');
  });
});

describe('mergeClips (TempMe)', () => {
  const frames = f32([2, 4, 2], [1, 0, 0.6, 0.8, 0, 1, -0.8, 0.6, 1, 0.1, 0.8, 0.6, 0, 1, -1, 0]);

  it('the spec example: ImgMe, cross-clip and intra-clip steps', async () => {
    const o = { imgKeep: 0.75, crossKeep: 0.7, intraKeep: 0.75 };
    for (const res of [mergeClipsSync(frames, o), await mergeClips(frames, o)]) {
      expectClose(res.tokens.data as Float32Array, [0.2, 0.933333, -0.8, 0.6, 0.933333, 0.233333, -1, 0], 1e-6);
      expect(Array.from(res.sizes)).toEqual([3, 1, 3, 1]);
      expect(Array.from(res.assignment)).toEqual([2, 0, 0, 1, 2, 2, 0, 3]);
      expect(Array.from(res.clipLengths)).toEqual([4]);
      expect(res.source.sourcesOf(0)).toEqual([1, 2, 6]);
    }
    const ref0 = ref.mergeClips(frames.data, 2, 4, 2, o);
    expectClose(ref0.x, [0.2, 0.933333, -0.8, 0.6, 0.933333, 0.233333, -1, 0], 1e-6);
  });

  it('equals the reference on random inputs (groups, keeps, dtypes)', async () => {
    const rand = rng(301);
    for (let trial = 0; trial < 25; trial++) {
      const t = 1 + Math.floor(rand() * 9);
      const p = 1 + Math.floor(rand() * 30);
      const c = 1 + Math.floor(rand() * 10);
      const x = randn(rand, t * p * c);
      const dtype = (['f32', 'bf16', 'f16'] as const)[trial % 3]!;
      const ft = castFloat(tensor('f32', [t, p, c], x), dtype);
      const o = {
        imgKeep: rand(),
        crossKeep: rand(),
        intraKeep: rand(),
        ...(rand() < 0.5 ? { groups: Array.from({ length: Math.floor(rand() * 4) }, () => 1 + Math.floor(rand() * 3)) } : {}),
      };
      const got = trial % 2 ? await mergeClips(ft, o) : mergeClipsSync(ft, o);
      const want = ref.mergeClips(lib.toFloat32(ft), t, p, c, o);
      expect(Array.from(got.assignment)).toEqual(Array.from(want.assignment));
      expect(Array.from(got.clipLengths)).toEqual(Array.from(want.clipLengths));
      expect(Array.from(got.sizes)).toEqual(Array.from(want.sizes));
      expectClose(lib.toFloat32(got.tokens), want.x, dtype === 'f32' ? 1e-6 : 1e-2);
    }
  });

  it('invariants: sizes sum to T*P, every output row holds its assignment, defaults reach one clip', () => {
    const rand = rng(302);
    const t = 12;
    const p = 49;
    const res = mergeClipsSync(tensor('f32', [t, p, 16], randn(rand, t * p * 16)));
    expect(res.clipLengths.length).toBe(1);
    expect(res.sizes.reduce((s, x) => s + x, 0)).toBe(t * p);
    const count = new Float32Array(res.sizes.length);
    for (const a of res.assignment) count[a]!++;
    expect(Array.from(count)).toEqual(Array.from(res.sizes));
    const paper = mergeClipsSync(tensor('f32', [t, p, 16], randn(rand, t * p * 16)), { groups: [2, 2, 3] });
    expect(paper.clipLengths.length).toBe(1);
    expect(paper.tokens.shape[0]).toBeLessThan(t * p * 0.4);
    // identical frames collapse hard across clips
    const one = randn(rand, p * 16);
    const same = new Float32Array(t * p * 16);
    for (let f = 0; f < t; f++) same.set(one, f * p * 16);
    const dup = mergeClipsSync(tensor('f32', [t, p, 16], same), { imgKeep: 1, crossKeep: 0.5, intraKeep: 1 });
    // cross-clip merges at keep 0.5 fold every copy into the first clip's token
    expect(dup.tokens.shape[0]).toBe(p);
    expect(Array.from(dup.sizes)).toEqual(new Array(p).fill(t));
  });

  it('a leading batch: each item as if alone', async () => {
    const rand = rng(303);
    const [b, t, p, c] = [3, 5, 7, 4];
    const x = randn(rand, b * t * p * c);
    const o = { imgKeep: 0.6, crossKeep: 0.6, intraKeep: 0.8 };
    const all = await mergeClips(tensor('f32', [b, t, p, c], x), o);
    const m = all.tokens.shape[1]!;
    expect(all.tokens.shape).toEqual([b, m, c]);
    expect(all.source.batch).toBe(b);
    for (let i = 0; i < b; i++) {
      const one = mergeClipsSync(tensor('f32', [t, p, c], x.slice(i * t * p * c, (i + 1) * t * p * c)), o);
      expect(Array.from(all.assignment.subarray(i * t * p, (i + 1) * t * p))).toEqual(Array.from(one.assignment));
      expect(Array.from((all.tokens.data as Float32Array).subarray(i * m * c, (i + 1) * m * c))).toEqual(
        Array.from(one.tokens.data as Float32Array),
      );
    }
  });

  it('hostile inputs: typed errors, no crash', async () => {
    await expectCode(() => mergeClips(f32([4, 2], [1, 0, 0, 1, 1, 1, 0, 0])), 'SHAPE_MISMATCH');
    await expectCode(() => mergeClips(frames, { imgKeep: -0.1 }), 'INVALID_ARGUMENT');
    await expectCode(() => mergeClips(frames, { groups: [0] }), 'INVALID_ARGUMENT');
    await expectCode(() => mergeClips(frames, { groups: 2 as never }), 'INVALID_ARGUMENT');
    await expectCode(() => mergeClips(f32([2, 1, 1], [NaN, 1])), 'INVALID_ARGUMENT');
    await expectCode(() => mergeClips(f32([0, 4, 2], [])), 'SHAPE_MISMATCH');
    const zero = mergeClipsSync(f32([2, 2, 2], [0, 0, 0, 0, 0, 0, 1, 0]));
    expect(Array.from(lib.toFloat32(zero.tokens)).every(Number.isFinite)).toBe(true);
  });
});

describe('direct addon calls (options objects) with nonsense throw typed errors instead of crashing', () => {
  it('pruneByTransport, pruneByAttentionGraph, mergeClips, receivedAttention', async () => {
    const { native } = await import('../../lib/native.js');
    const { toInferzipError } = await import('../../lib/errors.js');
    await import('../../lib/tokens/native.js');
    const n = native() as unknown as Record<string, (o: unknown) => unknown>;
    const v = new Float32Array(8);
    v.fill(0.5);
    const base = { visual: v, n: 4, c: 2, gridH: 2, gridW: 2, alpha: 1, beta: 0.25, gamma: 0.25, eps: 0.1, iters: 10, keep: 2, recover: 0 };
    const graph = { tokens: v, attention: new Float32Array(16).fill(0.25), n: 4, c: 2, heads: 1, iters: 3, similarShare: 0.5, keep: 2 };
    const clips = { frames: v, t: 2, p: 2, c: 2, imgKeep: 0.7, crossKeep: 0.7, intraKeep: 0.9 };
    const calls: [string, unknown][] = [
      ['tokensPruneByTransport', undefined],
      ['tokensPruneByTransport', 42],
      ['tokensPruneByTransport', { ...base, visual: new Float32Array(7) }],
      ['tokensPruneByTransport', { ...base, visual: new Int32Array(8) }],
      ['tokensPruneByTransport', { ...base, n: -1 }],
      ['tokensPruneByTransport', { ...base, keep: 5 }],
      ['tokensPruneByTransport', { ...base, recover: 3 }],
      ['tokensPruneByTransport', { ...base, gridH: 3 }],
      ['tokensPruneByTransport', { ...base, eps: 0 }],
      ['tokensPruneByTransport', { ...base, eps: Number.NaN }],
      ['tokensPruneByTransport', { ...base, text: new Float32Array(4) }],
      ['tokensPruneByTransport', { ...base, text: new Float32Array(3), textRows: 2 }],
      ['tokensPruneByTransport', { ...base, target: new Float32Array(2) }],
      ['tokensPruneByTransport', { ...base, n: 2 ** 31, c: 2 ** 31 }],
      ['tokensPruneByTransport', { ...base, visual: Float32Array.from([NaN, 0, 0, 0, 0, 0, 0, 0]) }],
      ['tokensPruneByAttentionGraph', { ...graph, attention: new Float32Array(15) }],
      ['tokensPruneByAttentionGraph', { ...graph, heads: 2 }],
      ['tokensPruneByAttentionGraph', { ...graph, attention: new Float32Array(16).fill(-1) }],
      ['tokensPruneByAttentionGraph', { ...graph, similarShare: 3 }],
      ['tokensPruneByAttentionGraph', { ...graph, keep: 9 }],
      ['tokensMergeClips', { ...clips, t: 3 }],
      ['tokensMergeClips', { ...clips, imgKeep: 2 }],
      ['tokensMergeClips', { ...clips, groups: Int32Array.from([0]) }],
      ['tokensMergeClips', { ...clips, groups: Float32Array.from([2]) }],
      ['tokensMergeClips', { ...clips, t: 2 ** 20, p: 2 ** 20 }],
      ['tokensReceivedAttention', { attention: new Float32Array(8), heads: 1, n: 3 }],
      ['tokensReceivedAttention', { attention: new Float32Array(9), heads: 0, n: 3 }],
    ];
    for (const [name, arg] of calls) {
      let code: string | undefined;
      try {
        n[name]!(arg);
      } catch (e) {
        code = toInferzipError(e).code;
      }
      expect(
        ['INVALID_ARGUMENT', 'SHAPE_MISMATCH', 'DTYPE_MISMATCH'],
        `${name} ${JSON.stringify(arg, (_k, x) => (ArrayBuffer.isView(x) ? `${x.constructor.name}(${(x as Float32Array).length})` : x))}`,
      ).toContain(code);
      // the async twin rejects the same way
      let asyncCode: string | undefined;
      try {
        await n[`${name}Async`]!(arg);
      } catch (e) {
        asyncCode = toInferzipError(e).code;
      }
      expect(asyncCode).toBe(code);
    }
  });
});
