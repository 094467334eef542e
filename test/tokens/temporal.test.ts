import { describe, expect, it } from 'vitest';

import { DynamicKVPruner, InferzipError, pruneByAttention, segmentFrames, temporalMerge, tensor } from '../../lib/index.js';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

/** T frames of a 4x4 grid: a fixed background (tiny noise) and an object moving along positions 0..T-1. */
function video(T = 8, P = 16, C = 8) {
  const r = rng(7);
  const background = Array.from({ length: P }, () => Array.from({ length: C }, () => r()));
  const object = Array.from({ length: C }, (_, i) => (i % 2 ? 3 : -3));
  const data = new Float32Array(T * P * C);
  const objectAt = (t: number) => t % P;
  for (let t = 0; t < T; t++) {
    for (let p = 0; p < P; p++) {
      const src = p === objectAt(t) ? object : background[p]!;
      for (let c = 0; c < C; c++) data[(t * P + p) * C + c] = src[c]! + 0.01 * r();
    }
  }
  return { frames: tensor('f32', [T, P, C], data), T, P, C, objectAt, data };
}

function expectIndicesPointBack(res: ReturnType<typeof temporalMerge>, data: Float32Array, P: number, C: number) {
  const x = res.x.data as Float32Array;
  for (let i = 0; i < res.frame.length; i++) {
    if (res.sizes[i] !== 1) continue;
    const src = (res.frame[i]! * P + res.position[i]!) * C;
    for (let c = 0; c < C; c++) expect(x[i * C + c]).toBe(data[src + c]);
  }
}

describe('DyCoke temporal merging', () => {
  it('collapses static positions, keeps the moving object, indices point to frame and position', () => {
    const v = video();
    for (const mode of ['prune', 'merge'] as const) {
      const res = temporalMerge(v.frames, { method: 'dycoke', k: 0.7, mode });
      expect(res.x.shape[0]).toBeLessThan(v.T * v.P * 0.7);
      // frame 0 (first of every window) stays whole
      expect(Array.from(res.frame).filter((f) => f === 0)).toHaveLength(v.P);
      // the object's token survives in every frame
      for (let t = 0; t < v.T; t++) {
        const found = Array.from(res.frame).some((f, i) => f === t && res.position[i] === v.objectAt(t));
        expect(found, `object token of frame ${t}`).toBe(true);
      }
      if (mode === 'prune') expectIndicesPointBack(res, v.data, v.P, v.C);
      else expect(Array.from(res.sizes).reduce((a, b) => a + b, 0)).toBe(v.T * v.P);
    }
  });
});

describe('HoliTom temporal merging', () => {
  it('finds one static segment and averages static positions over time', () => {
    const v = video();
    const attention = new Float32Array(v.T * v.P).fill(0.01);
    for (let t = 0; t < v.T; t++) attention[t * v.P + v.objectAt(t)] = 1;
    const res = temporalMerge(v.frames, { method: 'holitom', tau: 0.8, retain: 0.5, attention });
    // Segments tile the video; the objective (static positions x (length - 1)) prefers
    // cutting where the object has swept through many positions.
    const segs = res.segments!;
    expect(segs[0]![0]).toBe(0);
    expect(segs.at(-1)![1]).toBe(v.T - 1);
    for (let i = 1; i < segs.length; i++) expect(segs[i]![0]).toBe(segs[i - 1]![1] + 1);
    expect(segs.length).toBeLessThan(v.T);
    // positions the object never visits inside a segment: one token, standing for every frame of it
    for (const [s, e] of segs) {
      if (e === s) continue;
      for (let p = 0; p < v.P; p++) {
        let visited = false;
        for (let t = s; t <= e; t++) if (v.objectAt(t) === p) visited = true;
        if (visited) continue;
        const idx = Array.from(res.position).map((q, i) => (q === p && res.frame[i]! >= s && res.frame[i]! <= e ? i : -1)).filter((i) => i >= 0);
        expect(idx, `segment [${s}, ${e}] position ${p}`).toHaveLength(1);
        expect(res.sizes[idx[0]!]).toBe(e - s + 1);
        expect(res.frame[idx[0]!]).toBe(s);
      }
    }
    // the most-attended tokens (the object) survive untouched
    for (let t = 0; t < v.T; t++) {
      const i = Array.from(res.frame).findIndex((f, j) => f === t && res.position[j] === v.objectAt(t));
      expect(i, `object token of frame ${t}`).toBeGreaterThanOrEqual(0);
    }
    expect(Array.from(res.sizes).reduce((a, b) => a + b, 0)).toBe(v.T * v.P);
    expect(res.x.shape[0]).toBeLessThan(v.T * v.P / 2);
  });

  it('segments by dynamic programming (a scene cut splits the video)', () => {
    const P = 4;
    const hi = new Float32Array(P).fill(0.99);
    const lo = new Float32Array(P).fill(0.1);
    const { segments } = segmentFrames([hi, hi, lo, hi, hi], P, 0.8);
    expect(segments).toEqual([[0, 2], [3, 5]]);
  });

  it('validates options', () => {
    const v = video();
    const err = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return (e as InferzipError).code;
      }
      return undefined;
    };
    expect(err(() => temporalMerge(v.frames, { method: 'holitom', grid: [3, 5] }))).toBe('SHAPE_MISMATCH');
    expect(err(() => temporalMerge(v.frames, { method: 'holitom', retain: 0 }))).toBe('INVALID_ARGUMENT');
    expect(err(() => temporalMerge(v.frames, { method: 'dycoke', k: 2 }))).toBe('INVALID_ARGUMENT');
    expect(err(() => temporalMerge(v.frames, { method: 'tome' } as never))).toBe('INVALID_ARGUMENT');
    expect(err(() => temporalMerge(tensor('f32', [0, 4, 2]), { method: 'dycoke' }))).toBe('SHAPE_MISMATCH');
    expect(temporalMerge(v.frames, { method: 'holitom', grid: [4, 4] }).x.shape[1]).toBe(v.C);
  });
});

describe('FastV and dynamic KV pruning', () => {
  it('drops the least attended image tokens and keeps the rest in order', () => {
    const x = tensor('f32', [10, 2], Float32Array.from({ length: 20 }, (_, i) => i));
    const att = new Float32Array([9, 9, 0.1, 0.5, 0.2, 0.9, 0.3, 0.8, 9, 9]);
    const res = pruneByAttention(x, att, { span: [2, 8], ratio: 0.5 });
    expect(Array.from(res.indices)).toEqual([0, 1, 3, 5, 7, 8, 9]);
    expect(Array.from(res.x.data as Float32Array).slice(4, 6)).toEqual([6, 7]);
    const heads = tensor('f32', [2, 10], Float32Array.from([...att, ...att]));
    expect(Array.from(pruneByAttention(x, heads, { span: [2, 8], keep: 1 }).indices)).toEqual([0, 1, 5, 8, 9]);
    expect(() => pruneByAttention(x, att, { span: [5, 20] })).toThrow(InferzipError);
    expect(() => pruneByAttention(x, new Float32Array(3))).toThrow(/expected 10/);
  });

  it('recomputes the kept set only when attention drifts', () => {
    const pruner = new DynamicKVPruner({ span: [1, 11], pruneRatio: 0.7 });
    const a = Float32Array.from({ length: 13 }, (_, i) => (i >= 1 && i <= 3 ? 1 : 0.01));
    const first = pruner.update(a.subarray(0, 12), 12);
    expect(first.recomputed).toBe(true);
    expect(Array.from(first.kept)).toEqual([0, 1, 2, 3, 11]);
    const same = pruner.update(a, 13);
    expect(same.recomputed).toBe(false);
    expect(Array.from(same.kept)).toEqual([0, 1, 2, 3, 11, 12]);
    const moved = Float32Array.from({ length: 13 }, (_, i) => (i >= 8 && i <= 10 ? 1 : 0.01));
    const next = pruner.update(moved, 13);
    expect(next.recomputed).toBe(true);
    expect(next.similarity).toBeLessThan(0.9);
    expect(Array.from(next.kept)).toEqual([0, 8, 9, 10, 11, 12]);
  });
});
