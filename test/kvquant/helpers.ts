/** Seeded data and error measures for the KV quantization tests. */
import { tensor, type Tensor } from '../../lib/tensor.js';

/** Standard normals from a seeded xorshift generator (Box-Muller). */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  let s = (seed * 2654435761) >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next());
  return out;
}

export function randTensor(shape: number[], seed: number, scale = 1): Tensor<'f32'> {
  return tensor(
    'f32',
    shape,
    randn(
      shape.reduce((a, b) => a * b, 1),
      seed,
      scale,
    ),
  );
}

/** Keys with a few outlier channels, like real pre-RoPE keys. */
export function outlierKeys(shape: [number, number, number], seed: number): Tensor<'f32'> {
  const t = randTensor(shape, seed);
  const d = shape[2];
  for (let i = 0; i < t.data.length; i++) if (i % d === 3 || i % d === 11) t.data[i] = t.data[i]! * 8 + 4;
  return t;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

export function relErr(ref: ArrayLike<number>, x: ArrayLike<number>): number {
  let e = 0,
    n = 0;
  for (let i = 0; i < ref.length; i++) {
    e += (ref[i]! - x[i]!) ** 2;
    n += ref[i]! ** 2;
  }
  return Math.sqrt(e / n);
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0,
    aa = 0,
    bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i]! * b[i]!;
    aa += a[i]! * a[i]!;
    bb += b[i]! * b[i]!;
  }
  return ab / Math.sqrt(aa * bb);
}

/** Rows [start, end) of the token axis of [heads, tokens, d]. */
export function sliceTokens(t: Tensor<'f32'>, start: number, end: number): Tensor<'f32'> {
  const [h, T, d] = t.shape as [number, number, number];
  const out = new Float32Array(h * (end - start) * d);
  for (let i = 0; i < h; i++) out.set(t.data.subarray((i * T + start) * d, (i * T + end) * d), i * (end - start) * d);
  return tensor('f32', [h, end - start, d], out);
}
