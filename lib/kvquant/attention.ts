/** Dense f32 attention (the baseline and the dequantize-then-attend reference). */
import { check, nativeAwait, nativeCall } from '../errors.js';
import { native } from '../native.js';
import { tensor, type Tensor } from '../tensor.js';
import type { AttentionOptions } from './cache.js';
import { f32, kvPair, queryShape } from './shapes.js';

function args(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions) {
  const kv = kvPair(k, v);
  const qs = queryShape(q, kv);
  check(kv.tokens >= 1, 'k and v need at least one token', 'SHAPE_MISMATCH');
  const scale = opts.scale ?? 1 / Math.sqrt(kv.headDim);
  check(Number.isFinite(scale), `scale must be a finite number, got ${String(scale)}`);
  const causal = opts.causal ?? true;
  return [f32(q), qs.batch, qs.heads, qs.tokens, f32(k), f32(v), kv.heads, kv.tokens, kv.headDim, scale, causal] as const;
}

/**
 * softmax(q.K^T*scale).V over dense K, V [batch?, heads, tokens, head_dim] (GQA allowed), on the
 * CPU with all cores. Same conventions as QuantizedKVCache.attention.
 */
export async function denseAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Promise<Tensor<'f32'>> {
  const a = args(q, k, v, opts);
  const out = (await nativeAwait(() => native().kvDenseAttention(...a, true) as Promise<Float32Array>, 'denseAttention')) as Float32Array;
  return tensor('f32', q.shape, out);
}

export function denseAttentionSync(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor<'f32'> {
  const a = args(q, k, v, opts);
  return tensor('f32', q.shape, nativeCall(() => native().kvDenseAttention(...a, false) as Float32Array, 'denseAttention'));
}
