/** Validation and f32 conversion shared by the token-merging entry points. */
import { InferzipError, check } from '../errors.js';
import { assertTensor, castFloat, fromNdarray, toFloat32, type NdArrayLike, type Tensor } from '../tensor.js';

export type FloatDType = 'f32' | 'f16' | 'bf16';

export interface TokenBatch {
  /** f32 values [batch, n, c]. */
  data: Float32Array;
  batch: number;
  n: number;
  c: number;
  /** Whether the caller passed a batch dimension. */
  batched: boolean;
  dtype: FloatDType;
}

/** Accepts [n, c] or [batch, n, c] float tensors (or ndarrays); rejects NaN/Inf and empties. */
export function tokenBatch(value: Tensor | NdArrayLike, name: string): TokenBatch {
  const t = fromNdarray(value as Tensor);
  assertTensor(t, name, { dtypes: ['f32', 'f16', 'bf16'], rank: [2, 3] });
  const batched = t.shape.length === 3;
  const [batch, n, c] = batched ? (t.shape as [number, number, number]) : [1, t.shape[0]!, t.shape[1]!];
  check(n > 0 && c > 0 && batch > 0, `${name} is empty (shape [${t.shape.join(', ')}]); it needs at least one token and one channel`, 'SHAPE_MISMATCH');
  const data = toFloat32(t);
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) throw new InferzipError('INVALID_ARGUMENT', `${name} holds ${data[i]} at flat index ${i}; token merging needs finite values`);
  }
  return { data, batch, n, c, batched, dtype: t.dtype as FloatDType };
}

/** Converts f32 results back to the caller's dtype. */
export function outputTensor(data: Float32Array, shape: number[], dtype: FloatDType): Tensor {
  return castFloat({ dtype: 'f32', shape, data }, dtype);
}
