/**
 * Attention-ranked pruning inside the LLM: FastV (drop the image tokens the last token
 * attends to least, once, at prefill) and DyCoke's decode-time dynamic KV pruning
 * (re-choose the kept image tokens whenever the last token's attention drifts).
 */
import { InferzipError, check } from '../errors.js';
import { assertTensor, toFloat32, type NdArrayLike, type Tensor } from '../tensor.js';
import { outputTensor, tokenBatch } from './input.js';

export interface PruneOptions {
  /** Image tokens to keep (overrides ratio). */
  keep?: number;
  /** Fraction of image tokens to drop (default 0.5, FastV's R = 50%). */
  ratio?: number;
  /** [start, end) of the image tokens; tokens outside it are always kept. Default: all tokens. */
  span?: readonly [number, number];
}

export interface PruneResult {
  /** Kept tokens [N', C] in their original order. */
  x: Tensor;
  /** Original index of every kept token, ascending. */
  indices: Int32Array;
}

/**
 * Per-token score from attention: a vector [N] is used as is; a matrix [heads, N]
 * (the last token's attention in each head) is averaged over heads.
 */
export function attentionScores(attention: Tensor | Float32Array, n: number): Float32Array {
  let data: Float32Array;
  let heads = 1;
  if (attention instanceof Float32Array) data = attention;
  else {
    assertTensor(attention, 'attention', { dtypes: ['f32', 'f16', 'bf16'], rank: [1, 2] });
    data = toFloat32(attention);
    heads = attention.shape.length === 2 ? attention.shape[0]! : 1;
  }
  check(data.length === heads * n, `attention has ${data.length} values; expected ${n} or [heads, ${n}]`, 'SHAPE_MISMATCH');
  const out = new Float32Array(n);
  for (let h = 0; h < heads; h++) for (let i = 0; i < n; i++) out[i] = out[i]! + data[h * n + i]! / heads;
  for (let i = 0; i < n; i++) if (!Number.isFinite(out[i]!)) throw new InferzipError('INVALID_ARGUMENT', `attention score ${i} is ${out[i]}`);
  return out;
}

function resolveSpan(span: readonly [number, number] | undefined, n: number): [number, number] {
  const [s, e] = span ?? [0, n];
  check(Number.isInteger(s) && Number.isInteger(e) && s >= 0 && s <= e && e <= n, `span [${s}, ${e}) must lie within [0, ${n}]`);
  return [s, e];
}

/** Indices of the `keep` highest scores in [s, e) (ties to the lower index), ascending. */
export function topIndices(scores: Float32Array, s: number, e: number, keep: number): number[] {
  const idx = Array.from({ length: e - s }, (_, i) => s + i);
  idx.sort((a, b) => scores[b]! - scores[a]! || a - b);
  return idx.slice(0, keep).sort((a, b) => a - b);
}

/**
 * FastV: keeps the image tokens (within `span`) that receive the most attention from the
 * last token, and every token outside the span.
 * @example const { x, indices } = pruneByAttention(hidden, lastTokenAttention, { ratio: 0.5, span: [35, 611] });
 */
export function pruneByAttention(tokens: Tensor | NdArrayLike, attention: Tensor | Float32Array, options: PruneOptions = {}): PruneResult {
  const x = tokenBatch(tokens, 'tokens');
  check(x.batch === 1 && !x.batched, 'pruneByAttention takes tokens [N, C] (one sequence)', 'SHAPE_MISMATCH');
  const { n, c } = x;
  const scores = attentionScores(attention, n);
  const [s, e] = resolveSpan(options.span, n);
  const span = e - s;
  let keep: number;
  if (options.keep !== undefined) {
    check(Number.isInteger(options.keep) && options.keep >= 0 && options.keep <= span, `keep must be an integer in [0, ${span}] (got ${options.keep})`);
    keep = options.keep;
  } else {
    const ratio = options.ratio ?? 0.5;
    check(Number.isFinite(ratio) && ratio >= 0 && ratio <= 1, `ratio must be in [0, 1] (got ${ratio})`);
    keep = span - Math.round(span * ratio);
  }
  const kept = new Set(topIndices(scores, s, e, keep));
  const indices: number[] = [];
  for (let i = 0; i < n; i++) if (i < s || i >= e || kept.has(i)) indices.push(i);
  const out = new Float32Array(indices.length * c);
  indices.forEach((src, j) => out.set(x.data.subarray(src * c, (src + 1) * c), j * c));
  return { x: outputTensor(out, [indices.length, c], x.dtype), indices: Int32Array.from(indices) };
}

export interface DynamicKVPrunerOptions {
  /** [start, end) of the image tokens in the KV cache. */
  span: readonly [number, number];
  /** Fraction of image tokens to drop (default 0.7, DyCoke's p). */
  pruneRatio?: number;
  /** Recompute the kept set when the attention's cosine with the previous step's is below this (default 0.9). */
  threshold?: number;
}

export interface PrunerUpdate {
  /** Cache positions later layers should attend to (non-image positions plus kept image tokens), ascending. */
  kept: Int32Array;
  /** Whether this step chose a new kept set. */
  recomputed: boolean;
  /** Cosine similarity of this step's image attention with the previous step's (1 on the first step). */
  similarity: number;
}

/**
 * DyCoke's decode-time KV pruning. Each decoding step, pass the last token's attention over
 * the cache (from layer L-1, [heads, T] or [T]); layers >= L attend only to `kept`.
 */
export class DynamicKVPruner {
  readonly span: readonly [number, number];
  readonly pruneRatio: number;
  readonly threshold: number;
  #reference: Float32Array | undefined;
  #keptImage: number[] = [];

  constructor(options: DynamicKVPrunerOptions) {
    check(options && Array.isArray(options.span) && options.span.length === 2, 'DynamicKVPruner needs span: [start, end)');
    const [s, e] = options.span;
    check(Number.isInteger(s) && Number.isInteger(e) && s >= 0 && s < e, `span [${s}, ${e}) must be a non-empty range of positions`);
    this.span = [s, e];
    this.pruneRatio = options.pruneRatio ?? 0.7;
    this.threshold = options.threshold ?? 0.9;
    check(this.pruneRatio >= 0 && this.pruneRatio <= 1, `pruneRatio must be in [0, 1] (got ${this.pruneRatio})`);
    check(this.threshold >= -1 && this.threshold <= 1, `threshold must be in [-1, 1] (got ${this.threshold})`);
  }

  update(attention: Tensor | Float32Array, cacheLength: number): PrunerUpdate {
    check(Number.isInteger(cacheLength) && cacheLength >= this.span[1], `cache length ${cacheLength} must cover the image span ending at ${this.span[1]}`);
    const scores = attentionScores(attention, cacheLength);
    const [s, e] = this.span;
    const image = scores.subarray(s, e);
    let similarity = 1;
    let recomputed = false;
    if (this.#reference) {
      let dot = 0;
      let na = 0;
      let nb = 0;
      for (let i = 0; i < image.length; i++) {
        dot += image[i]! * this.#reference[i]!;
        na += image[i]! ** 2;
        nb += this.#reference[i]! ** 2;
      }
      similarity = na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
    }
    if (!this.#reference || similarity < this.threshold) {
      const keep = e - s - Math.round((e - s) * this.pruneRatio);
      this.#keptImage = topIndices(scores, s, e, keep);
      recomputed = true;
    }
    this.#reference = image.slice(); // DyCoke compares each step with the previous one
    const kept: number[] = [];
    for (let i = 0; i < s; i++) kept.push(i);
    kept.push(...this.#keptImage);
    for (let i = e; i < cacheLength; i++) kept.push(i);
    return { kept: Int32Array.from(kept), recomputed, similarity };
  }
}
