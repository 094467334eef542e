/**
 * ToMe bipartite soft matching (Bolya et al., "Token Merging: Your ViT but Faster"),
 * implemented from the paper: split tokens alternately into A (even) and B (odd), match
 * every A token to its most similar B token by cosine of a metric, and merge the r best
 * matched A tokens into their partners with a size-weighted average.
 */
import { resolveDevice, type DeviceKind } from '../backend.js';
import { InferzipError, check, nativeAwait, nativeCall } from '../errors.js';
import { native } from '../native.js';
import { tensor, toFloat32, type NdArrayLike, type Tensor } from '../tensor.js';
import { outputTensor, tokenBatch, type TokenBatch } from './input.js';
import './native.js';

export interface MergeOptions {
  /** Tokens to remove in this step. At most (N - protected) / 2. */
  r: number;
  /** Similarity features [batch?, N, Cm] (usually attention keys averaged over heads). Default: x. */
  metric?: Tensor | NdArrayLike;
  /** Tokens each input already stands for [batch?, N] (from an earlier merge). Default: all 1. */
  sizes?: Tensor | Float32Array;
  /** Indices that never merge (e.g. a class token at 0). */
  protectedTokens?: readonly number[];
  /**
   * Output order. false (default, as in ToMe): the unmerged A tokens (even indices, ascending)
   * followed by every B token (odd indices, ascending). true: surviving tokens in their original order.
   */
  keepOrder?: boolean;
  /** Cap r at the largest possible value instead of throwing. Default false. */
  clamp?: boolean;
  /** Backend for the similarity matrix ('auto' = the active backend). */
  device?: DeviceKind | 'auto';
}

export interface MergeResult {
  /** Merged tokens [batch?, N - r, C], in the input's dtype. */
  x: Tensor;
  /** Tokens each output stands for [batch?, N - r] (f32). */
  sizes: Tensor<'f32'>;
  /** For each input token, the output token that holds it: [batch?, N] (i32). */
  assign: Tensor<'i32'>;
  /** Tokens removed. */
  r: number;
  /** The original token indices merged into output token `i` (of batch item `b`). */
  sources(i: number, b?: number): number[];
  /** Spreads per-token results [batch?, N - r, D] back to the N input tokens [batch?, N, D]. */
  unmerge(y: Tensor | NdArrayLike): Tensor;
}

interface Prepared {
  x: TokenBatch;
  metric: Float32Array;
  cm: number;
  sizes: Float32Array | null;
  protect: Uint8Array | null;
  r: number;
  keepOrder: boolean;
  device: DeviceKind;
}

/** Largest r one step can remove from n tokens with the given protected indices. */
export function maxMergeR(n: number, protectedTokens: readonly number[] = []): number {
  const prot = new Set(protectedTokens);
  let freeA = 0;
  let freeB = 0;
  for (let i = 0; i < n; i++) if (!prot.has(i)) i % 2 === 0 ? freeA++ : freeB++;
  return freeB === 0 ? 0 : Math.min(freeA, Math.floor((n - prot.size) / 2));
}

function prepare(xIn: Tensor | NdArrayLike, options: MergeOptions): Prepared {
  check(options && typeof options === 'object', 'mergeTokens needs options { r }');
  const x = tokenBatch(xIn, 'x');
  const { batch, n } = x;
  check(Number.isInteger(options.r) && options.r >= 0, `r must be a non-negative integer (got ${String(options.r)})`);
  let metric = x.data;
  let cm = x.c;
  if (options.metric !== undefined) {
    const m = tokenBatch(options.metric, 'metric');
    check(m.batch === batch && m.n === n, `metric has ${m.batch} x ${m.n} tokens but x has ${batch} x ${n}`, 'SHAPE_MISMATCH');
    metric = m.data;
    cm = m.c;
  }
  let sizes: Float32Array | null = null;
  if (options.sizes !== undefined) {
    sizes = options.sizes instanceof Float32Array ? options.sizes : toFloat32(options.sizes);
    check(sizes.length === batch * n, `sizes has ${sizes.length} entries, expected ${batch * n}`, 'SHAPE_MISMATCH');
    for (let i = 0; i < sizes.length; i++) check(Number.isFinite(sizes[i]!) && sizes[i]! > 0, `sizes[${i}] = ${sizes[i]} must be positive and finite`);
  }
  let protect: Uint8Array | null = null;
  if (options.protectedTokens?.length) {
    protect = new Uint8Array(n);
    for (const p of options.protectedTokens) {
      check(Number.isInteger(p) && p >= 0 && p < n, `protected token ${p} is outside [0, ${n})`);
      protect[p] = 1;
    }
  }
  const max = maxMergeR(n, options.protectedTokens);
  let r = options.r;
  if (r > max) {
    if (!options.clamp) {
      throw new InferzipError(
        'INVALID_ARGUMENT',
        `r = ${r} is larger than possible: one step can merge at most ${max} of ${n} tokens` +
          (protect ? ` (${options.protectedTokens!.length} protected)` : '') +
          '; lower r or pass clamp: true',
      );
    }
    r = max;
  }
  return { x, metric, cm, sizes, protect, r, keepOrder: options.keepOrder ?? false, device: resolveDevice(options.device) };
}

function finish(p: Prepared, res: { x: Float32Array; sizes: Float32Array; assign: Int32Array }): MergeResult {
  const { batch, n, c, batched, dtype } = p.x;
  const outN = n - p.r;
  const lead = batched ? [batch] : [];
  const assign = res.assign;
  return {
    x: outputTensor(res.x, [...lead, outN, c], dtype),
    sizes: tensor('f32', [...lead, outN], res.sizes),
    assign: tensor('i32', [...lead, n], assign),
    r: p.r,
    sources(i: number, b = 0): number[] {
      check(Number.isInteger(i) && i >= 0 && i < outN, `output token ${i} is outside [0, ${outN})`);
      check(Number.isInteger(b) && b >= 0 && b < batch, `batch index ${b} is outside [0, ${batch})`);
      const out: number[] = [];
      for (let t = 0; t < n; t++) if (assign[b * n + t] === i) out.push(t);
      return out;
    },
    unmerge(yIn: Tensor | NdArrayLike): Tensor {
      const y = tokenBatch(yIn, 'y');
      check(y.batch === batch && y.n === outN, `y has ${y.batch} x ${y.n} tokens but the merge produced ${batch} x ${outN}`, 'SHAPE_MISMATCH');
      const d = y.c;
      const out = new Float32Array(batch * n * d);
      for (let b = 0; b < batch; b++) {
        for (let t = 0; t < n; t++) {
          const src = (b * outN + assign[b * n + t]!) * d;
          out.set(y.data.subarray(src, src + d), (b * n + t) * d);
        }
      }
      return outputTensor(out, [...lead, n, d], y.dtype);
    },
  };
}

function nativeOptions(p: Prepared) {
  return { batch: p.x.batch, n: p.x.n, c: p.x.c, cm: p.cm, r: p.r, keepOrder: p.keepOrder, device: p.device };
}

/**
 * One ToMe step: removes r tokens by merging each of the r best-matched A tokens into its
 * most similar B token (size-weighted average). Runs off the main thread.
 * @example
 *   const { x: merged, sizes, unmerge } = await mergeTokens(tokens, { r: 16, protectedTokens: [0] });
 */
export async function mergeTokens(x: Tensor | NdArrayLike, options: MergeOptions): Promise<MergeResult> {
  const p = prepare(x, options);
  const res = await nativeAwait(() => native().tomeMerge(p.x.data, p.metric, p.sizes, p.protect, nativeOptions(p)), 'mergeTokens');
  return finish(p, res);
}

/** Synchronous mergeTokens (blocks the event loop for the length of the step). */
export function mergeTokensSync(x: Tensor | NdArrayLike, options: MergeOptions): MergeResult {
  const p = prepare(x, options);
  return finish(p, nativeCall(() => native().tomeMergeSync(p.x.data, p.metric, p.sizes, p.protect, nativeOptions(p)), 'mergeTokensSync'));
}

/**
 * Proportional attention: the bias log(s) to add to attention logits so a token that
 * stands for s tokens gets s times the weight.
 */
export function attentionBias(sizes: Tensor | Float32Array): Float32Array {
  const s = sizes instanceof Float32Array ? sizes : toFloat32(sizes);
  const out = new Float32Array(s.length);
  for (let i = 0; i < s.length; i++) {
    check(Number.isFinite(s[i]!) && s[i]! > 0, `sizes[${i}] = ${s[i]} must be positive and finite`);
    out[i] = Math.log(s[i]!);
  }
  return out;
}

/**
 * Tokens to remove at each layer. A number gives a constant schedule; `{ r, inflection }`
 * gives ToMe's linearly changing schedule: inflection in [-1, 1] moves merging toward the
 * first layers (> 0, decreasing) or the last (< 0, increasing) with the same average r.
 * Pass `tokens` to cap every layer at what is possible (half the remaining tokens).
 */
export function mergeSchedule(layers: number, r: number | { r: number; inflection?: number }, tokens?: number): number[] {
  check(Number.isInteger(layers) && layers > 0, `layers must be a positive integer (got ${layers})`);
  const spec = typeof r === 'number' ? { r, inflection: 0 } : { r: r.r, inflection: r.inflection ?? 0 };
  check(Number.isFinite(spec.r) && spec.r >= 0, `r must be a non-negative number (got ${spec.r})`);
  check(spec.inflection >= -1 && spec.inflection <= 1, `inflection must be in [-1, 1] (got ${spec.inflection})`);
  const out: number[] = [];
  let remaining = tokens ?? Infinity;
  let cumulative = 0; // rounding the running total keeps the schedule's sum at layers * r
  for (let l = 0; l < layers; l++) {
    const t = layers === 1 ? 0.5 : l / (layers - 1);
    const value = Math.max(0, spec.r * (1 + spec.inflection * (1 - 2 * t)));
    let step = Math.round(cumulative + value) - Math.round(cumulative);
    cumulative += value;
    if (Number.isFinite(remaining)) step = Math.min(step, Math.floor(remaining / 2));
    out.push(step);
    remaining -= step;
  }
  return out;
}
