/** One-shot quantization of a layer's K and V: quantizeKV / dequantizeKV. */
import { DeviceTensor } from '../device-tensor.js';
import { InferzipError, check, nativeCall } from '../errors.js';
import { CallQueue } from '../ops.js';
import { appendOp, attentionOp, dequantizeOp } from './ops.js';
import { native } from '../native.js';
import { tensor, type Tensor } from '../tensor.js';
import { statsOf, type AttentionOptions, type KVCacheMemory } from './cache.js';
import { PLANE_NAMES, type NativeKvCacheHandle, type PlaneName } from './native.js';
import { resolveOptions, toNative, type KVQuantOptions, type ResolvedKVOptions } from './options.js';
import { f32, kvPair, queryShape, type KVShape } from './shapes.js';

export interface QuantizeKVOptions extends KVQuantOptions {
  /** Probe queries for saliency (zipcache, vidkv): [batch?, qHeads, tokens, head_dim]. Keys stand in when absent. */
  queries?: Tensor;
  /** Caller saliency score per token [batch?, heads, tokens] (zipcache, vidkv). */
  scores?: Tensor;
}

/**
 * Packed K and V of one layer. Codes and scales live in native memory (`planes`).
 * @example
 * using q = await quantizeKV(k, v, { scheme: 'kivi', bits: 2 });
 * console.log(q.bitsPerElement);
 */
export class QuantizedKV implements Disposable {
  readonly options: Readonly<ResolvedKVOptions>;
  /** [batch, heads, tokens, head_dim] of the input (batch 1 when the input had none). */
  readonly shape: readonly [number, number, number, number];
  readonly batched: boolean;
  #handle: NativeKvCacheHandle | undefined;
  #planes: Partial<Record<PlaneName, DeviceTensor<'u8'>>> | undefined;
  /** @internal Operations on this object run in call order. */
  readonly queue = new CallQueue();

  /** @internal */
  constructor(options: ResolvedKVOptions, shape: KVShape, handle: NativeKvCacheHandle) {
    this.options = Object.freeze({ ...options });
    this.shape = Object.freeze([shape.batch, shape.heads, shape.tokens, shape.headDim]) as readonly [number, number, number, number];
    this.batched = shape.batched;
    this.#handle = handle;
  }

  /** @internal */
  get handle(): NativeKvCacheHandle {
    if (!this.#handle) throw new InferzipError('DISPOSED', 'this QuantizedKV was disposed');
    return this.#handle;
  }

  get disposed(): boolean {
    return !this.#handle;
  }

  /**
   * Packed codes and scales as u8 device tensors [batch, heads, bytesPerStream], by plane
   * (layout in native/shared/kvquant/layout.h). They share memory with this object.
   */
  get planes(): Partial<Record<PlaneName, DeviceTensor<'u8'>>> {
    if (!this.#planes) {
      const out: Partial<Record<PlaneName, DeviceTensor<'u8'>>> = {};
      PLANE_NAMES.forEach((name, i) => {
        const p = this.handle.plane({ index: i });
        if (p) out[name] = new DeviceTensor('u8', [this.shape[0], this.shape[1], p.stride], p.buffer);
      });
      this.#planes = out;
    }
    return this.#planes;
  }

  /** Bytes and bits per element really stored (codes + scales + metadata). */
  get memory(): KVCacheMemory {
    return statsOf(this.handle, this.options);
  }

  /** Average bits per stored element over K and V. */
  get bitsPerElement(): number {
    const m = this.memory;
    return (m.keyBits + m.valueBits) / 2;
  }

  /** softmax(q.K^T*scale).V from the packed codes (see QuantizedKVCache.attention). */
  async attention(q: Tensor, opts: AttentionOptions = {}): Promise<Tensor<'f32'>> {
    const args = attentionArgs(q, this, opts);
    const out = await this.queue.run(() => attentionOp.run(args));
    return tensor('f32', q.shape, out);
  }

  /** Synchronous {@link attention}. */
  attentionSync(q: Tensor, opts: AttentionOptions = {}): Tensor<'f32'> {
    this.queue.assertIdle('QuantizedKV.attentionSync');
    return tensor('f32', q.shape, attentionOp.runSync(attentionArgs(q, this, opts)));
  }

  dispose(): void {
    for (const t of Object.values(this.#planes ?? {})) t?.dispose();
    this.#planes = undefined;
    const h = this.#handle;
    this.#handle = undefined;
    h?.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

function attentionArgs(q: Tensor, kv: QuantizedKV, opts: AttentionOptions) {
  const [batch, heads, , headDim] = kv.shape;
  const qs = queryShape(q, { batch, heads, headDim });
  const scale = opts.scale ?? 1 / Math.sqrt(headDim);
  check(Number.isFinite(scale), `scale must be a finite number, got ${String(scale)}`);
  const causal = opts.causal ?? true;
  return { cache: kv.handle, q: f32(q), qHeads: qs.heads, queries: qs.tokens, scale, causal };
}

function prepare(k: Tensor, v: Tensor, options: QuantizeKVOptions) {
  check(options && typeof options === 'object', 'options must be an object');
  const shape = kvPair(k, v);
  check(shape.tokens >= 1, 'k and v need at least one token', 'SHAPE_MISMATCH');
  const resolved = resolveOptions({ ...options, batch: shape.batch, heads: shape.heads, headDim: shape.headDim, residualLength: 0 }, 0);
  let queries: Float32Array | undefined;
  let qHeads = 0;
  if (options.queries !== undefined) {
    const qs = queryShape(options.queries, shape, 'queries');
    check(qs.tokens === shape.tokens, `queries have ${qs.tokens} tokens but k and v have ${shape.tokens}`, 'SHAPE_MISMATCH');
    queries = f32(options.queries);
    qHeads = qs.heads;
  }
  let scores: Float32Array | undefined;
  if (options.scores !== undefined) {
    const sc = options.scores;
    const want = [shape.batch, shape.heads, shape.tokens];
    const got = sc.shape.length === 2 ? [1, ...sc.shape] : [...sc.shape];
    check(
      got.length === 3 && got.every((d, i) => d === want[i]),
      `scores [${sc.shape.join(', ')}] must be [batch?, heads, tokens] = [${want.join(', ')}]`,
      'SHAPE_MISMATCH',
    );
    scores = f32(sc);
  }
  // A window that holds every token defers all quantization to finalize(), so saliency-based
  // schemes rank all tokens at once (global 40% / 20%) instead of block by block.
  const hold = Math.ceil(shape.tokens / resolved.groupSize) * resolved.groupSize;
  const nativeOptions = { ...toNative(resolved), residualLength: hold <= 1 << 20 ? hold : 0 };
  const handle = nativeCall(() => new (native().KvCacheHandle)(nativeOptions), 'quantizeKV');
  return { shape, resolved, handle, args: { cache: handle, k: f32(k), v: f32(v), tokens: shape.tokens, queries, qHeads, scores } };
}

/**
 * Quantizes K and V ([batch?, heads, tokens, head_dim], f32/f16/bf16) with the chosen scheme.
 * @example const q = await quantizeKV(k, v, { scheme: 'kivi', bits: 2 });
 */
export async function quantizeKV(k: Tensor, v: Tensor, options: QuantizeKVOptions = {}): Promise<QuantizedKV> {
  const { shape, resolved, handle, args } = prepare(k, v, options);
  try {
    await appendOp.run(args);
    nativeCall(() => handle.finalize(), 'quantizeKV');
  } catch (err) {
    handle.dispose();
    throw err;
  }
  return new QuantizedKV(resolved, shape, handle);
}

/**
 * Synchronous {@link quantizeKV} (blocks the event loop).
 * @example
 * const q = quantizeKVSync(k, v, { scheme: 'kivi', bits: 2 });
 */
export function quantizeKVSync(k: Tensor, v: Tensor, options: QuantizeKVOptions = {}): QuantizedKV {
  const { shape, resolved, handle, args } = prepare(k, v, options);
  try {
    appendOp.runSync(args);
    nativeCall(() => handle.finalize(), 'quantizeKV');
  } catch (err) {
    handle.dispose();
    throw err;
  }
  return new QuantizedKV(resolved, shape, handle);
}

function outShape(q: QuantizedKV): number[] {
  return q.batched ? [...q.shape] : q.shape.slice(1);
}

/**
 * Reconstructs f32 K and V in the input's shape.
 * @example
 * const { k, v } = await dequantizeKV(q);
 */
export async function dequantizeKV(q: QuantizedKV): Promise<{ k: Tensor<'f32'>; v: Tensor<'f32'> }> {
  check(q instanceof QuantizedKV, 'dequantizeKV expects a QuantizedKV from quantizeKV');
  const { k, v } = await q.queue.run(() => dequantizeOp.run(q.handle));
  return { k: tensor('f32', outShape(q), k), v: tensor('f32', outShape(q), v) };
}

/**
 * Synchronous {@link dequantizeKV} (blocks the event loop).
 * @example
 * const { k, v } = dequantizeKVSync(q);
 */
export function dequantizeKVSync(q: QuantizedKV): { k: Tensor<'f32'>; v: Tensor<'f32'> } {
  check(q instanceof QuantizedKV, 'dequantizeKV expects a QuantizedKV from quantizeKV');
  q.queue.assertIdle('dequantizeKVSync');
  const { k, v } = dequantizeOp.runSync(q.handle);
  return { k: tensor('f32', outShape(q), k), v: tensor('f32', outShape(q), v) };
}
