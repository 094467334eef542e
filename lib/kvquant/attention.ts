/** Dense f32 attention (the baseline and the dequantize-then-attend reference). */
import { check } from '../errors.js';
import { native } from '../native.js';
import { defineOp } from '../ops.js';
import { tensor, type Tensor } from '../tensor.js';
import type { AttentionOptions } from './cache.js';
import type { NativeDenseAttentionArgs } from './native.js';
import { f32, kvPair, queryShape } from './shapes.js';
import { checkFiniteResult } from '../validate.js';

function args(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions) {
  const kv = kvPair(k, v);
  const qs = queryShape(q, kv);
  check(kv.tokens >= 1, 'k and v need at least one token', 'SHAPE_MISMATCH');
  const scale = opts.scale ?? 1 / Math.sqrt(kv.headDim);
  check(Number.isFinite(scale), `scale must be a finite number, got ${String(scale)}`);
  const causal = opts.causal ?? true;
  const args: NativeDenseAttentionArgs = {
    q: f32(q),
    batch: qs.batch,
    qHeads: qs.heads,
    queries: qs.tokens,
    k: f32(k),
    v: f32(v),
    heads: kv.heads,
    tokens: kv.tokens,
    headDim: kv.headDim,
    scale,
    causal,
  };
  return { args, shape: q.shape };
}

const denseOp = defineOp({
  name: 'denseAttention',
  prepare: (q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}) => args(q, k, v, opts),
  sync: (c) => native().kvDenseAttention(c.args),
  async: (c) => native().kvDenseAttentionAsync(c.args),
  finish: (out, c) => {
    checkFiniteResult(out, 'denseAttention');
    return tensor('f32', c.shape, out);
  },
});

/**
 * softmax(q.K^T*scale).V over dense K, V [batch?, heads, tokens, head_dim] (GQA allowed), on the
 * CPU with all cores. Same conventions as QuantizedKVCache.attention.
 * @example
 * const out = await denseAttention(q, k, v, { causal: false });
 */
export function denseAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Promise<Tensor<'f32'>> {
  return denseOp.run(q, k, v, opts);
}

/**
 * Synchronous {@link denseAttention}.
 * @example
 * const out = denseAttentionSync(q, k, v);
 */
export function denseAttentionSync(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor<'f32'> {
  return denseOp.runSync(q, k, v, opts);
}
