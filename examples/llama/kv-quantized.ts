/** The forward pass's KV cache backed by inferzip's quantized cache (attention from packed codes). */
import { QuantizedKVCache, tensor, type KVCacheMemory, type KVCacheOptions } from '../../lib/index.js';
import type { AttentionCache } from './kv.js';

/** One inferzip QuantizedKVCache per layer; attention runs from the packed codes. */
export class QuantizedCache implements AttentionCache {
  readonly #caches: QuantizedKVCache[];
  /** Bits per code the scheme uses (its default unless set). */
  readonly bits: number;

  constructor(
    readonly layers: number,
    readonly heads: number,
    readonly kvHeads: number,
    readonly headDim: number,
    options: Omit<KVCacheOptions, 'heads' | 'headDim'>,
  ) {
    this.#caches = Array.from({ length: layers }, () => QuantizedKVCache.create({ ...options, heads: kvHeads, headDim } as KVCacheOptions));
    this.bits = this.#caches[0]!.options.bits;
  }

  append(layer: number, k: Float32Array, v: Float32Array, q?: Float32Array): void {
    const shape = [this.kvHeads, 1, this.headDim];
    const queries = q ? { queries: tensor('f32', [this.heads, 1, this.headDim], q) } : {};
    this.#caches[layer]!.appendSync(tensor('f32', shape, k), tensor('f32', shape, v), queries);
  }

  /** Resolved options of the per-layer caches (scheme, bits, group sizes, residual window). */
  get options(): QuantizedKVCache['options'] {
    return this.#caches[0]!.options;
  }

  /** Memory of every layer's cache. */
  memory(): KVCacheMemory[] {
    return this.#caches.map((c) => c.memory);
  }

  attend(layer: number, q: Float32Array, out: Float32Array): void {
    const res = this.#caches[layer]!.attentionSync(tensor('f32', [this.heads, 1, this.headDim], q), { scale: 1 / Math.sqrt(this.headDim) });
    out.set(res.data);
  }

  bytesPerToken(): number {
    const tokens = this.#caches[0]!.tokens;
    if (tokens === 0) return 0;
    return this.#caches.reduce((s, c) => s + c.memoryBytes, 0) / tokens;
  }

  dispose(): void {
    for (const c of this.#caches) c.dispose();
  }
}
