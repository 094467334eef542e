/**
 * A small, readable Llama forward pass (one token at a time, greedy decoding), enough to
 * run the bundled stories260K model: RMSNorm, RoPE on interleaved pairs (llama2.c
 * convention), grouped-query attention, SiLU-gated MLP, tied embeddings.
 * Not part of inferzip's API: it is the workload the demo and the tests run.
 */
import type { LlamaConfig } from './config.js';
import type { AttentionCache } from './kv.js';
import type { BlockWeights, WeightSource } from './weights.js';

/** y[out] = W[out, in] . x[in] */
export function matvec(w: Float32Array, x: Float32Array, out: Float32Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    let acc = 0;
    const base = r * cols;
    for (let c = 0; c < cols; c++) acc += w[base + c]! * x[c]!;
    out[r] = acc;
  }
}

export function rmsnorm(x: Float32Array, weight: Float32Array, eps: number, out: Float32Array): void {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i]! * x[i]!;
  const inv = 1 / Math.sqrt(ss / x.length + eps);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! * inv * weight[i]!;
}

/** Rotates the pairs (x[2i], x[2i+1]) of every head by pos * theta^(-2i/headDim). */
export function rope(x: Float32Array, heads: number, headDim: number, pos: number, theta: number): void {
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < headDim; i += 2) {
      const freq = 1 / Math.pow(theta, i / headDim);
      const a = pos * freq;
      const c = Math.cos(a);
      const s = Math.sin(a);
      const o = h * headDim + i;
      const x0 = x[o]!;
      const x1 = x[o + 1]!;
      x[o] = x0 * c - x1 * s;
      x[o + 1] = x0 * s + x1 * c;
    }
  }
}

/** What one block saw at one position (for activation dumps and KV studies). */
export interface BlockTrace {
  layer: number;
  pos: number;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
}

export class Llama {
  readonly #x: Float32Array;
  readonly #xb: Float32Array;
  readonly #q: Float32Array;
  readonly #k: Float32Array;
  readonly #v: Float32Array;
  readonly #att: Float32Array;
  readonly #hb: Float32Array;
  readonly #hb2: Float32Array;
  readonly logits: Float32Array;
  pos = 0;

  constructor(
    readonly config: LlamaConfig,
    readonly weights: WeightSource,
    readonly cache: AttentionCache,
    readonly trace?: (t: BlockTrace) => void,
  ) {
    const { hidden, heads, kvHeads, headDim, intermediate, vocab } = config;
    this.#x = new Float32Array(hidden);
    this.#xb = new Float32Array(hidden);
    this.#q = new Float32Array(heads * headDim);
    this.#k = new Float32Array(kvHeads * headDim);
    this.#v = new Float32Array(kvHeads * headDim);
    this.#att = new Float32Array(heads * headDim);
    this.#hb = new Float32Array(intermediate);
    this.#hb2 = new Float32Array(intermediate);
    this.logits = new Float32Array(vocab);
  }

  /** Runs one token through the model at the next position; returns the logits. */
  async step(token: number): Promise<Float32Array> {
    const { hidden } = this.config;
    this.#x.set(this.weights.embed.subarray(token * hidden, (token + 1) * hidden));
    for (let l = 0; l < this.config.layers; l++) this.#block(l, await this.weights.block(l));
    this.#head();
    this.pos++;
    return this.logits;
  }

  /** Same as step() for weight sources whose blocks are available synchronously. */
  stepSync(token: number): Float32Array {
    const { hidden } = this.config;
    this.#x.set(this.weights.embed.subarray(token * hidden, (token + 1) * hidden));
    for (let l = 0; l < this.config.layers; l++) {
      const w = this.weights.block(l);
      if (w instanceof Promise) throw new Error('this weight source is asynchronous: use step()');
      this.#block(l, w);
    }
    this.#head();
    this.pos++;
    return this.logits;
  }

  /** Runs one block on the current hidden state (used by block-streaming drivers). */
  runBlock(layer: number, w: BlockWeights): void {
    this.#block(layer, w);
  }

  /** Embeds a token into the hidden state (first half of step()). */
  embed(token: number): void {
    const { hidden } = this.config;
    this.#x.set(this.weights.embed.subarray(token * hidden, (token + 1) * hidden));
  }

  /** Final norm + tied output head, then advances the position (second half of step()). */
  finish(): Float32Array {
    this.#head();
    this.pos++;
    return this.logits;
  }

  #block(l: number, w: BlockWeights): void {
    const { hidden, heads, kvHeads, headDim, intermediate, rmsEps, ropeTheta } = this.config;
    const x = this.#x;
    const xb = this.#xb;
    // attention
    rmsnorm(x, w.attnNorm, rmsEps, xb);
    matvec(w.wq, xb, this.#q, heads * headDim, hidden);
    matvec(w.wk, xb, this.#k, kvHeads * headDim, hidden);
    matvec(w.wv, xb, this.#v, kvHeads * headDim, hidden);
    rope(this.#q, heads, headDim, this.pos, ropeTheta);
    rope(this.#k, kvHeads, headDim, this.pos, ropeTheta);
    this.trace?.({ layer: l, pos: this.pos, q: this.#q.slice(), k: this.#k.slice(), v: this.#v.slice() });
    this.cache.append(l, this.#k, this.#v, this.#q);
    this.cache.attend(l, this.#q, this.#att);
    matvec(w.wo, this.#att, xb, hidden, heads * headDim);
    for (let i = 0; i < hidden; i++) x[i] = x[i]! + xb[i]!;
    // SiLU-gated MLP
    rmsnorm(x, w.mlpNorm, rmsEps, xb);
    matvec(w.wGate, xb, this.#hb, intermediate, hidden);
    matvec(w.wUp, xb, this.#hb2, intermediate, hidden);
    for (let i = 0; i < intermediate; i++) {
      const g = this.#hb[i]!;
      this.#hb[i] = (g / (1 + Math.exp(-g))) * this.#hb2[i]!;
    }
    matvec(w.wDown, this.#hb, xb, hidden, intermediate);
    for (let i = 0; i < hidden; i++) x[i] = x[i]! + xb[i]!;
  }

  #head(): void {
    const { hidden, vocab, rmsEps } = this.config;
    rmsnorm(this.#x, this.weights.finalNorm, rmsEps, this.#xb);
    matvec(this.weights.embed, this.#xb, this.logits, vocab, hidden);
  }
}

export function argmax(v: Float32Array): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i]! > v[best]!) best = i;
  return best;
}

/** Greedy decoding from `start` for `n` tokens; calls onStep with each step's logits. */
export async function generate(
  model: Llama,
  start: number,
  n: number,
  onStep?: (token: number, logits: Float32Array) => void,
): Promise<number[]> {
  const out: number[] = [];
  let token = start;
  for (let i = 0; i < n; i++) {
    const logits = await model.step(token);
    onStep?.(token, logits);
    token = argmax(logits);
    out.push(token);
  }
  return out;
}
