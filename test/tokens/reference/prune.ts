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
import { checkFinite, checkInt, checkNumber, checkSpan, FLOAT_DTYPES } from '../../../lib/validate.js';

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
  assertTensor(tokens, 'tokens', { rank: [2, 3] });
  const batched = tokens.shape.length === 3;
  const rows = batched ? tokens.shape[0]! : 1;
  const n = tokens.shape[batched ? 1 : 0]!;
  const c = tokens.shape[batched ? 2 : 1]!;
  check(n > 0 && c > 0 && rows > 0, `tokens is empty (shape [${tokens.shape.join(', ')}])`, 'SHAPE_MISMATCH');
  const att = meanAttention(attention);
  check(att.length === n, `attention covers ${att.length} tokens but there are ${n}`, 'SHAPE_MISMATCH');
  const [start, end] = checkSpan(options.span, n);
  const spanLen = end - start;
  check(!(options.keep !== undefined && options.ratio !== undefined), 'pass keep or ratio, not both');
  const keep =
    options.keep !== undefined
      ? checkInt(options.keep, 'keep', 0, spanLen)
      : spanLen - Math.round(checkNumber(options.ratio ?? 0.5, 'ratio', 0, 1) * spanLen);
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

/**
 * DyCoke's decode-time pruning: each step, pass the last token's attention over the cache
 * (from layer L-1, [N] or [heads, N]). When it drifts (cosine < threshold against the previous
 * step) the kept set is recomputed as the top (1 - p) image tokens; otherwise it is reused.
 * @example
 * const pruner = new DynamicKVPruner({ span: [35, 611] });
 * const { kept } = pruner.update(attentionFromLayer2);
 */
export class DynamicKVPruner {
  readonly start: number;
  readonly end: number;
  readonly pruneRatio: number;
  readonly threshold: number;
  readonly layer: number;
  #previous: Float32Array | undefined;
  #kept: Int32Array | undefined;

  constructor(options: DynamicKVPrunerOptions) {
    check(options && typeof options === 'object', 'DynamicKVPruner needs options { span }');
    check(Array.isArray(options.span) && options.span.length === 2, 'span must be [start, end)');
    this.start = checkInt(options.span[0], 'span[0]', 0);
    this.end = checkInt(options.span[1], 'span[1]', this.start + 1);
    this.pruneRatio = checkNumber(options.pruneRatio ?? 0.7, 'pruneRatio', 0, 1, { openMax: true });
    this.threshold = checkNumber(options.threshold ?? 0.9, 'threshold', -1, 1);
    this.layer = checkInt(options.layer ?? 3, 'layer', 1);
  }

  /** The current kept set (undefined before the first update). */
  get kept(): Int32Array | undefined {
    return this.#kept;
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
    checkInt(length, 'length', this.end);
    check(this.#kept, 'call update() before attendMask()');
    const mask = new Uint8Array(length).fill(1);
    mask.fill(0, this.start, this.end);
    for (const i of this.#kept) mask[i] = 1;
    return mask;
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
  check(sizes.length === n, `sizes must hold ${n} values (got ${sizes.length})`, 'SHAPE_MISMATCH');
  for (let i = 0; i < n; i++)
    if (!(Number.isFinite(sizes[i]!) && sizes[i]! > 0))
      throw new InferzipError('INVALID_ARGUMENT', `sizes[${i}] = ${sizes[i]} must be finite and > 0`);
  const [start, end] = checkSpan(options.span, n);
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
