/** KV caches the forward pass can attend over: plain f32, or an inferzip quantized cache. */

export interface AttentionCache {
  /**
   * Adds this position's keys/values ([kvHeads * headDim] each, post-RoPE keys). `q` is the
   * position's post-RoPE query [heads * headDim]: saliency-based caches use it as a probe.
   */
  append(layer: number, k: Float32Array, v: Float32Array, q?: Float32Array): void;
  /** out[heads * headDim] = softmax(q.K^T * scale).V over every cached position of `layer`. */
  attend(layer: number, q: Float32Array, out: Float32Array): void;
  /** Bytes held per cached token, over all layers. */
  bytesPerToken(): number;
  dispose(): void;
}

/** The reference cache: every key and value kept as f32. */
export class DenseCache implements AttentionCache {
  readonly #k: Float32Array[];
  readonly #v: Float32Array[];
  #len: number[];
  #scores = new Float32Array(0);

  constructor(
    readonly layers: number,
    readonly heads: number,
    readonly kvHeads: number,
    readonly headDim: number,
    readonly capacity: number,
  ) {
    const size = capacity * kvHeads * headDim;
    this.#k = Array.from({ length: layers }, () => new Float32Array(size));
    this.#v = Array.from({ length: layers }, () => new Float32Array(size));
    this.#len = new Array<number>(layers).fill(0);
  }

  append(layer: number, k: Float32Array, v: Float32Array): void {
    const t = this.#len[layer]!;
    if (t >= this.capacity) throw new Error(`KV cache full (${this.capacity} positions)`);
    const row = this.kvHeads * this.headDim;
    this.#k[layer]!.set(k, t * row);
    this.#v[layer]!.set(v, t * row);
    this.#len[layer] = t + 1;
  }

  attend(layer: number, q: Float32Array, out: Float32Array): void {
    const { heads, kvHeads, headDim } = this;
    const T = this.#len[layer]!;
    const K = this.#k[layer]!;
    const V = this.#v[layer]!;
    const row = kvHeads * headDim;
    const scale = 1 / Math.sqrt(headDim);
    if (this.#scores.length < T) this.#scores = new Float32Array(this.capacity);
    const scores = this.#scores;
    const group = heads / kvHeads;
    for (let h = 0; h < heads; h++) {
      const kvh = Math.floor(h / group);
      let max = -Infinity;
      for (let t = 0; t < T; t++) {
        let s = 0;
        for (let d = 0; d < headDim; d++) s += q[h * headDim + d]! * K[t * row + kvh * headDim + d]!;
        s *= scale;
        scores[t] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let t = 0; t < T; t++) {
        const e = Math.exp(scores[t]! - max);
        scores[t] = e;
        sum += e;
      }
      for (let d = 0; d < headDim; d++) {
        let acc = 0;
        for (let t = 0; t < T; t++) acc += scores[t]! * V[t * row + kvh * headDim + d]!;
        out[h * headDim + d] = acc / sum;
      }
    }
  }

  bytesPerToken(): number {
    return this.layers * 2 * this.kvHeads * this.headDim * 4;
  }

  dispose(): void {}
}
