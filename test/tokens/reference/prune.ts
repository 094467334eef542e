/**
 * Reference (previous, plain TypeScript) implementation of FastV pruning, the DyCoke KV
 * step and HoliTom's inner-LLM merge. The library runs the native port
 * (native/core/tokens/prune.cpp); tests check it against this, and bench/tokens.ts
 * times this as the baseline. Not part of the public API. It imports the public option and
 * result types rather than restating them, so the two cannot drift apart.
 */
import { InferzipError, check } from '../../../lib/errors.js';
import { assertTensor, castFloat, tensor, toFloat32, type DType, type Tensor, type TypedArrayFor } from '../../../lib/tensor.js';
import type {
  DynamicKVPrunerOptions,
  KVPruneStep,
  MergeByAttentionOptions,
  MergeByAttentionResult,
  PruneByAttentionOptions,
  PruneResult,
} from '../../../lib/index.js';
import { cosine, rankIndices } from './similarity.js';
import { checkFinite, FLOAT_DTYPES } from '../../../lib/validate.js';

/**
 * Last-token attention as one weight per key: a vector [N], or [heads, N] averaged over heads.
 */
export function meanAttention(attention: Tensor | Float32Array, name = 'attention'): Float32Array {
  if (attention instanceof Float32Array) {
    checkFinite(attention, name);
    return attention;
  }
  assertTensor(attention, name, { dtypes: FLOAT_DTYPES, rank: [1, 2] });
  const v = toFloat32(attention);
  checkFinite(v, name);
  if (attention.shape.length === 1) return v;
  const [h, n] = attention.shape as [number, number];
  check(h > 0, `${name} has no heads`, 'SHAPE_MISMATCH');
  const out = new Float32Array(n);
  for (let i = 0; i < h; i++) for (let j = 0; j < n; j++) out[j]! += v[i * n + j]! / h;
  return out;
}

/**
 * FastV: ranks the span's tokens by the attention they receive from the last token
 * (mean over heads, from layer K-1) and drops the lowest ones; tokens outside the span stay.
 * tokens: [N, C] or [batch, N, C] (the same tokens are dropped in every row).
 * @example
 * const { tokens, kept } = pruneByAttention(hidden, lastTokenAttention, { ratio: 0.5, span: [35, 611] });
 */
export function pruneByAttention<D extends DType>(
  tokens: Tensor<D>,
  attention: Tensor | Float32Array,
  options: PruneByAttentionOptions = {},
): PruneResult<D> {
  // Valid inputs only: the library validates, the reference computes.
  const batched = tokens.shape.length === 3;
  const [rows, n, c] = (batched ? tokens.shape : [1, ...tokens.shape]) as [number, number, number];
  const att = meanAttention(attention);
  const [start, end] = options.span ?? [0, n];
  const spanLen = end - start;
  const keep = options.keep ?? spanLen - Math.round((options.ratio ?? 0.5) * spanLen);
  const order = rankIndices(att.subarray(start, end), true);
  const keepMask = new Uint8Array(n).fill(1);
  for (let i = keep; i < spanLen; i++) keepMask[start + order[i]!] = 0;
  const kept: number[] = [];
  const dropped: number[] = [];
  for (let i = 0; i < n; i++) (keepMask[i] ? kept : dropped).push(i);
  const src = tokens.data as unknown as { [i: number]: number | bigint; constructor: new (n: number) => unknown };
  const out = new src.constructor(rows * kept.length * c) as { [i: number]: number | bigint };
  for (let b = 0; b < rows; b++) {
    kept.forEach((i, j) => {
      for (let k = 0; k < c; k++) out[(b * kept.length + j) * c + k] = src[(b * n + i) * c + k]!;
    });
  }
  const shape = batched ? [rows, kept.length, c] : [kept.length, c];
  return {
    tokens: tensor(tokens.dtype, shape, out as unknown as TypedArrayFor<D>),
    kept: Int32Array.from(kept),
    dropped: Int32Array.from(dropped),
  };
}

/** DyCoke's decode-time pruning, one step at a time (`update` is the library's `stepSync`). */
export class DynamicKVPruner {
  #previous: Float32Array | undefined;
  #kept: Int32Array | undefined;
  // The library validates; the reference only computes (tests pass it valid options).
  constructor(private readonly options: DynamicKVPrunerOptions) {}
  private get start(): number {
    return this.options.span[0];
  }
  private get end(): number {
    return this.options.span[1];
  }
  private get threshold(): number {
    return this.options.threshold ?? 0.9;
  }
  private get pruneRatio(): number {
    return this.options.pruneRatio ?? 0.7;
  }

  /** Feeds one decoding step's last-token attention; returns the kept image tokens. */
  update(attention: Tensor | Float32Array): KVPruneStep {
    const att = meanAttention(attention);
    if (att.length < this.end) {
      throw new InferzipError('SHAPE_MISMATCH', `attention covers ${att.length} tokens but the image span ends at ${this.end}`);
    }
    const image = att.slice(this.start, this.end);
    const similarity = this.#previous ? cosine(image, this.#previous) : NaN;
    const recomputed = !this.#kept || !(similarity >= this.threshold);
    if (recomputed) {
      const keep = Math.max(1, Math.round((1 - this.pruneRatio) * image.length));
      const top = rankIndices(image, true)
        .slice(0, keep)
        .sort((a, b) => a - b);
      this.#kept = Int32Array.from(top, (i) => i + this.start);
    }
    this.#previous = image;
    return { kept: this.#kept!, recomputed, similarity };
  }

  /** A 0/1 mask over `length` cache positions for layers >= L: non-image tokens and kept image tokens are 1. */
  attendMask(length: number): Uint8Array {
    const kept = new Set(this.#kept);
    return Uint8Array.from({ length }, (_, i) => (i < this.start || i >= this.end || kept.has(i) ? 1 : 0));
  }

  /** Forgets the history (e.g. for a new prompt). */
  reset(): void {
    this.#previous = undefined;
    this.#kept = undefined;
  }
}

/**
 * HoliTom's inner-LLM step: like {@link pruneByAttention}, but every dropped span token is merged
 * (size-weighted average) into its most similar kept span token (cosine; ties: lower index)
 * instead of being thrown away. tokens: [N, C] float.
 */
export function mergeByAttention(
  tokens: Tensor,
  attention: Tensor | Float32Array,
  options: MergeByAttentionOptions = {},
): MergeByAttentionResult {
  assertTensor(tokens, 'tokens', { dtypes: FLOAT_DTYPES, rank: [2] });
  const [n, c] = tokens.shape as [number, number];
  const { sizes: sizesIn, ...pruneOptions } = options;
  const pruned = pruneByAttention(tokens, attention, pruneOptions);
  const x = toFloat32(tokens);
  checkFinite(x, 'tokens');
  const sizes = sizesIn ?? new Float32Array(n).fill(1);
  const [start, end] = options.span ?? [0, n];
  const kept = Array.from(pruned.kept);
  const slot = new Int32Array(n).fill(-1);
  kept.forEach((i, j) => (slot[i] = j));
  const keptInSpan = kept.filter((i) => i >= start && i < end);
  const assignment = new Int32Array(n);
  const acc = new Float64Array(kept.length * c);
  const outSizes = new Float32Array(kept.length);
  kept.forEach((i, j) => {
    outSizes[j] = sizes[i]!;
    for (let k = 0; k < c; k++) acc[j * c + k] = x[i * c + k]! * sizes[i]!;
    assignment[i] = j;
  });
  for (const d of pruned.dropped) {
    let best = -1;
    let bestSim = -Infinity;
    for (const kIdx of keptInSpan) {
      let dot = 0;
      let na = 0;
      let nb = 0;
      for (let k = 0; k < c; k++) {
        dot += x[d * c + k]! * x[kIdx * c + k]!;
        na += x[d * c + k]! ** 2;
        nb += x[kIdx * c + k]! ** 2;
      }
      const sim = na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
      if (sim > bestSim) {
        bestSim = sim;
        best = kIdx;
      }
    }
    if (best < 0) {
      throw new InferzipError('INVALID_ARGUMENT', 'mergeByAttention needs at least one kept token in the span (keep >= 1)');
    }
    const j = slot[best]!;
    assignment[d] = j;
    outSizes[j]! += sizes[d]!;
    for (let k = 0; k < c; k++) acc[j * c + k]! += x[d * c + k]! * sizes[d]!;
  }
  const out = new Float32Array(kept.length * c);
  for (let j = 0; j < kept.length; j++) for (let k = 0; k < c; k++) out[j * c + k] = acc[j * c + k]! / outSizes[j]!;
  const merged = castFloat(tensor('f32', [kept.length, c], out), tokens.dtype as 'f32' | 'f16' | 'bf16');
  return { tokens: merged, kept: pruned.kept, dropped: pruned.dropped, sizes: outSizes, assignment };
}
