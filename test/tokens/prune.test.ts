import { describe, expect, it } from 'vitest';

import { tensor } from '../../lib/tensor.js';
import {
  DynamicKVPruner,
  meanAttention,
  mergeByAttention,
  mergeByAttentionSync,
  pruneByAttention,
  pruneByAttentionSync,
} from '../../lib/tokens/index.js';
import { codeOf, codeOfAsync } from '../errors.js';

describe('pruneByAttention (FastV)', () => {
  // 10 tokens: 2 system, 6 image (indices 2..7), 2 text; 3 channels holding the index
  const tokens = tensor(
    'f32',
    [10, 3],
    Float32Array.from({ length: 30 }, (_, i) => Math.floor(i / 3)),
  );
  const attention = new Float32Array([0.5, 0.4, 0.01, 0.09, 0.03, 0.2, 0.05, 0.07, 0.3, 0.6]);

  it('drops the lowest-attended half of the span and keeps everything else in order', async () => {
    const res = await pruneByAttention(tokens, attention, { span: [2, 8] });
    // image attention: 2:.01 3:.09 4:.03 5:.2 6:.05 7:.07 -> keep 5, 3, 7
    expect(Array.from(res.kept)).toEqual([0, 1, 3, 5, 7, 8, 9]);
    expect(Array.from(res.dropped)).toEqual([2, 4, 6]);
    expect(res.tokens.shape).toEqual([7, 3]);
    expect(Array.from(res.tokens.data).filter((_, i) => i % 3 === 0)).toEqual([0, 1, 3, 5, 7, 8, 9]);
  });

  it('takes keep, averages [heads, N] attention, handles batches', () => {
    const twoHeads = tensor('f32', [2, 10], new Float32Array([...attention, ...attention.map((v, i) => (i === 2 ? 1 : v))]));
    // head mean makes token 2 the most attended image token
    expect(meanAttention(twoHeads)[2]).toBeCloseTo(0.505, 6);
    const batch = tensor('f32', [2, 10, 3], new Float32Array([...tokens.data, ...tokens.data.map((v) => v + 100)]));
    const res = pruneByAttentionSync(batch, twoHeads, { keep: 1, span: [2, 8] });
    expect(Array.from(res.kept)).toEqual([0, 1, 2, 8, 9]);
    expect(res.tokens.shape).toEqual([2, 5, 3]);
    expect(res.tokens.data[15]).toBe(100);
  });

  it('rejects bad options', async () => {
    expect(codeOf(() => pruneByAttentionSync(tokens, new Float32Array(9)))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => pruneByAttentionSync(tokens, attention, { ratio: 2 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => pruneByAttentionSync(tokens, attention, { keep: 11 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => pruneByAttentionSync(tokens, attention, { keep: 1, ratio: 0.5 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => pruneByAttentionSync(tokens, attention, { span: [5, 3] }))).toBe('INVALID_ARGUMENT');
    expect(
      codeOf(() =>
        pruneByAttentionSync(
          tokens,
          attention.map((v, i) => (i === 4 ? NaN : v)),
        ),
      ),
    ).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => pruneByAttentionSync(tensor('f32', [0, 3]), new Float32Array(0)))).toBe('SHAPE_MISMATCH');
    // the async variant rejects (never throws synchronously) with the same codes
    expect(await codeOfAsync(() => pruneByAttention(tokens, new Float32Array(9)))).toBe('SHAPE_MISMATCH');
    expect(
      await codeOfAsync(() =>
        pruneByAttention(
          tokens,
          attention.map((v, i) => (i === 4 ? NaN : v)),
        ),
      ),
    ).toBe('INVALID_ARGUMENT');
  });
});

describe('DynamicKVPruner (DyCoke decode-time pruning)', () => {
  it('reuses the kept set while attention is stable and recomputes when it drifts', async () => {
    const pruner = new DynamicKVPruner({ span: [2, 12] }); // 10 image tokens, keep 3
    const step1 = new Float32Array(14);
    [0.9, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1].forEach((v, i) => (step1[2 + i] = v));
    const a = await pruner.step(step1);
    expect(a.recomputed).toBe(true);
    expect(Array.from(a.kept)).toEqual([2, 3, 4]);
    // nearly the same distribution (cosine > 0.9), order changed slightly: kept set reused
    const step2 = step1.slice();
    step2[5] = 0.75;
    const b = await pruner.step(step2);
    expect(b.similarity).toBeGreaterThan(0.9);
    expect(b.recomputed).toBe(false);
    expect(Array.from(b.kept)).toEqual([2, 3, 4]);
    // attention moves to other tokens: recompute
    const step3 = new Float32Array(14);
    [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.9, 0.8, 0.7].forEach((v, i) => (step3[2 + i] = v));
    const c = pruner.stepSync(step3);
    expect(c.similarity).toBeLessThan(0.9);
    expect(c.recomputed).toBe(true);
    expect(Array.from(c.kept)).toEqual([9, 10, 11]);
    const mask = pruner.attendMask(16);
    expect(Array.from(mask)).toEqual([1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
    pruner.reset();
    expect(pruner.kept).toBeUndefined();
  });

  it('validates options and inputs', async () => {
    expect(codeOf(() => new DynamicKVPruner({ span: [3, 3] }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => new DynamicKVPruner({ span: [0, 4], pruneRatio: 1 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => new DynamicKVPruner({ span: [0, 4], threshold: 2 }))).toBe('INVALID_ARGUMENT');
    const p = new DynamicKVPruner({ span: [0, 4] });
    expect(codeOf(() => p.attendMask(4))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => p.stepSync(new Float32Array(3)))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => p.stepSync(new Float32Array([1, NaN, 0, 0])))).toBe('INVALID_ARGUMENT');
    expect(await codeOfAsync(() => p.step(new Float32Array([1, NaN, 0, 0])))).toBe('INVALID_ARGUMENT');
  });
});

describe('mergeByAttention (HoliTom inner-LLM merging)', () => {
  it('merges each dropped token into its most similar kept token, size-weighted', async () => {
    // 6 tokens, span [1, 5): kept by attention are 2 and 4; 1 resembles 2, 3 resembles 4
    const x = tensor('f32', [6, 2], new Float32Array([9, 9, 1, 0.1, 1, 0, 0, 1, 0.1, 1, 5, 5]));
    const attention = new Float32Array([0, 0.1, 0.5, 0.2, 0.6, 0]);
    const sizes = new Float32Array([1, 3, 1, 1, 1, 1]);
    const res = await mergeByAttention(x, attention, { span: [1, 5], keep: 2, sizes });
    expect(Array.from(res.kept)).toEqual([0, 2, 4, 5]);
    expect(Array.from(res.assignment)).toEqual([0, 1, 1, 2, 2, 3]);
    expect(Array.from(res.sizes)).toEqual([1, 4, 2, 1]);
    const d = Array.from(res.tokens.data);
    expect(d[2]).toBeCloseTo(1, 6); // (3*1 + 1*1) / 4
    expect(d[3]).toBeCloseTo(0.075, 6); // (3*0.1 + 0) / 4
    expect(d[4]).toBeCloseTo(0.05, 6);
    expect(d[5]).toBeCloseTo(1, 6);
    expect(codeOf(() => mergeByAttentionSync(x, attention, { span: [1, 5], keep: 0 }))).toBe('INVALID_ARGUMENT');
    expect(await codeOfAsync(() => mergeByAttention(x, attention, { span: [1, 5], keep: 0 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => mergeByAttentionSync(x, attention, { sizes: new Float32Array(2) }))).toBe('SHAPE_MISMATCH');
  });
});
