import { describe, expect, it } from 'vitest';

import { castFloat, tensor, toFloat32 } from '../../lib/tensor.js';
import { mergeTemporal, mergeTemporalSync } from '../../lib/tokens/index.js';
import { densityPeakClusters, segmentFrames } from './native-hooks.js';
import { rng } from './random.js';
import { codeOf } from '../errors.js';

function randVec(c: number, rand: () => number): Float32Array {
  return Float32Array.from({ length: c }, () => rand() * 2 - 1);
}

/**
 * Synthetic video: an 8x8 grid of tokens with a fixed random background per position (plus
 * tiny noise per frame) and a 2x2 object whose four parts move one column right per frame
 * along rows 2-3.
 */
function video(t: number, seed = 1) {
  const h = 8;
  const w = 8;
  const p = h * w;
  const c = 16;
  const rand = rng(seed);
  const background = Array.from({ length: p }, () => randVec(c, rand));
  const parts = Array.from({ length: 4 }, () => randVec(c, rand));
  const data = new Float32Array(t * p * c);
  const objectAt = (f: number): Map<number, number> => {
    const m = new Map<number, number>();
    for (let dr = 0; dr < 2; dr++) for (let dc = 0; dc < 2; dc++) m.set((2 + dr) * w + f + dc, dr * 2 + dc);
    return m;
  };
  for (let f = 0; f < t; f++) {
    const obj = objectAt(f);
    for (let q = 0; q < p; q++) {
      const part = obj.get(q);
      const base = part !== undefined ? parts[part]! : background[q]!;
      for (let k = 0; k < c; k++) data[(f * p + q) * c + k] = base[k]! + (rand() - 0.5) * 0.004;
    }
  }
  return { frames: tensor('f32', [t, p, c], data), t, p, c, h, w, parts, objectAt, data };
}

function cos(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return d / Math.sqrt(na * nb);
}

describe('mergeTemporal: DyCoke', () => {
  it('prunes similar tokens of odd frames and of frame w+2 in 4-frame windows; the moving object survives', async () => {
    const v = video(8);
    const res = await mergeTemporal(v.frames, { method: 'dycoke', pruneRatio: 0.8 });
    const keep = Math.round(0.2 * v.p);
    // frames 1,3,5,7 (pass 1) and 2,6 (pass 2) keep `keep` tokens; frames 0 and 4 stay whole
    const perFrame = new Array<number>(v.t).fill(0);
    for (const f of res.frame) perFrame[f]!++;
    expect(perFrame).toEqual([64, keep, keep, keep, 64, keep, keep, keep]);
    expect(res.tokens.shape).toEqual([2 * 64 + 6 * keep, v.c]);
    // every object token of every frame survives
    for (let f = 0; f < v.t; f++) for (const q of v.objectAt(f).keys()) expect(res.assignment[f * v.p + q]).toBeGreaterThanOrEqual(0);
    // indices point at the token that was kept (prune mode copies it exactly)
    for (let j = 0; j < res.frame.length; j++) {
      const id = res.frame[j]! * v.p + res.position[j]!;
      expect(res.assignment[id]).toBe(j);
      expect(Array.from(res.tokens.data.subarray(j * v.c, (j + 1) * v.c))).toEqual(Array.from(v.data.subarray(id * v.c, (id + 1) * v.c)));
      expect(res.sizes[j]).toBe(1);
    }
    // outputs ordered by frame then position
    for (let j = 1; j < res.frame.length; j++)
      expect(res.frame[j]! * v.p + res.position[j]!).toBeGreaterThan(res.frame[j - 1]! * v.p + res.position[j - 1]!);
  });

  it('merge mode folds pruned tokens into their matched token with size-weighted averages', async () => {
    const v = video(8, 2);
    const res = await mergeTemporal(castFloat(v.frames, 'bf16'), { method: 'dycoke', pruneRatio: 0.8, mode: 'merge' });
    expect(res.tokens.dtype).toBe('bf16');
    expect(res.sizes.reduce((a, s) => a + s, 0)).toBe(v.t * v.p);
    expect(res.assignment.every((a) => a >= 0)).toBe(true);
    const x = toFloat32(castFloat(v.frames, 'bf16'));
    const out = toFloat32(res.tokens);
    for (let j = 0; j < res.frame.length; j++) {
      const members = [...res.assignment.keys()].filter((i) => res.assignment[i] === j);
      expect(members.length).toBe(res.sizes[j]);
      // a merged token sits at a position and all its members come from that position
      for (const m of members) expect(m % v.p).toBe(res.position[j]);
      for (let k = 0; k < v.c; k++) {
        const mean = members.reduce((a, m) => a + x[m * v.c + k]!, 0) / members.length;
        expect(Math.abs(out[j * v.c + k]! - mean)).toBeLessThan(1e-2);
      }
    }
    // frame 0 absorbed the pruned tokens of frames 1 and 2 at their positions
    const grown = [...Array(v.p).keys()].filter((q) => res.sizes[res.assignment[q]!]! > 1);
    expect(grown.length).toBeGreaterThanOrEqual(v.p - Math.round(0.2 * v.p));
    for (const q of grown)
      for (const f of [1, 2])
        if (res.assignment[f * v.p + q] !== res.assignment[q]) expect(res.frame[res.assignment[f * v.p + q]!]).toBe(f);
  });

  it('pruneRatio 0 keeps everything, odd T works', async () => {
    const v = video(5, 3);
    const res = await mergeTemporal(v.frames, { method: 'dycoke', pruneRatio: 0 });
    expect(res.tokens.shape).toEqual([5 * 64, 16]);
    expect(Array.from(res.tokens.data)).toEqual(Array.from(v.data));
  });
});

describe('mergeTemporal: HoliTom', () => {
  it('collapses static positions over time and keeps the moving object', async () => {
    const v = video(6, 4);
    const res = await mergeTemporal(v.frames, { method: 'holitom', grid: [8, 8], pool: 1 });
    expect(res.segments).toEqual([[0, 5]]);
    const touched = new Set<number>();
    for (let f = 0; f < v.t; f++) for (const q of v.objectAt(f).keys()) touched.add(q);
    // every untouched position is one token of size T at frame 0 holding the temporal mean
    for (let q = 0; q < v.p; q++) {
      if (touched.has(q)) continue;
      const j = res.assignment[q]!;
      expect(res.frame[j]).toBe(0);
      expect(res.position[j]).toBe(q);
      expect(res.sizes[j]).toBe(v.t);
      for (let f = 0; f < v.t; f++) expect(res.assignment[f * v.p + q]).toBe(j);
      for (let k = 0; k < v.c; k++) {
        let mean = 0;
        for (let f = 0; f < v.t; f++) mean += v.data[(f * v.p + q) * v.c + k]! / v.t;
        expect(res.tokens.data[j * v.c + k]).toBeCloseTo(mean, 5);
      }
    }
    // each object part is represented by a kept token that sits on that part in its frame
    for (let part = 0; part < 4; part++) {
      const hits = [...res.frame.keys()].filter((j) => cos(res.tokens.data.subarray(j * v.c, (j + 1) * v.c), v.parts[part]!) > 0.999);
      expect(hits.length).toBeGreaterThan(0);
      for (const j of hits) expect(v.objectAt(res.frame[j]!).get(res.position[j]!)).toBe(part);
    }
    // the non-static tokens were reduced to about half (keepRatio 0.5)
    const rest = touched.size * v.t;
    expect(res.frame.length).toBe(v.p - touched.size + Math.round(rest / 2));
    expect(res.sizes.reduce((a, s) => a + s, 0)).toBe(v.t * v.p);
    for (let j = 0; j < res.frame.length; j++) expect(res.assignment[res.frame[j]! * v.p + res.position[j]!]).toBe(j);
  });

  it('splits segments at a scene cut', () => {
    const a = video(4, 5);
    const b = video(4, 6);
    const data = new Float32Array(8 * 64 * 16);
    data.set(a.data, 0);
    data.set(b.data, a.data.length);
    const res = mergeTemporalSync(tensor('f32', [8, 64, 16], data), { method: 'holitom', grid: [8, 8] });
    expect(res.segments).toEqual([
      [0, 3],
      [4, 7],
    ]);
  });

  it('keeps the top-attention tokens as they are', () => {
    const v = video(4, 7);
    const attention = new Float32Array(v.t * v.p);
    const favourite = 3 * v.p + (2 * v.w + 3); // the object's part 0 in frame 3
    attention[favourite] = 1;
    const res = mergeTemporalSync(v.frames, { method: 'holitom', attention, attentionShare: 0.5, grid: [8, 8], pool: 1 });
    const j = res.assignment[favourite]!;
    expect(res.frame[j]).toBe(3);
    expect(res.position[j]).toBe(2 * v.w + 3);
    expect(res.sizes[j]).toBe(1);
  });

  it('segmentFrames maximizes static positions x (length - 1)', () => {
    // 3 positions; position 0 static everywhere, 1 and 2 static only within frames 0-2
    const stable = [Uint8Array.from([1, 1, 1]), Uint8Array.from([1, 1, 1]), Uint8Array.from([1, 0, 0]), Uint8Array.from([1, 1, 1])];
    expect(segmentFrames(stable, 5, 3)).toEqual([
      [0, 2],
      [3, 4],
    ]);
  });

  it('density-peak clustering finds one centre per blob', () => {
    const rand = rng(8);
    const centres = [randVec(8, rand), randVec(8, rand).map((v) => v + 5), randVec(8, rand).map((v) => v - 5)];
    const x = new Float32Array(30 * 8);
    for (let i = 0; i < 30; i++) for (let k = 0; k < 8; k++) x[i * 8 + k] = centres[i % 3]![k]! + (rand() - 0.5) * 0.1;
    const ids = [...Array(30).keys()];
    const { centres: cs, label } = densityPeakClusters(x, 8, ids, 3, 7);
    expect(new Set(cs.map((c) => c % 3)).size).toBe(3);
    for (let i = 0; i < 30; i++) expect(cs[label[i]!]! % 3).toBe(i % 3);
  });
});

describe('mergeTemporal: bad input', () => {
  const v = video(2);
  it('rejects shapes, options and NaN with typed errors', () => {
    expect(codeOf(() => mergeTemporalSync(tensor('f32', [64, 16]), { method: 'dycoke' }))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => mergeTemporalSync(tensor('f32', [0, 64, 16]), { method: 'dycoke' }))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => mergeTemporalSync(v.frames, { method: 'tome' } as never))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => mergeTemporalSync(v.frames, { method: 'dycoke', pruneRatio: 1.5 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => mergeTemporalSync(v.frames, { method: 'dycoke', mode: 'average' as never }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => mergeTemporalSync(v.frames, { method: 'holitom', tau: NaN }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => mergeTemporalSync(v.frames, { method: 'holitom', grid: [7, 8] }))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => mergeTemporalSync(v.frames, { method: 'holitom', pool: 2 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => mergeTemporalSync(v.frames, { method: 'holitom', attention: new Float32Array(3) }))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => mergeTemporalSync(v.frames, { method: 'holitom', knn: 0 }))).toBe('INVALID_ARGUMENT');
    const bad = v.data.slice();
    bad[5] = NaN;
    expect(codeOf(() => mergeTemporalSync(tensor('f32', [2, 64, 16], bad), { method: 'holitom' }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => mergeTemporalSync(tensor('i32', [2, 64, 16]), { method: 'dycoke' }))).toBe('DTYPE_MISMATCH');
  });
});
