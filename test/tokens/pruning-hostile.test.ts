// Hostile input for the native pruning and temporal passes: wrong shapes, NaN/Inf,
// empty tensors, k > n, DeviceTensors, direct addon calls with nonsense, and the
// async variants' promise that must not hold up the event loop.
import { describe, expect, it } from 'vitest';

import { DeviceTensor } from '../../lib/device-tensor.js';
import { toInferzipError } from '../../lib/errors.js';
import { native } from '../../lib/native.js';
import { tensor } from '../../lib/tensor.js';
import {
  DynamicKVPruner,
  mergeByAttention,
  mergeByAttentionSync,
  pruneByAttention,
  pruneByAttentionSync,
  mergeTemporal,
  mergeTemporalSync,
} from '../../lib/tokens/index.js';
import '../../lib/tokens/native.js';
import { codeOf, codeOfAsync } from '../errors.js';
import { rng } from './random.js';

const tokens = tensor(
  'f32',
  [10, 4],
  Float32Array.from({ length: 40 }, (_, i) => Math.sin(i)),
);
const attention = Float32Array.from({ length: 10 }, (_, i) => (i * 7) % 10);
const frames = tensor(
  'f32',
  [4, 16, 8],
  Float32Array.from({ length: 4 * 16 * 8 }, (_, i) => Math.cos(i)),
);

function withValue(t: Float32Array, i: number, v: number): Float32Array {
  const c = t.slice();
  c[i] = v;
  return c;
}

describe('pruning passes reject bad input with typed errors', () => {
  it('NaN / Inf in tokens, attention, sizes and frames', async () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      expect(codeOf(() => pruneByAttentionSync(tokens, withValue(attention, 3, bad)))).toBe('INVALID_ARGUMENT');
      expect(await codeOfAsync(() => pruneByAttention(tokens, withValue(attention, 3, bad)))).toBe('INVALID_ARGUMENT');
      const badTokens = tensor('f32', [10, 4], withValue(tokens.data, 17, bad));
      expect(codeOf(() => mergeByAttentionSync(badTokens, attention))).toBe('INVALID_ARGUMENT');
      expect(await codeOfAsync(() => mergeByAttention(badTokens, attention))).toBe('INVALID_ARGUMENT');
      expect(await codeOfAsync(() => mergeByAttention(tokens, attention, { sizes: withValue(new Float32Array(10).fill(1), 2, bad) }))).toBe(
        'INVALID_ARGUMENT',
      );
      const badFrames = tensor('f32', [4, 16, 8], withValue(frames.data, 100, bad));
      expect(await codeOfAsync(() => mergeTemporal(badFrames, { method: 'dycoke' }))).toBe('INVALID_ARGUMENT');
      expect(codeOf(() => mergeTemporalSync(badFrames, { method: 'holitom' }))).toBe('INVALID_ARGUMENT');
      expect(
        await codeOfAsync(() => mergeTemporal(frames, { method: 'holitom', attention: withValue(new Float32Array(64), 5, bad) })),
      ).toBe('INVALID_ARGUMENT');
      expect(await codeOfAsync(() => new DynamicKVPruner({ span: [2, 8] }).step(withValue(attention, 4, bad)))).toBe('INVALID_ARGUMENT');
    }
    expect(await codeOfAsync(() => mergeByAttention(tokens, attention, { sizes: new Float32Array(10) }))).toBe('INVALID_ARGUMENT'); // size 0
  });

  it('the error names the offending element', () => {
    try {
      mergeTemporalSync(tensor('f32', [4, 16, 8], withValue(frames.data, 100, NaN)), { method: 'dycoke' });
      expect.unreachable();
    } catch (e) {
      expect(String((e as Error).message)).toMatch(/frames holds a non-finite value .* at element 100/);
    }
  });

  it('wrong shapes, empty tensors, k > n, bad spans', async () => {
    expect(await codeOfAsync(() => pruneByAttention(tokens, new Float32Array(11)))).toBe('SHAPE_MISMATCH');
    expect(await codeOfAsync(() => pruneByAttention(tensor('f32', [10]), attention as never))).toBe('SHAPE_MISMATCH');
    expect(await codeOfAsync(() => pruneByAttention(tensor('f32', [0, 4]), new Float32Array(0)))).toBe('SHAPE_MISMATCH');
    expect(await codeOfAsync(() => pruneByAttention(tensor('f32', [10, 0]), attention))).toBe('SHAPE_MISMATCH');
    expect(await codeOfAsync(() => pruneByAttention(tokens, tensor('f32', [0, 10])))).toBe('SHAPE_MISMATCH');
    expect(await codeOfAsync(() => pruneByAttention(tokens, tensor('f32', [2, 2, 10])))).toBe('SHAPE_MISMATCH');
    expect(await codeOfAsync(() => pruneByAttention(tokens, attention, { keep: 11 }))).toBe('INVALID_ARGUMENT');
    expect(await codeOfAsync(() => pruneByAttention(tokens, attention, { span: [2, 5], keep: 4 }))).toBe('INVALID_ARGUMENT');
    expect(await codeOfAsync(() => pruneByAttention(tokens, attention, { span: [0, 11] }))).toBe('INVALID_ARGUMENT');
    expect(await codeOfAsync(() => pruneByAttention(tokens, attention, { keep: 1.5 }))).toBe('INVALID_ARGUMENT');
    expect(await codeOfAsync(() => mergeByAttention(tensor('f32', [2, 10, 4]), attention))).toBe('SHAPE_MISMATCH');
    expect(await codeOfAsync(() => mergeByAttention(tensor('i32', [10, 4]), attention))).toBe('DTYPE_MISMATCH');
    expect(await codeOfAsync(() => mergeByAttention(tokens, attention, { keep: 0 }))).toBe('INVALID_ARGUMENT');
    expect(await codeOfAsync(() => mergeTemporal(tensor('f32', [4, 0, 8]), { method: 'holitom' }))).toBe('SHAPE_MISMATCH');
    expect(await codeOfAsync(() => mergeTemporal(frames, { method: 'holitom', knn: 2000 }))).toBe('INVALID_ARGUMENT');
    expect(await codeOfAsync(() => mergeTemporal(frames, { method: 'holitom', grid: [4, 4], pool: 0 }))).toBe('INVALID_ARGUMENT');
    expect(await codeOfAsync(() => mergeTemporal(frames, null as never))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => new DynamicKVPruner({ span: [2, 8] }).stepSync(new Float32Array(7)))).toBe('SHAPE_MISMATCH');
  });

  it('k = n and k = 0 are fine where they make sense', async () => {
    const all = await pruneByAttention(tokens, attention, { keep: 10 });
    expect(all.kept.length).toBe(10);
    const none = await pruneByAttention(tokens, attention, { keep: 0 });
    expect(none.kept.length).toBe(0);
    expect(none.tokens.shape).toEqual([0, 4]);
    const emptySpan = await mergeByAttention(tokens, attention, { span: [3, 3], keep: 0 });
    expect(emptySpan.tokens.shape).toEqual([10, 4]);
  });

  it('DeviceTensors: DISPOSED when disposed, else a pointer to download()', async () => {
    const live = DeviceTensor.fromSync(tokens);
    const dead = DeviceTensor.fromSync(tokens);
    dead.dispose();
    const deadAtt = DeviceTensor.fromSync(tensor('f32', [10], attention));
    deadAtt.dispose();
    expect(await codeOfAsync(() => pruneByAttention(dead as never, attention))).toBe('DISPOSED');
    expect(await codeOfAsync(() => pruneByAttention(tokens, deadAtt as never))).toBe('DISPOSED');
    expect(await codeOfAsync(() => mergeByAttention(dead as never, attention))).toBe('DISPOSED');
    expect(await codeOfAsync(() => mergeTemporal(dead as never, { method: 'dycoke' }))).toBe('DISPOSED');
    expect(codeOf(() => new DynamicKVPruner({ span: [2, 8] }).stepSync(deadAtt as never))).toBe('DISPOSED');
    expect(await codeOfAsync(() => pruneByAttention(live as never, attention))).toBe('INVALID_ARGUMENT');
    live.dispose();
  });

  it('direct addon calls with nonsense throw typed errors instead of crashing', () => {
    const n = native();
    // One valid call per entry point, then each case breaks one thing of it.
    const prune = { attention: new Float32Array(5), heads: 1, n: 5, start: 0, end: 5, keep: 1, batch: 1, rowBytes: 4 };
    const step = { attention: new Float32Array(5), heads: 1, n: 5, start: 0, end: 5, hasKept: false, keep: 1, threshold: 0.9 };
    const mergeAtt = { tokens: new Float32Array(8), n: 4, c: 2, attention: new Float32Array(4), heads: 1, start: 0, end: 4, keep: 2 };
    const holitom = {
      frames: new Float32Array(8),
      t: 2,
      p: 2,
      c: 2,
      tau: 0.8,
      gridH: 0,
      gridW: 0,
      pool: 1,
      keepRatio: 0.5,
      attentionShare: 0.5,
      knn: 7,
    };
    const codes = [
      () => n.tokensPruneByAttention({ ...prune, attention: new Float32Array(4) }),
      () => n.tokensPruneByAttention({ ...prune, start: 3, end: 2, keep: 0 }),
      () => n.tokensPruneByAttention({ ...prune, keep: 6 }),
      () => n.tokensPruneByAttention({ ...prune, tokens: new Float32Array(9), rowBytes: 8 }),
      () => n.tokensPruneByAttention({ ...prune, tokens: new Float32Array(10), rowBytes: 6 }),
      () => n.tokensKvPruneStep({ ...step, end: 6 }),
      () => n.tokensKvPruneStep({ ...step, previous: new Float32Array(4) }),
      () => n.tokensKvPruneStep({ ...step, keep: 0 }),
      () => n.tokensMergeByAttention({ ...mergeAtt, attention: new Float32Array(3) }),
      () => n.tokensMergeByAttention({ ...mergeAtt, sizes: new Float32Array(3) }),
      () => n.tokensDycokeMerge({ frames: new Float32Array(8), t: 2, p: 2, c: 3, keep: 1, merge: false }),
      () => n.tokensDycokeMerge({ frames: new Float32Array(8), t: 2, p: 2, c: 2, keep: 3, merge: false }),
      () => n.tokensHolitomMerge({ ...holitom, gridH: 3, gridW: 1 }),
      () => n.tokensHolitomMerge({ ...holitom, pool: 2 }),
      () => n.tokensHolitomMerge({ ...holitom, keepRatio: 1.5 }),
      () => n.tokensSegmentFrames({ stable: new Uint8Array(3), t: 3, p: 2 }),
      () => n.tokensDensityPeakClusters({ x: new Float32Array(8), c: 2, ids: Int32Array.from([0, 4]), centres: 1, knn: 7 }),
      () => n.tokensDensityPeakClusters({ x: new Float32Array(8), c: 2, ids: new Int32Array(0), centres: 1, knn: 7 }),
    ].map((f) => codeOf(() => nativeCallOf(f)));
    for (const code of codes) expect(['INVALID_ARGUMENT', 'SHAPE_MISMATCH', 'DTYPE_MISMATCH']).toContain(code);
  });
});

/** Runs a raw addon call, converting its error into an InferzipError as the library does. */
function nativeCallOf(f: () => unknown): unknown {
  try {
    return f();
  } catch (e) {
    throw toInferzipError(e);
  }
}
describe('async variants leave the event loop free', () => {
  it('setImmediate ticks run while a large HoliTom call is in flight', async () => {
    const rand = rng(31);
    // pure noise: every token is clustered, so each frame's 1500 tokens go through DPC
    const big = tensor(
      'f32',
      [6, 1500, 64],
      Float32Array.from({ length: 6 * 1500 * 64 }, () => rand() - 0.5),
    );
    let ticks = 0;
    let done = false;
    const spin = () => {
      if (done) return;
      ticks++;
      setImmediate(spin);
    };
    const work = mergeTemporal(big, { method: 'holitom' }).then((r) => {
      done = true;
      return r;
    });
    setImmediate(spin);
    const res = await work;
    expect(res.frame.length).toBeGreaterThan(0);
    expect(ticks).toBeGreaterThan(0);
  });

  it('DynamicKVPruner.step applies steps in call order; stepSync and reset refuse while one runs', async () => {
    const pruner = new DynamicKVPruner({ span: [0, 8], pruneRatio: 0.5, threshold: 0.99 });
    const a = Float32Array.from([8, 7, 6, 5, 1, 1, 1, 1]);
    const b = Float32Array.from([1, 1, 1, 1, 5, 6, 7, 8]);
    const first = pruner.step(a);
    const second = pruner.step(b);
    expect(codeOf(() => pruner.stepSync(a))).toBe('BUSY');
    expect(codeOf(() => pruner.reset())).toBe('BUSY');
    a.fill(0); // the caller may reuse its buffer once step() returned
    const [r1, r2] = await Promise.all([first, second]);
    expect(Array.from(r1.kept)).toEqual([0, 1, 2, 3]);
    expect(r2.recomputed).toBe(true);
    expect(Array.from(r2.kept)).toEqual([4, 5, 6, 7]);
    expect(Number.isNaN(r1.similarity)).toBe(true);
    expect(r2.similarity).toBeLessThan(0.99);
    pruner.reset();
    expect(pruner.kept).toBeUndefined();
  });
});
