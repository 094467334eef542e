// Shared pieces of the TopV / Zero-TPrune DeviceTensor tests (transport-device.test.ts,
// graph-device.test.ts): which CUDA devices answer, random inputs, and comparisons.
import { expect } from 'vitest';

import { DeviceTensor } from '../../lib/device-tensor.js';
import { native } from '../../lib/native.js';
import { toFloat32, type Tensor } from '../../lib/tensor.js';

const info = (() => {
  try {
    return native().backendInfo();
  } catch {
    return undefined;
  }
})();
/** CUDA devices that answered (the emulated build has one, or INFERZIP_CUDA_EMULATE_DEVICES). */
export const cudaCount = info?.cudaAvailable ? info.devices.length : 0;
export const hasCuda = cudaCount > 0;
/** Two devices answer, or CI's two-device step expects them (INFERZIP_EXPECT_CUDA_DEVICES=2: a lost device fails instead of skipping). */
export const twoCuda = cudaCount >= 2 || Number(process.env.INFERZIP_EXPECT_CUDA_DEVICES ?? 0) >= 2;
/** The emulated device runs libm's exp, so even TopV's scores equal the CPU's bit for bit there. */
export const emulated = hasCuda && info!.devices[0]!.name.includes('emulator');

export function randn(rand: () => number, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const u = Math.max(rand(), 1e-12);
    out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  }
  return out;
}

/** Softmax rows of random logits: [rows, n]. */
export function softmaxRows(rand: () => number, rows: number, n: number, sharp = 3): Float32Array {
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let j = 0; j < n; j++) sum += out[r * n + j] = Math.exp(sharp * rand());
    for (let j = 0; j < n; j++) out[r * n + j] = out[r * n + j]! / sum;
  }
  return out;
}

/** Uploads host tensors to `device`; `dispose` frees them all. */
export class Uploads {
  readonly list: DeviceTensor[] = [];
  constructor(readonly device: string) {}
  put<T extends Tensor>(t: T): DeviceTensor<T['dtype']>;
  put<T extends Tensor>(t: T | undefined): DeviceTensor<T['dtype']> | undefined;
  put<T extends Tensor>(t: T | undefined): DeviceTensor<T['dtype']> | undefined {
    if (!t) return undefined;
    const d = DeviceTensor.fromSync(t, { device: this.device as 'cpu' });
    this.list.push(d);
    return d;
  }
  dispose(): void {
    for (const d of this.list) d.dispose();
    this.list.length = 0;
  }
}

/** Same values, bit for bit (f32 arrays compared as their bit patterns). */
export function expectSameBits(got: Float32Array, want: Float32Array): void {
  expect(got.length).toBe(want.length);
  expect(new Uint32Array(got.buffer, got.byteOffset, got.length)).toEqual(new Uint32Array(want.buffer, want.byteOffset, want.length));
}

/** |got - want| <= rel * max(1, |want|) element by element. */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, rel: number): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const tol = rel * Math.max(1, Math.abs(want[i]!));
    if (!(Math.abs(got[i]! - want[i]!) <= tol)) expect.fail(`element ${i}: got ${got[i]}, want ${want[i]} (tol ${tol})`);
  }
}

/** A DeviceTensor result's kept rows equal the host result's, bit for bit (same dtype). */
export function expectSameRows(device: DeviceTensor, host: Tensor): void {
  const got = device.downloadSync();
  expect(got.dtype).toBe(host.dtype);
  expect(got.shape).toEqual(host.shape);
  expectSameBits(toFloat32(got), toFloat32(host));
}

/** A pruning result on a DeviceTensor equal to the host path's: the same kept and dropped
 * indices, score bits and kept rows, on `device`. Disposes the device rows. */
export function expectSameSelection(
  got: { kept: Int32Array; dropped: Int32Array; scores: Float32Array; tokens: DeviceTensor },
  want: { kept: Int32Array; dropped: Int32Array; scores: Float32Array; tokens: Tensor },
  device: string,
): void {
  expect(got.tokens).toBeInstanceOf(DeviceTensor);
  expect(got.tokens.device).toBe(device);
  expect(Array.from(got.kept)).toEqual(Array.from(want.kept));
  expect(Array.from(got.dropped)).toEqual(Array.from(want.dropped));
  expectSameBits(got.scores, want.scores);
  expectSameRows(got.tokens, want.tokens);
  got.tokens.dispose();
}

/**
 * The kept count among 1..n-1 whose cut (between the ranked scores at cutOf(k) - 1 and
 * cutOf(k)) has the widest relative gap in every batch item's ranking, and that gap: a kept
 * set no rounding can change. scores: [batch * n], every token's score.
 */
export function separatedKeep(
  scores: Float32Array,
  batch: number,
  n: number,
  cutOf: (k: number) => number = (k) => k,
): { keep: number; gap: number } {
  const sorted = Array.from({ length: batch }, (_, b) => Array.from(scores.subarray(b * n, (b + 1) * n)).sort((x, y) => y - x));
  let best = { keep: 1, gap: -1 };
  for (let k = 1; k < n; k++) {
    const cut = cutOf(k);
    if (cut <= 0 || cut >= n) continue;
    let gap = Infinity;
    for (const s of sorted) gap = Math.min(gap, (s[cut - 1]! - s[cut]!) / Math.max(1e-30, Math.abs(s[cut - 1]!)));
    if (gap > best.gap) best = { keep: k, gap };
  }
  return best;
}
