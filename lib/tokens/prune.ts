/**
 * Attention-ranked pruning inside the LLM: FastV (Chen et al., 2024) one-shot pruning of
 * image tokens at layer K, DyCoke's decode-time dynamic KV pruning and HoliTom's
 * inner-LLM merge. The work runs natively (native/core/tokens/prune.cpp); the async
 * functions run it off the main thread, the *Sync ones block for it.
 */
import { InferzipError, check, nativeCall } from '../errors.js';
import { CallQueue, defineOp } from '../ops.js';
import { native } from '../native.js';
import { assertTensor, castFloat, tensor, toFloat32, type DType, type Tensor, type TypedArrayFor } from '../tensor.js';
import type {
  NativeAttentionMergeArgs,
  NativeAttentionMergeResult,
  NativeKVStepArgs,
  NativeKVStepResult,
  NativePruneArgs,
  NativePruneResult,
} from './native.js';
import { checkInt, checkNumber, checkSpan, FLOAT_DTYPES, rejectDeviceTensor, type FloatDType } from '../validate.js';

/** A half-open token range [start, end) (usually the image tokens). */
export type TokenSpan = readonly [number, number];

/** Last-token attention as passed to the native layer: [heads, n] f32. */
interface Attention {
  data: Float32Array;
  heads: number;
  n: number;
}

function attentionArg(attention: unknown, name = 'attention'): Attention {
  rejectDeviceTensor(attention, name);
  if (attention instanceof Float32Array) return { data: attention, heads: 1, n: attention.length };
  assertTensor(attention, name, { dtypes: FLOAT_DTYPES, rank: [1, 2] });
  const heads = attention.shape.length === 2 ? attention.shape[0]! : 1;
  check(heads > 0, `${name} has no heads`, 'SHAPE_MISMATCH');
  return { data: toFloat32(attention), heads, n: attention.shape[attention.shape.length - 1]! };
}

/** A full attention matrix [heads, N, N] (rank 3), as the native layer takes it; null for the last-token forms. */
function fullAttentionArg(attention: unknown): { attention: Float32Array; heads: number; n: number } | null {
  if (attention instanceof Float32Array || attention === null || typeof attention !== 'object') return null;
  const shape = (attention as { shape?: unknown }).shape;
  if (!Array.isArray(shape) || shape.length !== 3) return null;
  rejectDeviceTensor(attention, 'attention');
  assertTensor(attention, 'attention', { dtypes: FLOAT_DTYPES, rank: [3] });
  const [heads, rows, n] = attention.shape as [number, number, number];
  check(
    heads > 0 && rows === n,
    `a full attention matrix must be [heads, N, N] (got [${attention.shape.join(', ')}]); for last-token attention pass [N] or [heads, N]`,
    'SHAPE_MISMATCH',
  );
  return { attention: toFloat32(attention), heads, n };
}

/**
 * Last-token attention as one weight per key: a vector [N], or [heads, N] averaged over
 * heads (f32 running sum, as DyCoke/FastV accumulate it). Cheap (heads x N), so synchronous.
 * @example
 * const weights = meanAttention(lastTokenAttention); // [heads, N] -> [N]
 */
export function meanAttention(attention: Tensor | Float32Array, name = 'attention'): Float32Array {
  const a = attentionArg(attention, name);
  return nativeCall(() => native().tokensMeanAttention({ attention: a.data, heads: a.heads, n: a.n }), name);
}

export interface PruneByAttentionOptions {
  /** Image tokens to keep (exclusive with `ratio`). */
  keep?: number;
  /** Fraction of the span's tokens to drop (FastV's R): round(R x span length) go, halves rounding up. Default 0.5. */
  ratio?: number;
  /** The prunable tokens [start, end). Default: all tokens. */
  span?: TokenSpan;
}

export interface PruneResult<D extends DType = DType> {
  /** Kept tokens [batch?, kept, C] in their original order (dtype of the input). */
  tokens: Tensor<D>;
  /** Indices (ascending) of the kept tokens. */
  kept: Int32Array;
  /** Indices (ascending) of the dropped tokens. */
  dropped: Int32Array;
}

interface PrunePlan {
  att: Attention;
  batched: boolean;
  rows: number;
  n: number;
  c: number;
  start: number;
  end: number;
  keep: number;
}

function selection(n: number, att: Attention, options: PruneByAttentionOptions): Pick<PrunePlan, 'start' | 'end' | 'keep'> {
  check(options !== null && typeof options === 'object', 'options must be an object');
  check(att.n === n, `attention covers ${att.n} tokens but there are ${n}`, 'SHAPE_MISMATCH');
  const [start, end] = checkSpan(options.span, n);
  const spanLen = end - start;
  check(!(options.keep !== undefined && options.ratio !== undefined), 'pass keep or ratio, not both');
  const keep =
    options.keep !== undefined
      ? checkInt(options.keep, 'keep', 0, spanLen)
      : spanLen - Math.round(checkNumber(options.ratio ?? 0.5, 'ratio', 0, 1) * spanLen);
  return { start, end, keep };
}

function prunePlan(tokens: unknown, attention: unknown, options: PruneByAttentionOptions): PrunePlan {
  rejectDeviceTensor(tokens, 'tokens');
  assertTensor(tokens, 'tokens', { rank: [2, 3] });
  const batched = tokens.shape.length === 3;
  const rows = batched ? tokens.shape[0]! : 1;
  const n = tokens.shape[batched ? 1 : 0]!;
  const c = tokens.shape[batched ? 2 : 1]!;
  check(n > 0 && c > 0 && rows > 0, `tokens is empty (shape [${tokens.shape.join(', ')}])`, 'SHAPE_MISMATCH');
  const att = attentionArg(attention);
  return { att, batched, rows, n, c, ...selection(n, att, options) };
}

function pruneArgs(tokens: Tensor, p: PrunePlan): NativePruneArgs {
  const bytes = (tokens.data as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  const { att, n, start, end, keep } = p;
  return { attention: att.data, heads: att.heads, n, start, end, keep, tokens: tokens.data, batch: p.rows, rowBytes: p.c * bytes };
}

/** FastV's full-matrix criterion: the attention each token receives, over all queries and heads. */
const receivedOp = defineOp({
  name: 'receivedAttention',
  prepare: (a: { attention: Float32Array; heads: number; n: number }) => a,
  sync: (a) => native().tokensReceivedAttention(a),
  async: (a) => native().tokensReceivedAttentionAsync(a),
  finish: (weights: Float32Array) => weights,
});

/**
 * The per-token weights FastV (pruneByAttention) and HoliTom (mergeByAttention) rank by: a full
 * matrix [heads, N, N] becomes the attention each token receives (natively, off the main thread
 * in the async form); the last-token forms [N] / [heads, N] pass through unchanged. Only the
 * full form returns a promise, so the last-token forms are read before the caller returns.
 */
function rankingAttention(attention: Tensor | Float32Array): Tensor | Float32Array | Promise<Float32Array> {
  const full = fullAttentionArg(attention);
  return full ? receivedOp.run(full) : attention;
}

/** Synchronous {@link rankingAttention}. */
function rankingAttentionSync(attention: Tensor | Float32Array): Tensor | Float32Array {
  const full = fullAttentionArg(attention);
  return full ? receivedOp.runSync(full) : attention;
}

const pruneOp = defineOp({
  name: 'pruneByAttention',
  prepare(tokens: Tensor, attention: Tensor | Float32Array, options: PruneByAttentionOptions = {}) {
    const p = prunePlan(tokens, attention, options);
    return { tokens, p, args: pruneArgs(tokens, p) };
  },
  sync: (c) => native().tokensPruneByAttention(c.args),
  async: (c) => native().tokensPruneByAttentionAsync(c.args),
  finish: (res, c) => pruneResult(c.tokens, c.p, res),
});

function pruneResult<D extends DType>(tokens: Tensor<D>, p: PrunePlan, res: NativePruneResult): PruneResult<D> {
  const shape = p.batched ? [p.rows, res.kept.length, p.c] : [res.kept.length, p.c];
  return { tokens: tensor(tokens.dtype, shape, res.tokens as TypedArrayFor<D>), kept: res.kept, dropped: res.dropped };
}

/**
 * FastV, off the main thread: ranks the span's tokens by attention weight and drops the
 * lowest ones; tokens outside the span stay. Two forms of `attention`:
 * - the full matrix [heads, N, N] of layer K (row i = query i over the keys): the paper's
 *   criterion, the average attention each token receives from all N queries (masked
 *   entries count as 0, divided by N) and all heads; pass [1, N, N] for one head;
 * - the last token's row [N] or [heads, N] (mean over heads): what FastV's released code
 *   and DyCoke use, and all a decoder with fused attention exposes.
 * Count: `keep` tokens of the span, or `ratio` R dropped: keep = L - round(R L) with L the
 * span length and round() halves up (Math.round), e.g. L = 5, R = 0.5 drops 3.
 * tokens: [N, C] or [batch, N, C] of any dtype (the same tokens are dropped in every row).
 * Ties keep the lower index. Leave the inputs unchanged until the promise settles.
 * @example
 * const { tokens, kept } = await pruneByAttention(hidden, lastTokenAttention, { ratio: 0.5, span: [35, 611] });
 * const paper = await pruneByAttention(hidden, layer2Attention, { ratio: 0.5, span: [35, 611] }); // [heads, N, N]
 */
export async function pruneByAttention<D extends DType>(
  tokens: Tensor<D>,
  attention: Tensor | Float32Array,
  options: PruneByAttentionOptions = {},
): Promise<PruneResult<D>> {
  const ranking = rankingAttention(attention);
  return pruneOp.run(tokens, ranking instanceof Promise ? await ranking : ranking, options) as Promise<PruneResult<D>>;
}

/**
 * Synchronous {@link pruneByAttention} (blocks the event loop for the native work).
 * @example
 * const { tokens } = pruneByAttentionSync(hidden, lastTokenAttention, { ratio: 0.5 });
 */
export function pruneByAttentionSync<D extends DType>(
  tokens: Tensor<D>,
  attention: Tensor | Float32Array,
  options: PruneByAttentionOptions = {},
): PruneResult<D> {
  return pruneOp.runSync(tokens, rankingAttentionSync(attention), options) as PruneResult<D>;
}

export interface MergeByAttentionOptions extends PruneByAttentionOptions {
  /** How many original tokens each input token already holds [N] (default all 1). */
  sizes?: Float32Array;
}

export interface MergeByAttentionResult extends PruneResult<FloatDType> {
  /** Sizes of the output tokens (dropped tokens add their size to the kept token they joined). */
  sizes: Float32Array;
  /** [N]: output index holding each input token. */
  assignment: Int32Array;
}

function mergePlan(tokens: unknown, attention: unknown, options: MergeByAttentionOptions) {
  rejectDeviceTensor(tokens, 'tokens');
  assertTensor(tokens, 'tokens', { dtypes: FLOAT_DTYPES, rank: [2] });
  const [n, c] = tokens.shape as [number, number];
  check(n > 0 && c > 0, `tokens is empty (shape [${tokens.shape.join(', ')}])`, 'SHAPE_MISMATCH');
  const att = attentionArg(attention);
  const { start, end, keep } = selection(n, att, options);
  const sizes = options.sizes ?? null;
  check(sizes === null || sizes instanceof Float32Array, 'sizes must be a Float32Array');
  check(sizes === null || sizes.length === n, `sizes must hold ${n} values (got ${sizes?.length})`, 'SHAPE_MISMATCH');
  const args: NativeAttentionMergeArgs = {
    tokens: toFloat32(tokens),
    n,
    c,
    attention: att.data,
    heads: att.heads,
    start,
    end,
    keep,
    sizes: sizes ?? undefined,
  };
  return { args, c, dtype: tokens.dtype as FloatDType };
}

function mergeResult(res: NativeAttentionMergeResult, c: number, dtype: FloatDType): MergeByAttentionResult {
  const merged = castFloat(tensor('f32', [res.kept.length, c], res.x), dtype);
  return { tokens: merged, kept: res.kept, dropped: res.dropped, sizes: res.sizes, assignment: res.assignment };
}

const mergeOp = defineOp({
  name: 'mergeByAttention',
  prepare: (tokens: Tensor, attention: Tensor | Float32Array, options: MergeByAttentionOptions = {}) =>
    mergePlan(tokens, attention, options),
  sync: (p) => native().tokensMergeByAttention(p.args),
  async: (p) => native().tokensMergeByAttentionAsync(p.args),
  finish: (res, p) => mergeResult(res, p.c, p.dtype),
});

/**
 * HoliTom's inner-LLM step, off the main thread: like {@link pruneByAttention}, but every
 * dropped span token is merged (size-weighted average) into its most similar kept span token
 * (cosine; ties: lower index) instead of being thrown away. tokens: [N, C] float.
 * The kept set is ranked as {@link pruneByAttention} ranks it (the same code), from either form of `attention`:
 * - the full matrix [heads, N, N] of the layer (row i = query i over the keys; [1, N, N] for
 *   one head): the average attention each token receives from all N queries and all heads;
 * - the last token's row [N] or [heads, N] (mean over heads): all a decoder with fused
 *   attention exposes.
 * @example
 * const merged = await mergeByAttention(hidden, lastTokenAttention, { ratio: 0.5, span: [35, 611] });
 * const paper = await mergeByAttention(hidden, layerAttention, { ratio: 0.5, span: [35, 611] }); // [heads, N, N]
 */
export async function mergeByAttention(
  tokens: Tensor,
  attention: Tensor | Float32Array,
  options: MergeByAttentionOptions = {},
): Promise<MergeByAttentionResult> {
  const ranking = rankingAttention(attention);
  return mergeOp.run(tokens, ranking instanceof Promise ? await ranking : ranking, options);
}

/**
 * Synchronous {@link mergeByAttention} (blocks the event loop for the native work).
 * @example
 * const merged = mergeByAttentionSync(hidden, lastTokenAttention, { ratio: 0.5 });
 */
export function mergeByAttentionSync(
  tokens: Tensor,
  attention: Tensor | Float32Array,
  options: MergeByAttentionOptions = {},
): MergeByAttentionResult {
  return mergeOp.runSync(tokens, rankingAttentionSync(attention), options);
}

export interface DynamicKVPrunerOptions {
  /** The image tokens [start, end) in the KV cache. */
  span: TokenSpan;
  /** Fraction of image tokens pruned (p). Default 0.7. */
  pruneRatio?: number;
  /** Recompute the kept set when the attention's cosine similarity with the previous step's falls below this. Default 0.9. */
  threshold?: number;
  /** The layer from which the pruned cache is used (L); informational for callers. Default 3. */
  layer?: number;
}

export interface KVPruneStep {
  /** Indices (ascending, absolute) of the image tokens layers >= L attend to. */
  kept: Int32Array;
  /** True when this step recomputed the kept set. */
  recomputed: boolean;
  /** Cosine similarity with the previous step's image attention (NaN on the first step). */
  similarity: number;
}

const kvStepOp = defineOp({
  name: 'DynamicKVPruner.step',
  prepare: (args: () => NativeKVStepArgs) => args(),
  sync: (a) => native().tokensKvPruneStep(a),
  async: (a) => native().tokensKvPruneStepAsync(a),
  finish: (res: NativeKVStepResult) => res,
});

/**
 * DyCoke's decode-time pruning: each step, pass the last token's attention over the cache
 * (from layer L-1, [N] or [heads, N]). When it drifts (cosine < threshold against the previous
 * step) the kept set is recomputed as the top (1 - p) image tokens; otherwise it is reused.
 * `step` runs off the main thread and steps apply in call order; `stepSync` blocks.
 * @example
 * const pruner = new DynamicKVPruner({ span: [35, 611] });
 * const { kept } = await pruner.step(attentionFromLayer2);
 */
export class DynamicKVPruner {
  readonly start: number;
  readonly end: number;
  readonly pruneRatio: number;
  readonly threshold: number;
  readonly layer: number;
  #previous: Float32Array | undefined;
  #kept: Int32Array | undefined;
  readonly #queue = new CallQueue();

  constructor(options: DynamicKVPrunerOptions) {
    check(options && typeof options === 'object', 'DynamicKVPruner needs options { span }');
    check(Array.isArray(options.span) && options.span.length === 2, 'span must be [start, end)');
    this.start = checkInt(options.span[0], 'span[0]', 0);
    this.end = checkInt(options.span[1], 'span[1]', this.start + 1);
    this.pruneRatio = checkNumber(options.pruneRatio ?? 0.7, 'pruneRatio', 0, 1, { openMax: true });
    this.threshold = checkNumber(options.threshold ?? 0.9, 'threshold', -1, 1);
    this.layer = checkInt(options.layer ?? 3, 'layer', 1);
  }

  /** The current kept set (undefined before the first step). */
  get kept(): Int32Array | undefined {
    return this.#kept;
  }

  #attention(attention: unknown, copy: boolean): Attention {
    const a = attentionArg(attention);
    if (a.n < this.end) throw new InferzipError('SHAPE_MISMATCH', `attention covers ${a.n} tokens but the image span ends at ${this.end}`);
    // an async step reads the values later: snapshot them so the caller may reuse its buffer
    const shared = attention instanceof Float32Array || (attention as Tensor).dtype === 'f32';
    return copy && shared ? { ...a, data: a.data.slice() } : a;
  }

  #args(a: Attention): NativeKVStepArgs {
    const keep = Math.max(1, Math.round((1 - this.pruneRatio) * (this.end - this.start)));
    const { start, end, threshold } = this;
    return {
      attention: a.data,
      heads: a.heads,
      n: a.n,
      start,
      end,
      previous: this.#previous,
      hasKept: this.#kept !== undefined,
      keep,
      threshold,
    };
  }

  #apply(res: NativeKVStepResult): KVPruneStep {
    if (res.kept) this.#kept = res.kept;
    this.#previous = res.image;
    return { kept: this.#kept!, recomputed: res.recomputed, similarity: res.similarity };
  }

  /** Feeds one decoding step's last-token attention, off the main thread; returns the kept image tokens. */
  step(attention: Tensor | Float32Array): Promise<KVPruneStep> {
    const a = this.#attention(attention, true);
    // the arguments are read when the step starts: earlier steps set #previous and #kept
    return this.#queue.run(() => kvStepOp.run(() => this.#args(a)).then((res) => this.#apply(res)));
  }

  /** Synchronous {@link step}. */
  stepSync(attention: Tensor | Float32Array): KVPruneStep {
    this.#queue.assertIdle('DynamicKVPruner.stepSync()');
    const a = this.#attention(attention, false);
    return this.#apply(kvStepOp.runSync(() => this.#args(a)));
  }

  /** A 0/1 mask over `length` cache positions for layers >= L: non-image tokens and kept image tokens are 1. */
  attendMask(length: number): Uint8Array {
    checkInt(length, 'length', this.end);
    check(this.#kept, 'call step() before attendMask()');
    const mask = new Uint8Array(length).fill(1);
    mask.fill(0, this.start, this.end);
    for (const i of this.#kept) mask[i] = 1;
    return mask;
  }

  /** Forgets the history (e.g. for a new prompt). */
  reset(): void {
    this.#queue.assertIdle('DynamicKVPruner.reset()');
    this.#previous = undefined;
    this.#kept = undefined;
  }
}
