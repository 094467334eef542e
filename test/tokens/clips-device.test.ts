// TempMe (mergeClips) on DeviceTensors: 'cpu' runs the CPU backend on the addon's memory and
// must equal the host path bit for bit; 'cuda' runs ImgMe / intra-clip as batched ToMe steps
// and the cross-clip steps on cuda/tokens/clips.cu, and must make the same merges as the CPU
// (random inputs, no near-ties) with tokens within f32 rounding. CUDA cases skip visibly
// without a device; the emulated build (cuda/emulate) runs them on the CPU.
import { describe, expect, it } from 'vitest';

import { DeviceTensor } from '../../lib/device-tensor.js';
import { native } from '../../lib/native.js';
import { castFloat, tensor, toFloat32, type Tensor } from '../../lib/tensor.js';
import { mergeClips, mergeClipsSync, type MergeClipsOptions } from '../../lib/tokens/index.js';
import { codeOf, codeOfAsync } from '../errors.js';
import { rng } from './random.js';

const cudaDevices = (() => {
  try {
    const info = native().backendInfo();
    return info.cudaAvailable ? info.devices.length : 0;
  } catch {
    return 0;
  }
})();
const hasCuda = cudaDevices > 0;

function randn(rand: () => number, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  return out;
}

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

interface Case {
  shape: number[];
  x: Float32Array;
  o: MergeClipsOptions;
}

// Random shapes and options, as the host tests draw them (groups sometimes given, batch sometimes).
function randomCase(rand: () => number, trial: number): Case {
  const t = 1 + Math.floor(rand() * 8);
  const p = 1 + Math.floor(rand() * 40);
  const c = 4 + Math.floor(rand() * 20);
  const batch = trial % 3 === 2 ? 2 : 0;
  const shape = batch ? [batch, t, p, c] : [t, p, c];
  const o: MergeClipsOptions = {
    imgKeep: 0.3 + 0.7 * rand(),
    crossKeep: 0.3 + 0.7 * rand(),
    intraKeep: 0.3 + 0.7 * rand(),
    ...(rand() < 0.5 ? { groups: Array.from({ length: 1 + Math.floor(rand() * 3) }, () => 1 + Math.floor(rand() * 3)) } : {}),
  };
  return {
    shape,
    x: randn(
      rand,
      shape.reduce((a, b) => a * b, 1),
    ),
    o,
  };
}

// sizes sum to T*P per item; sizes[j] counts the originals mapped to j; clip lengths sum to M;
// every merged token is the plain mean of the originals it holds (composed weighted means).
function checkInvariants(
  x: Float32Array,
  shape: number[],
  tokens: Float32Array,
  sizes: Float32Array,
  assignment: Int32Array,
  clipLengths: Int32Array,
  tol: number,
) {
  const [batch, t, p, c] = (shape.length === 4 ? shape : [1, ...shape]) as [number, number, number, number];
  const m = sizes.length / batch;
  expect(clipLengths.reduce((s, v) => s + v, 0)).toBe(m);
  for (let b = 0; b < batch; b++) {
    const count = new Float64Array(m);
    const sum = new Float64Array(m * c);
    for (let i = 0; i < t * p; i++) {
      const j = assignment[b * t * p + i]!;
      expect(j >= 0 && j < m).toBe(true);
      count[j]!++;
      for (let k = 0; k < c; k++) sum[j * c + k]! += x[(b * t * p + i) * c + k]!;
    }
    expect(Array.from(sizes.subarray(b * m, (b + 1) * m))).toEqual(Array.from(count));
    for (let j = 0; j < m; j++) {
      for (let k = 0; k < c; k++) {
        const want = sum[j * c + k]! / count[j]!;
        expect(Math.abs(tokens[(b * m + j) * c + k]! - want)).toBeLessThanOrEqual(tol * (1 + Math.abs(want)));
      }
    }
  }
}

describe('mergeClips on DeviceTensors', () => {
  it("'cpu' DeviceTensors give the host result bit for bit (f32, bf16, f16; sync and async)", async () => {
    const rand = rng(1501);
    for (let trial = 0; trial < 12; trial++) {
      const { shape, x, o } = randomCase(rand, trial);
      const dt = (['f32', 'bf16', 'f16'] as const)[trial % 3]!;
      const host = castFloat(tensor('f32', shape, x), dt);
      const want = mergeClipsSync(host, o);
      const dx = DeviceTensor.fromSync(host, { device: 'cpu' });
      for (const got of [mergeClipsSync(dx, o), await mergeClips(dx, o)]) {
        expect(got.tokens).toBeInstanceOf(DeviceTensor);
        expect(got.tokens.device).toBe('cpu');
        expect(got.tokens.dtype).toBe(dt);
        expect(got.tokens.shape).toEqual(want.tokens.shape);
        expect(bits(toFloat32(got.tokens.downloadSync()))).toEqual(bits(toFloat32(want.tokens)));
        expect(got.sizes.downloadSync().data).toEqual(want.sizes);
        expect(got.assignment).toEqual(want.assignment);
        expect(got.clipLengths).toEqual(want.clipLengths);
        expect(got.source.sourcesOf(0)).toEqual(want.source.sourcesOf(0));
        got.tokens.dispose();
        got.sizes.dispose();
      }
      dx.dispose();
    }
  });

  it.skipIf(!hasCuda)('CUDA makes the CPU merges on random inputs; tokens within 2e-6 (f32) or one rounding (f16/bf16)', async () => {
    const rand = rng(1502);
    for (let trial = 0; trial < 12; trial++) {
      const { shape, x, o } = randomCase(rand, trial);
      const dt = (['f32', 'bf16', 'f16'] as const)[trial % 3]!;
      const host = castFloat(tensor('f32', shape, x), dt);
      const want = mergeClipsSync(host, o);
      const dx = DeviceTensor.fromSync(host, { device: 'cuda' });
      const got = trial % 2 ? await mergeClips(dx, o) : mergeClipsSync(dx, o);
      expect(got.tokens.device).toBe('cuda:0');
      expect(got.sizes.device).toBe('cuda:0');
      expect(got.tokens.dtype).toBe(dt);
      expect(got.tokens.shape).toEqual(want.tokens.shape);
      expect(got.assignment).toEqual(want.assignment);
      expect(got.clipLengths).toEqual(want.clipLengths);
      expect(got.sizes.downloadSync().data).toEqual(want.sizes);
      const g = toFloat32(got.tokens.downloadSync());
      const w = toFloat32(want.tokens);
      // f32: ToMe's f32 sums against the CPU backend's f64; f16/bf16: both round the f32 mean
      const tol = dt === 'f32' ? 2e-6 : dt === 'bf16' ? 2 ** -7 : 2 ** -10;
      for (let i = 0; i < g.length; i++) expect(Math.abs(g[i]! - w[i]!)).toBeLessThanOrEqual(tol * (1 + Math.abs(w[i]!)));
      got.tokens.dispose();
      got.sizes.dispose();
      dx.dispose();
    }
  });

  describe.each([
    ['cpu', false],
    ['cuda', !hasCuda],
  ] as const)('on %s', (device, skip) => {
    it.skipIf(skip)('invariants: sizes count the originals, tokens are their means, one clip by default', async () => {
      const rand = rng(1503);
      for (const [shape, o] of [
        [[12, 49, 16], {}],
        [[12, 49, 16], { groups: [2, 2, 3] }],
        [[2, 7, 13, 8], { imgKeep: 0.5, crossKeep: 0.4, intraKeep: 0.6 }],
        [[5, 1, 8], { groups: [1, 3, 1, 2] }],
      ] as [number[], MergeClipsOptions][]) {
        const x = randn(
          rand,
          shape.reduce((a, b) => a * b, 1),
        );
        const dx = DeviceTensor.fromSync(tensor('f32', shape, x), { device });
        const res = await mergeClips(dx, o);
        if (o.groups === undefined) expect(res.clipLengths.length).toBe(1);
        checkInvariants(
          x,
          shape,
          toFloat32(res.tokens.downloadSync()),
          res.sizes.downloadSync().data,
          res.assignment,
          res.clipLengths,
          1e-5,
        );
        res.tokens.dispose();
        res.sizes.dispose();
        dx.dispose();
      }
    });

    it.skipIf(skip)('identical frames fold into the first clip (known answer)', () => {
      const rand = rng(1504);
      const [t, p, c] = [8, 9, 6];
      const one = randn(rand, p * c);
      const same = new Float32Array(t * p * c);
      for (let f = 0; f < t; f++) same.set(one, f * p * c);
      const dx = DeviceTensor.fromSync(tensor('f32', [t, p, c], same), { device });
      const res = mergeClipsSync(dx, { imgKeep: 1, crossKeep: 0.5, intraKeep: 1 });
      expect(res.tokens.shape).toEqual([p, c]);
      expect(Array.from(res.sizes.downloadSync().data)).toEqual(new Array(p).fill(t));
      expect(Array.from(toFloat32(res.tokens.downloadSync()))).toEqual(Array.from(one));
      for (let i = 0; i < t * p; i++) expect(res.assignment[i]).toBe(i % p);
      dx.dispose();
    });

    it.skipIf(skip)('NaN/Inf frames are INVALID_ARGUMENT, like host frames (sync and async, f32 and f16)', async () => {
      const rand = rng(1505);
      const x0 = randn(rand, 4 * 6 * 5);
      for (const bad of [NaN, Infinity, -Infinity]) {
        for (const dt of ['f32', 'f16'] as const) {
          const x = x0.slice();
          x[77] = bad;
          const host = castFloat(tensor('f32', [4, 6, 5], x), dt);
          expect(codeOf(() => mergeClipsSync(host))).toBe('INVALID_ARGUMENT');
          const dx = DeviceTensor.fromSync(host, { device });
          expect(codeOf(() => mergeClipsSync(dx))).toBe('INVALID_ARGUMENT');
          expect(await codeOfAsync(() => mergeClips(dx))).toBe('INVALID_ARGUMENT');
          dx.dispose();
        }
      }
    });

    it.skipIf(skip)('hostile device frames and options get typed errors', async () => {
      const ok = DeviceTensor.fromSync(tensor('f32', [2, 4, 3], new Float32Array(24).fill(1)), { device });
      const flat = DeviceTensor.fromSync(tensor('f32', [8, 3], new Float32Array(24)), { device });
      const ints = DeviceTensor.fromSync(tensor('i32', [2, 4, 3], new Int32Array(24)), { device });
      const empty = DeviceTensor.fromSync(tensor('f32', [2, 0, 3], new Float32Array(0)), { device });
      expect(codeOf(() => mergeClipsSync(flat))).toBe('SHAPE_MISMATCH');
      expect(codeOf(() => mergeClipsSync(ints as unknown as DeviceTensor))).toBe('DTYPE_MISMATCH');
      expect(codeOf(() => mergeClipsSync(empty))).toBe('SHAPE_MISMATCH');
      expect(codeOf(() => mergeClipsSync(ok, { imgKeep: 1.5 }))).toBe('INVALID_ARGUMENT');
      expect(codeOf(() => mergeClipsSync(ok, { groups: [0] }))).toBe('INVALID_ARGUMENT');
      expect(await codeOfAsync(() => mergeClips(ok, { crossKeep: NaN }))).toBe('INVALID_ARGUMENT');
      for (const d of [ok, flat, ints, empty]) d.dispose();
      expect(codeOf(() => mergeClipsSync(ok))).toBe('DISPOSED');
      expect(await codeOfAsync(() => mergeClips(ok))).toBe('DISPOSED');
    });
  });

  it.skipIf(cudaDevices < 2)("runs on the frames' device: cuda:1 gives cuda:1 results equal to cuda:0", async () => {
    const rand = rng(1506);
    const host: Tensor = tensor('f32', [6, 20, 12], randn(rand, 6 * 20 * 12));
    const d0 = DeviceTensor.fromSync(host, { device: 'cuda:0' });
    const d1 = DeviceTensor.fromSync(host, { device: 'cuda:1' });
    const r0 = mergeClipsSync(d0, { groups: [2, 3] });
    const r1 = await mergeClips(d1, { groups: [2, 3] });
    expect(r1.tokens.device).toBe('cuda:1');
    expect(r1.sizes.device).toBe('cuda:1');
    expect(bits(toFloat32(r1.tokens.downloadSync()))).toEqual(bits(toFloat32(r0.tokens.downloadSync())));
    expect(r1.assignment).toEqual(r0.assignment);
    for (const d of [d0, d1, r0.tokens, r0.sizes, r1.tokens, r1.sizes]) d.dispose();
  });
});
