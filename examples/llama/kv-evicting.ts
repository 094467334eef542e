/**
 * The forward pass's KV cache with H2O / D2O eviction (inferzip's QuantizedKVCache with an
 * `eviction` option). The forward pass runs one token at a time, so the prompt is handled as
 * a prefill: its tokens are appended as they come and attend densely over the prompt so far;
 * at the last prompt token each layer makes ONE causal attention call with all prompt queries
 * (the cache's prefill: it accumulates every prompt token's attention score, fixes P and runs
 * the first eviction round), and d2o then allocates the layer budgets. Decode steps append one
 * token and attend through the cache, which evicts one token per step.
 */
import {
  QuantizedKVCache,
  allocateD2OBudgets,
  denseAttentionSync,
  tensor,
  type KVCacheMemory,
  type KVCacheOptions,
} from '../../lib/index.js';
import type { AttentionCache } from './kv.js';

export class EvictingCache implements AttentionCache {
  readonly #caches: QuantizedKVCache[];
  readonly #len: number[];
  readonly #k: Float32Array[];
  readonly #v: Float32Array[];
  readonly #q: Float32Array[];

  constructor(
    readonly layers: number,
    readonly heads: number,
    readonly kvHeads: number,
    readonly headDim: number,
    /** P: the first `prompt` tokens are the prefill. */
    readonly prompt: number,
    options: Omit<KVCacheOptions, 'heads' | 'headDim'> & Required<Pick<KVCacheOptions, 'eviction'>>,
  ) {
    this.#caches = Array.from({ length: layers }, () => QuantizedKVCache.create({ ...options, heads: kvHeads, headDim }));
    this.#len = new Array<number>(layers).fill(0);
    this.#k = Array.from({ length: layers }, () => new Float32Array(prompt * kvHeads * headDim));
    this.#v = Array.from({ length: layers }, () => new Float32Array(prompt * kvHeads * headDim));
    this.#q = Array.from({ length: layers }, () => new Float32Array(prompt * heads * headDim));
  }

  append(layer: number, k: Float32Array, v: Float32Array, q?: Float32Array): void {
    const t = this.#len[layer]!;
    if (t < this.prompt) {
      this.#k[layer]!.set(k, t * k.length);
      this.#v[layer]!.set(v, t * v.length);
      if (q) this.#q[layer]!.set(q, t * q.length);
    }
    const shape = [this.kvHeads, 1, this.headDim];
    this.#caches[layer]!.appendSync(tensor('f32', shape, k), tensor('f32', shape, v));
    this.#len[layer] = t + 1;
  }

  /** [t][heads*d] rows -> [heads, n, d] */
  #headMajor(rows: Float32Array, n: number, heads: number): Float32Array {
    const d = this.headDim;
    const out = new Float32Array(heads * n * d);
    for (let t = 0; t < n; t++)
      for (let h = 0; h < heads; h++) out.set(rows.subarray((t * heads + h) * d, (t * heads + h + 1) * d), (h * n + t) * d);
    return out;
  }

  attend(layer: number, q: Float32Array, out: Float32Array): void {
    const { heads, kvHeads, headDim: d, prompt } = this;
    const t = this.#len[layer]!;
    const cache = this.#caches[layer]!;
    if (t < prompt) {
      // inside the prompt: dense attention over the prompt so far (the prefill call comes at its end)
      const k = tensor('f32', [kvHeads, t, d], this.#headMajor(this.#k[layer]!.subarray(0, t * kvHeads * d), t, kvHeads));
      const v = tensor('f32', [kvHeads, t, d], this.#headMajor(this.#v[layer]!.subarray(0, t * kvHeads * d), t, kvHeads));
      out.set(denseAttentionSync(tensor('f32', [heads, 1, d], q), k, v).data);
      return;
    }
    if (t === prompt && cache.eviction?.prefill === null) {
      // the prefill: one causal call with every prompt query; keep the last query's output
      const all = tensor('f32', [heads, prompt, d], this.#headMajor(this.#q[layer]!, prompt, heads));
      const res = cache.attentionSync(all).data;
      for (let h = 0; h < heads; h++) out.set(res.subarray((h * prompt + prompt - 1) * d, (h * prompt + prompt) * d), h * d);
      if (layer === this.layers - 1 && cache.options.eviction?.method === 'd2o') allocateD2OBudgets(this.#caches);
      return;
    }
    out.set(cache.attentionSync(tensor('f32', [heads, 1, d], q)).data);
  }

  /** Memory of every layer's cache. */
  memory(): KVCacheMemory[] {
    return this.#caches.map((c) => c.memory);
  }

  /** Tokens each layer keeps. */
  kept(): number[] {
    return this.#caches.map((c) => c.tokens);
  }

  bytesPerToken(): number {
    const tokens = Math.max(...this.#len);
    return tokens ? this.#caches.reduce((s, c) => s + c.memoryBytes, 0) / tokens : 0;
  }

  dispose(): void {
    for (const c of this.#caches) c.dispose();
  }
}
