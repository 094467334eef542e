// The native DyCoke / HoliTom passes against the TypeScript reference they replaced
// (test/tokens/reference/temporal.ts). The arithmetic is the same (f64 sums in the same
// order, f32 group sums), so results must be bit-identical. One caveat, not hit here:
// the k-NN density uses exp(), which libm and V8 may round differently in the last bit;
// that can only matter when two densities tie to within one ulp.
import { describe, expect, it } from 'vitest';

import { castFloat, tensor, type Tensor } from '../../lib/tensor.js';
import { mergeTemporal, mergeTemporalSync, type MergeTemporalOptions, type MergeTemporalResult } from '../../lib/tokens/index.js';
import { expectSameArray, expectSameTensor } from './exact.js';
import { densityPeakClusters, segmentFrames } from './native-hooks.js';
import { rng } from './random.js';
import * as ref from './reference/temporal.js';

/** A video with static background, a few moving blobs, noise of `noise`, values on a coarse grid when `levels`. */
function video(rand: () => number, t: number, h: number, w: number, c: number, noise: number, levels = 0): Tensor<'f32'> {
  const p = h * w;
  const bg = Float32Array.from({ length: p * c }, () => rand() * 2 - 1);
  const blob = Float32Array.from({ length: c }, () => rand() * 2 - 1);
  const data = new Float32Array(t * p * c);
  for (let f = 0; f < t; f++) {
    const col = f % w;
    for (let q = 0; q < p; q++) {
      const moving = q % w === col && Math.floor(q / w) < Math.ceil(h / 2);
      for (let k = 0; k < c; k++) {
        let v = (moving ? blob[k]! : bg[q * c + k]!) + (rand() - 0.5) * noise;
        if (levels) v = Math.round(v * levels) / levels;
        data[(f * p + q) * c + k] = v;
      }
    }
  }
  return tensor('f32', [t, p, c], data);
}

function expectSameResult(got: MergeTemporalResult, want: MergeTemporalResult): void {
  expectSameTensor(got.tokens, want.tokens);
  expectSameArray(got.frame, want.frame);
  expectSameArray(got.position, want.position);
  expectSameArray(got.sizes, want.sizes);
  expectSameArray(got.assignment, want.assignment);
  expect(got.segments).toEqual(want.segments);
}

describe('native temporal merging equals the reference', () => {
  it('DyCoke, prune and merge modes, odd T, ties, f32/bf16', async () => {
    const rand = rng(21);
    for (let trial = 0; trial < 24; trial++) {
      const t = 1 + Math.floor(rand() * 9);
      const h = 1 + Math.floor(rand() * 7);
      const w = 1 + Math.floor(rand() * 7);
      const c = 1 + Math.floor(rand() * 12);
      let frames: Tensor = video(rand, t, h, w, c, 0.2, trial % 3 === 0 ? 2 : 0);
      if (trial % 4 === 1) frames = castFloat(frames, 'bf16');
      const options: MergeTemporalOptions = { method: 'dycoke', pruneRatio: rand(), mode: trial % 2 ? 'merge' : 'prune' };
      const want = ref.mergeTemporal(frames, options);
      const got = trial % 2 ? await mergeTemporal(frames, options) : mergeTemporalSync(frames, options);
      expectSameResult(got, want);
    }
  });

  it('HoliTom with and without grid, pooling, attention (with ties), keepRatio and knn', async () => {
    const rand = rng(22);
    for (let trial = 0; trial < 24; trial++) {
      const t = 1 + Math.floor(rand() * 8);
      const h = 1 + Math.floor(rand() * 6);
      const w = 1 + Math.floor(rand() * 6);
      const c = 1 + Math.floor(rand() * 10);
      let frames: Tensor = video(rand, t, h, w, c, trial % 2 ? 0.05 : 0.8, trial % 5 === 0 ? 2 : 0);
      if (trial % 4 === 3) frames = castFloat(frames, 'f16');
      const useGrid = rand() < 0.6;
      const options: MergeTemporalOptions = {
        method: 'holitom',
        tau: 0.5 + rand() * 0.5,
        keepRatio: rand(),
        knn: 1 + Math.floor(rand() * 9),
        ...(useGrid ? { grid: [h, w] as const, pool: 1 + Math.floor(rand() * 3) } : {}),
        ...(rand() < 0.5
          ? { attention: Float32Array.from({ length: t * h * w }, () => Math.floor(rand() * 3)), attentionShare: rand() }
          : {}),
      };
      const want = ref.mergeTemporal(frames, options);
      const got = trial % 2 ? await mergeTemporal(frames, options) : mergeTemporalSync(frames, options);
      expectSameResult(got, want);
    }
  });

  it('HoliTom on a segment larger than one clustering chunk (2048 tokens)', async () => {
    const rand = rng(23);
    // one frame of 2200 tokens: a single segment whose 2200 tokens cluster in 2 chunks
    const frames = tensor(
      'f32',
      [1, 2200, 4],
      Float32Array.from({ length: 2200 * 4 }, () => rand() * 2 - 1),
    );
    const options: MergeTemporalOptions = { method: 'holitom', keepRatio: 0.3 };
    const want = ref.mergeTemporal(frames, options);
    expect(want.segments).toEqual([[0, 0]]);
    expectSameResult(await mergeTemporal(frames, options), want);
  });

  it('segmentFrames on random stability masks', () => {
    const rand = rng(24);
    for (let trial = 0; trial < 40; trial++) {
      const t = 1 + Math.floor(rand() * 12);
      const p = Math.floor(rand() * 6);
      const bias = rand();
      const stable = Array.from({ length: Math.max(0, t - 1) }, () => Uint8Array.from({ length: p }, () => (rand() < bias ? 1 : 0)));
      expect(segmentFrames(stable, t, p)).toEqual(ref.segmentFrames(stable, t, p));
    }
  });

  it('densityPeakClusters with duplicate points (density ties)', () => {
    const rand = rng(25);
    for (let trial = 0; trial < 20; trial++) {
      const rows = 1 + Math.floor(rand() * 200);
      const c = 1 + Math.floor(rand() * 6);
      const x = Float32Array.from({ length: rows * c }, () => Math.round(rand() * 4) / 2);
      const ids = Array.from({ length: 1 + Math.floor(rand() * rows) }, () => Math.floor(rand() * rows));
      const centres = Math.floor(rand() * 10);
      const knn = 1 + Math.floor(rand() * 8);
      const want = ref.densityPeakClusters(x, c, ids, centres, knn);
      const got = densityPeakClusters(x, c, ids, centres, knn);
      expect(got.centres).toEqual(want.centres);
      expectSameArray(got.label, want.label);
    }
  });
});
