/** Shape checks shared by quantizeKV and QuantizedKVCache: [batch?, heads, tokens, head_dim]. */
import { InferzipError, check } from '../errors.js';
import { assertTensor, toFloat32, type Tensor } from '../tensor.js';

export interface KVShape {
  batch: number;
  heads: number;
  tokens: number;
  headDim: number;
  /** The input had a batch dimension. */
  batched: boolean;
}

const FLOATS = ['f32', 'f16', 'bf16'] as const;

export function kvShape(t: unknown, name: string): KVShape {
  assertTensor(t, name, { dtypes: FLOATS, rank: [3, 4] });
  const s = t.shape;
  const batched = s.length === 4;
  const [batch, heads, tokens, headDim] = batched ? (s as [number, number, number, number]) : [1, s[0]!, s[1]!, s[2]!];
  check(heads >= 1 && headDim >= 1, `${name} [${s.join(', ')}] has an empty head or channel dimension`, 'SHAPE_MISMATCH');
  check(batch >= 1, `${name} [${s.join(', ')}] has an empty batch dimension`, 'SHAPE_MISMATCH');
  return { batch, heads, tokens, headDim, batched };
}

/** Checks K and V agree, and (when given) match the cache's batch / heads / head_dim. */
export function kvPair(k: unknown, v: unknown, want?: { batch: number; heads: number; headDim: number }): KVShape {
  const ks = kvShape(k, 'k');
  const vs = kvShape(v, 'v');
  const same =
    ks.batch === vs.batch && ks.heads === vs.heads && ks.tokens === vs.tokens && ks.headDim === vs.headDim && ks.batched === vs.batched;
  if (!same) {
    throw new InferzipError(
      'SHAPE_MISMATCH',
      `k [${(k as Tensor).shape.join(', ')}] and v [${(v as Tensor).shape.join(', ')}] must have the same shape [batch?, heads, tokens, head_dim]`,
    );
  }
  if (want) {
    check(
      ks.heads === want.heads,
      `k and v have ${ks.heads} heads but the cache was created with ${want.heads} KV heads`,
      'SHAPE_MISMATCH',
    );
    check(
      ks.headDim === want.headDim,
      `k and v have head_dim ${ks.headDim} but the cache was created with headDim ${want.headDim}`,
      'SHAPE_MISMATCH',
    );
    check(ks.batch === want.batch, `k and v have batch ${ks.batch} but the cache was created with batch ${want.batch}`, 'SHAPE_MISMATCH');
  }
  return ks;
}

/** f32 data of a float tensor (no copy for f32). */
export function f32(t: Tensor): Float32Array {
  return toFloat32(t);
}

/** Queries [batch?, qHeads, n, head_dim] checked against the KV layout (GQA: qHeads a multiple of heads). */
export function queryShape(q: unknown, kv: { batch: number; heads: number; headDim: number }, name = 'q'): KVShape {
  const qs = kvShape(q, name);
  check(qs.headDim === kv.headDim, `${name} has head_dim ${qs.headDim} but the keys have ${kv.headDim}`, 'SHAPE_MISMATCH');
  check(qs.batch === kv.batch, `${name} has batch ${qs.batch} but the keys have ${kv.batch}`, 'SHAPE_MISMATCH');
  check(
    qs.heads >= kv.heads && qs.heads % kv.heads === 0,
    `${name} has ${qs.heads} heads, which is not a multiple of the ${kv.heads} KV heads (grouped-query attention needs query heads = KV heads x group)`,
    'SHAPE_MISMATCH',
  );
  return qs;
}
