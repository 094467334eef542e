/**
 * Token reduction by optimal transport, by the attention graph and by progressive clip
 * merging: TopV (Yang et al., CVPR 2025), Zero-TPrune (Wang et al., CVPR 2024) and TempMe
 * (Shen et al., ICLR 2025, without its trained parts). The work runs natively on all cores
 * (native/core/tokens/transport.cpp, graph.cpp, clips.cpp); the async functions run it off
 * the main thread, the *Sync ones block for it. Leave the inputs unchanged until a promise
 * settles.
 *
 * Counts: pass exactly one of `keep` (tokens kept, an integer >= 0; more than N keeps all)
 * or `ratio` (the fraction KEPT, in [0, 1]; K = floor(N * ratio + 1e-9)). Rankings are by
 * score, descending, equal scores keeping the lower index. Kept indices come back ascending.
 *
 * All three also take DeviceTensors (all inputs on one device): they run where the tensors
 * live (the CUDA kernels for 'cuda:N', the CPU backend for 'cpu'; reduce-device.ts,
 * clips-device.ts), and the kept rows / merged tokens come back as DeviceTensors there.
 */
import { DeviceTensor, sameDevice } from '../device-tensor.js';
import { check } from '../errors.js';
import { native } from '../native.js';
import { defineOp } from '../ops.js';
import { allocArray, castFloat, tensor, type DType, type Tensor, type TypedArrayFor } from '../tensor.js';
import { clipDeviceArgs, clipDeviceResult, deviceFrames } from './clips-device.js';
import type {
  NativeClipDeviceOptions,
  NativeClipDeviceResult,
  NativeClipMergeResult,
  NativeClipOptions,
  NativeDeviceScoredSelection,
  NativeGraphDeviceOptions,
  NativeGraphOptions,
  NativeScoredSelection,
  NativeTransportDeviceOptions,
  NativeTransportOptions,
} from './native.js';
import {
  deviceFloat,
  deviceRows3,
  deviceScoredResult,
  graphDeviceOptions,
  sameSide,
  transportDeviceOptions,
  type DeviceRows,
} from './reduce-device.js';
import { SourceMap } from './source-map.js';
import { checkInt, checkNumber, floatTensor, type FloatDType } from '../validate.js';

/** How many tokens to keep: exactly one of the two. */
export interface KeepCount {
  /** Tokens to keep (integer >= 0; values above N keep all). */
  keep?: number;
  /** Fraction of tokens to KEEP, in [0, 1]: K = floor(N * ratio + 1e-9). */
  ratio?: number;
}

/** Result of {@link pruneByTransport} and {@link pruneByAttentionGraph}; `T` is the kind of the input. */
export interface ScoredPruneResult<D extends DType = DType, T extends Tensor<D> | DeviceTensor<D> = Tensor<D>> {
  /** Kept rows [batch?, K, C] in their original order, dtype of the input (a DeviceTensor on the input's device for DeviceTensor inputs). */
  tokens: T;
  /** Kept indices, ascending ([batch * K], one row of K per batch item). */
  kept: Int32Array;
  /** Dropped indices, ascending ([batch * (N - K)]). */
  dropped: Int32Array;
  /** The method's score of each kept token, aligned with `kept`. */
  scores: Float32Array;
}

function keepCount(options: KeepCount, n: number): number {
  const hasKeep = options.keep !== undefined;
  const hasRatio = options.ratio !== undefined;
  check(
    hasKeep !== hasRatio,
    `pass exactly one of keep or ratio (got ${hasKeep ? 'both' : 'neither'}); e.g. { ratio: 0.5 } keeps half the tokens`,
  );
  if (hasKeep) return Math.min(checkInt(options.keep, 'keep', 0), n);
  return Math.floor(n * checkNumber(options.ratio, 'ratio', 0, 1) + 1e-9);
}

function options0<T>(options: T, fn: string): T {
  check(options !== null && typeof options === 'object', `${fn} needs an options object with keep or ratio (e.g. { ratio: 0.5 })`);
  return options;
}

type HostRows = { t: Tensor; f32: Float32Array; batch: number; batched: boolean; n: number; c: number };

/** [batch?, rows, C] float tensor -> f32 values (host tensors) and its dims. */
function rows3(value: unknown, name: string): HostRows | DeviceRows {
  if (value instanceof DeviceTensor) return deviceRows3(value, name);
  const { t, f32 } = floatTensor(value, name, [2, 3]);
  const batched = t.shape.length === 3;
  const batch = batched ? t.shape[0]! : 1;
  const n = t.shape[batched ? 1 : 0]!;
  const c = t.shape[batched ? 2 : 1]!;
  check(batch > 0 && n > 0 && c > 0, `${name} is empty (shape [${t.shape.join(', ')}]); pass at least one token`, 'SHAPE_MISMATCH');
  return { t, f32, batch, batched, n, c };
}

function gatherRows<D extends DType>(
  t: Tensor<D>,
  batch: number,
  n: number,
  c: number,
  kept: Int32Array,
  k: number,
  batched: boolean,
): Tensor<D> {
  const src = t.data as unknown as { subarray(a: number, b: number): ArrayLike<number>; length: number };
  const out = allocArray(t.dtype, batch * k * c) as unknown as { set(a: ArrayLike<number>, o: number): void };
  for (let b = 0; b < batch; b++) {
    for (let j = 0; j < k; j++) {
      const row = (b * n + kept[b * k + j]!) * c;
      out.set(src.subarray(row, row + c), (b * k + j) * c);
    }
  }
  return tensor(t.dtype, batched ? [batch, k, c] : [k, c], out as unknown as TypedArrayFor<D>);
}

// --- TopV ----------------------------------------------------------------------------

export interface PruneByTransportOptions extends KeepCount {
  /** The layer's targets [batch?, N, C] (the paper: the same tokens after the post-LN); they carry the visual tokens' positions. */
  target?: Tensor | DeviceTensor;
  /** Text tokens [batch?, L, C] as extra targets (no position). */
  text?: Tensor | DeviceTensor;
  /** Token grid [h, w] with h * w = N (default: square when N is a perfect square, else [1, N]). */
  grid?: readonly [number, number];
  /** Weight of the feature term 1 - cos. Default 1. */
  alpha?: number;
  /** Weight of the relative spatial distance |p_i - p_j| / diagonal. Default 0.25. */
  beta?: number;
  /** Weight of the absolute central distance |p_i - centre| / max. Default 0.25. */
  gamma?: number;
  /** Entropic regularization of the transport (G = exp(-C / eps)). Default 0.1. */
  eps?: number;
  /** Sinkhorn iterations. Default 10. */
  iters?: number;
  /** Fraction of the kept tokens chosen uniformly among the rest instead of by score (the paper's recovery). Default 0. */
  recover?: number;
}

type TransportCall =
  | { v: HostRows | DeviceRows; k: number; device: DeviceTensor; args: NativeTransportDeviceOptions }
  | { v: HostRows | DeviceRows; k: number; device?: undefined; args: NativeTransportOptions };

function transportPlan(visual: unknown, options: PruneByTransportOptions): TransportCall {
  options0(options, 'pruneByTransport');
  const v = rows3(visual, 'visual');
  const device = v.t instanceof DeviceTensor;
  sameSide('visual', device, 'target', options.target);
  sameSide('visual', device, 'text', options.text);
  const k = keepCount(options, v.n);
  const o: Omit<NativeTransportOptions, 'visual' | 'target' | 'text'> = {
    batch: v.batch,
    n: v.n,
    c: v.c,
    gridH: 1,
    gridW: v.n,
    alpha: checkNumber(options.alpha ?? 1, 'alpha', 0, 1e6),
    beta: checkNumber(options.beta ?? 0.25, 'beta', 0, 1e6),
    gamma: checkNumber(options.gamma ?? 0.25, 'gamma', 0, 1e6),
    eps: checkNumber(options.eps ?? 0.1, 'eps', 0, 1e6, { openMin: true }),
    iters: checkInt(options.iters ?? 10, 'iters', 1, 100000),
    keep: k,
    recover: 0,
  };
  const maxCost = 2 * o.alpha + o.beta + o.gamma;
  check(
    maxCost / o.eps <= 600,
    `eps = ${o.eps} is too small for cost weights up to ${maxCost} (exp(-cost/eps) would underflow); use eps >= ${maxCost / 600}`,
  );
  o.recover = Math.floor(k * checkNumber(options.recover ?? 0, 'recover', 0, 1) + 1e-9);
  if (options.grid !== undefined) {
    check(Array.isArray(options.grid) && options.grid.length === 2, 'grid must be [height, width]');
    o.gridH = checkInt(options.grid[0], 'grid[0]', 1);
    o.gridW = checkInt(options.grid[1], 'grid[1]', 1);
    check(
      o.gridH * o.gridW === v.n,
      `grid ${o.gridH} x ${o.gridW} does not cover the ${v.n} visual tokens; pass grid with h * w = N`,
      'SHAPE_MISMATCH',
    );
  } else {
    const s = Math.round(Math.sqrt(v.n));
    if (s * s === v.n) [o.gridH, o.gridW] = [s, s];
  }
  let target: HostRows | DeviceRows | undefined;
  let text: HostRows | DeviceRows | undefined;
  if (options.target !== undefined) {
    const t = rows3(options.target, 'target');
    check(
      t.batched === v.batched && t.batch === v.batch && t.n === v.n && t.c === v.c,
      `target must have the shape of visual [${v.t.shape.join(', ')}] (got [${t.t.shape.join(', ')}])`,
      'SHAPE_MISMATCH',
    );
    target = t;
  }
  if (options.text !== undefined) {
    const t = rows3(options.text, 'text');
    check(
      t.batched === v.batched && t.batch === v.batch && t.c === v.c,
      `text must be [${v.batched ? `${v.batch}, ` : ''}L, ${v.c}] like visual (got [${t.t.shape.join(', ')}])`,
      'SHAPE_MISMATCH',
    );
    text = t;
    o.textRows = t.n;
  }
  if (v.t instanceof DeviceTensor) {
    const [vt, tt, xt] = [v.t, target?.t as DeviceTensor | undefined, text?.t as DeviceTensor | undefined];
    sameDevice('pruneByTransport', { visual: vt, target: tt, text: xt });
    return { v, k, device: vt, args: transportDeviceOptions(o, vt, tt, xt) };
  }
  const host = (r: HostRows | DeviceRows | undefined) => (r as HostRows | undefined)?.f32;
  return { v, k, args: { ...o, visual: (v as HostRows).f32, target: host(target), text: host(text) } };
}

function scoredResult<D extends DType>(
  t: Tensor<D> | DeviceTensor<D>,
  v: { batch: number; n: number; c: number; batched: boolean },
  k: number,
  res: NativeScoredSelection | NativeDeviceScoredSelection,
): ScoredPruneResult<D, Tensor<D> | DeviceTensor<D>> {
  if (t instanceof DeviceTensor) return deviceScoredResult(t, v, k, res as NativeDeviceScoredSelection);
  return { tokens: gatherRows(t, v.batch, v.n, v.c, res.kept, k, v.batched), kept: res.kept, dropped: res.dropped, scores: res.scores };
}

/**
 * TopV, off the main thread: scores each visual token by the entropic optimal transport
 * (Sinkhorn) from the visual tokens to the targets under the paper's visual-aware cost
 * C_ij = alpha (1 - cos(v_i, t_j)) + beta |p_i - p_j| / diag + gamma |p_i - centre| / Rmax,
 * and keeps the K tokens whose mass moves at the lowest cost (score = -N x the token's
 * transport cost). Targets: `target` rows (with positions) then `text` rows; neither given
 * means the visual tokens themselves. Prune once at prefill: no attention maps are needed,
 * so it works with fused attention, and the KV cache shrinks with the tokens.
 * visual: [N, C] or [batch, N, C] f32/f16/bf16, a host Tensor or a DeviceTensor (then target
 * and text are DeviceTensors on the same device; the cost matrix and Sinkhorn run there and
 * the kept rows come back as a DeviceTensor on that device).
 * @example
 * const visual = tensor('f32', [4, 2], Float32Array.from([1, 0, 0.9, 0.3, 0, 1, -1, 0.2]));
 * const { kept, scores } = await pruneByTransport(visual, { keep: 2, grid: [2, 2] });
 */
export function pruneByTransport<D extends FloatDType>(visual: Tensor<D>, options: PruneByTransportOptions): Promise<ScoredPruneResult<D>>;
export function pruneByTransport<D extends FloatDType>(
  visual: DeviceTensor<D>,
  options: PruneByTransportOptions,
): Promise<ScoredPruneResult<D, DeviceTensor<D>>>;
export function pruneByTransport<D extends FloatDType>(
  visual: Tensor<D> | DeviceTensor<D>,
  options: PruneByTransportOptions,
): Promise<ScoredPruneResult<D, Tensor<D> | DeviceTensor<D>>>;
export function pruneByTransport(visual: Tensor | DeviceTensor, options: PruneByTransportOptions): Promise<unknown> {
  return transportOp.run(visual, options);
}

/**
 * Synchronous {@link pruneByTransport} (blocks the event loop for the native work).
 * @example
 * const { kept } = pruneByTransportSync(visual, { keep: 64, grid: [24, 24] });
 */
export function pruneByTransportSync<D extends FloatDType>(visual: Tensor<D>, options: PruneByTransportOptions): ScoredPruneResult<D>;
export function pruneByTransportSync<D extends FloatDType>(
  visual: DeviceTensor<D>,
  options: PruneByTransportOptions,
): ScoredPruneResult<D, DeviceTensor<D>>;
export function pruneByTransportSync<D extends FloatDType>(
  visual: Tensor<D> | DeviceTensor<D>,
  options: PruneByTransportOptions,
): ScoredPruneResult<D, Tensor<D> | DeviceTensor<D>>;
export function pruneByTransportSync(visual: Tensor | DeviceTensor, options: PruneByTransportOptions): unknown {
  return transportOp.runSync(visual, options);
}

const transportOp = defineOp({
  name: 'pruneByTransport',
  prepare: (visual: Tensor | DeviceTensor, options: PruneByTransportOptions) => ({ visual, plan: transportPlan(visual, options) }),
  sync: (p): NativeScoredSelection =>
    p.plan.device ? native().tokensPruneByTransportDevice(p.plan.args) : native().tokensPruneByTransport(p.plan.args),
  async: (p): Promise<NativeScoredSelection> =>
    p.plan.device ? native().tokensPruneByTransportDeviceAsync(p.plan.args) : native().tokensPruneByTransportAsync(p.plan.args),
  finish: (res, p) => scoredResult(p.visual, p.plan.v, p.plan.k, res),
});

// --- Zero-TPrune -----------------------------------------------------------------------

export interface PruneByAttentionGraphOptions extends KeepCount {
  /** PageRank iterations (fixed count, no convergence test). Default 30. */
  iters?: number;
  /** Share of the removed tokens taken by the similarity (S) stage; the rest by importance (I stage). Default 0.5. */
  similarShare?: number;
}

type GraphCall =
  | { v: HostRows | DeviceRows; k: number; device: DeviceTensor; args: NativeGraphDeviceOptions }
  | { v: HostRows | DeviceRows; k: number; device?: undefined; args: NativeGraphOptions };

function graphPlan(tokens: unknown, attention: unknown, options: PruneByAttentionGraphOptions): GraphCall {
  options0(options, 'pruneByAttentionGraph');
  const v = rows3(tokens, 'tokens');
  const device = v.t instanceof DeviceTensor;
  sameSide('tokens', device, 'attention', attention);
  const ranks = v.batched ? [4] : [2, 3];
  const a =
    attention instanceof DeviceTensor ? { t: deviceFloat(attention, 'attention', ranks) } : floatTensor(attention, 'attention', ranks);
  const s = a.t.shape;
  const heads = s.length === 2 ? 1 : s[s.length - 3]!;
  const ok = s[s.length - 1] === v.n && s[s.length - 2] === v.n && heads > 0 && (!v.batched || s[0] === v.batch);
  check(
    ok,
    `attention must be ${v.batched ? `[${v.batch}, heads, ${v.n}, ${v.n}]` : `[${v.n}, ${v.n}] or [heads, ${v.n}, ${v.n}]`} for tokens [${v.t.shape.join(', ')}] (got [${s.join(', ')}])`,
    'SHAPE_MISMATCH',
  );
  // device attention: the native pass rejects negative and non-finite values where it runs
  const neg = 'f32' in a ? a.f32.findIndex((x) => x < 0) : -1;
  check(neg < 0, `attention holds a negative value (${'f32' in a ? a.f32[neg] : ''}) at element ${neg}; pass softmax probabilities`);
  const k = keepCount(options, v.n);
  const o: Omit<NativeGraphOptions, 'tokens' | 'attention'> = {
    batch: v.batch,
    n: v.n,
    c: v.c,
    heads,
    iters: checkInt(options.iters ?? 30, 'iters', 0, 100000),
    similarShare: checkNumber(options.similarShare ?? 0.5, 'similarShare', 0, 1),
    keep: k,
  };
  if (v.t instanceof DeviceTensor) {
    const at = a.t as DeviceTensor;
    sameDevice('pruneByAttentionGraph', { tokens: v.t, attention: at });
    return { v, k, device: v.t, args: graphDeviceOptions(o, v.t, at) };
  }
  return { v, k, args: { ...o, tokens: (v as HostRows).f32, attention: (a as { f32: Float32Array }).f32 } };
}

/**
 * Zero-TPrune, off the main thread: ranks tokens by a weighted PageRank on the attention
 * graph (importance flows from each query to the keys it attends to; heads averaged) and
 * drops the least important (I stage), then drops near-duplicates (S stage): the kept list
 * is split by importance into halves B (top) and A, and the A tokens most similar (cosine)
 * to some B token go. No training. tokens: [N, C] similarity features (e.g. keys averaged
 * over heads), [batch, N, C] with attention [batch, heads, N, N]; attention: [N, N] or
 * [heads, N, N] softmax rows (query i over the keys). Scores are the importances. DeviceTensor
 * tokens and attention (one device) run there (PageRank and similarities as CUDA kernels on
 * 'cuda:N'); the kept rows come back as a DeviceTensor on that device.
 * @example
 * const x = tensor('f32', [3, 2], Float32Array.from([1, 0, 0, 1, 1, 0.05]));
 * const att = tensor('f32', [3, 3], Float32Array.from([0.6, 0.2, 0.2, 0.5, 0.3, 0.2, 0.4, 0.3, 0.3]));
 * const { kept } = await pruneByAttentionGraph(x, att, { keep: 2 });
 */
export function pruneByAttentionGraph<D extends FloatDType>(
  tokens: Tensor<D>,
  attention: Tensor,
  options: PruneByAttentionGraphOptions,
): Promise<ScoredPruneResult<D>>;
export function pruneByAttentionGraph<D extends FloatDType>(
  tokens: DeviceTensor<D>,
  attention: DeviceTensor,
  options: PruneByAttentionGraphOptions,
): Promise<ScoredPruneResult<D, DeviceTensor<D>>>;
export function pruneByAttentionGraph<D extends FloatDType>(
  tokens: Tensor<D> | DeviceTensor<D>,
  attention: Tensor | DeviceTensor,
  options: PruneByAttentionGraphOptions,
): Promise<ScoredPruneResult<D, Tensor<D> | DeviceTensor<D>>>;
export function pruneByAttentionGraph(
  tokens: Tensor | DeviceTensor,
  attention: Tensor | DeviceTensor,
  options: PruneByAttentionGraphOptions,
): Promise<unknown> {
  return graphOp.run(tokens, attention, options);
}

/**
 * Synchronous {@link pruneByAttentionGraph} (blocks the event loop for the native work).
 * @example
 * const { kept } = pruneByAttentionGraphSync(keys, attention, { keep: 64 });
 */
export function pruneByAttentionGraphSync<D extends FloatDType>(
  tokens: Tensor<D>,
  attention: Tensor,
  options: PruneByAttentionGraphOptions,
): ScoredPruneResult<D>;
export function pruneByAttentionGraphSync<D extends FloatDType>(
  tokens: DeviceTensor<D>,
  attention: DeviceTensor,
  options: PruneByAttentionGraphOptions,
): ScoredPruneResult<D, DeviceTensor<D>>;
export function pruneByAttentionGraphSync<D extends FloatDType>(
  tokens: Tensor<D> | DeviceTensor<D>,
  attention: Tensor | DeviceTensor,
  options: PruneByAttentionGraphOptions,
): ScoredPruneResult<D, Tensor<D> | DeviceTensor<D>>;
export function pruneByAttentionGraphSync(
  tokens: Tensor | DeviceTensor,
  attention: Tensor | DeviceTensor,
  options: PruneByAttentionGraphOptions,
): unknown {
  return graphOp.runSync(tokens, attention, options);
}

const graphOp = defineOp({
  name: 'pruneByAttentionGraph',
  prepare: (tokens: Tensor | DeviceTensor, attention: Tensor | DeviceTensor, options: PruneByAttentionGraphOptions) => ({
    tokens,
    plan: graphPlan(tokens, attention, options),
  }),
  sync: (p): NativeScoredSelection =>
    p.plan.device ? native().tokensPruneByAttentionGraphDevice(p.plan.args) : native().tokensPruneByAttentionGraph(p.plan.args),
  async: (p): Promise<NativeScoredSelection> =>
    p.plan.device ? native().tokensPruneByAttentionGraphDeviceAsync(p.plan.args) : native().tokensPruneByAttentionGraphAsync(p.plan.args),
  finish: (res, p) => scoredResult(p.tokens, p.plan.v, p.plan.k, res),
});

// --- TempMe ----------------------------------------------------------------------------

export interface MergeClipsOptions {
  /** Fraction of each frame's tokens kept by ImgMe. Default 0.7. */
  imgKeep?: number;
  /** Fraction kept by each cross-clip merge (the paper's R_C). Default 0.7. */
  crossKeep?: number;
  /** Fraction kept by each intra-clip merge (the paper's R_I). Default 0.9. */
  intraKeep?: number;
  /** Clips joined per ClipMe round (default [2, 2, ...] until one clip remains; the paper's 12-frame schedule is [2, 2, 3]). */
  groups?: readonly number[];
}

/** Result of {@link mergeClips}; `T` is the kind of the frames (host Tensor or DeviceTensor). */
export interface MergeClipsResult<T extends Tensor | DeviceTensor = Tensor> {
  /** Merged tokens [batch?, M, C] (remaining clips in order), dtype and kind (host / device) of the input. */
  tokens: T extends DeviceTensor ? DeviceTensor : Tensor<FloatDType>;
  /** How many original tokens each merged token holds (integer-valued) [batch * M]; a DeviceTensor on the frames' device for device frames. */
  sizes: T extends DeviceTensor ? DeviceTensor<'f32'> : Float32Array;
  /** [batch * T * P]: the output row (within its batch item) holding original token (t, p) at t * P + p. */
  assignment: Int32Array;
  /** Rows of each remaining clip (they sum to M). */
  clipLengths: Int32Array;
  /** The same map as a {@link SourceMap} (sourcesOf, unmerge). */
  source: SourceMap;
}

function clipPlan(frames: unknown, options: MergeClipsOptions) {
  check(options !== null && typeof options === 'object', 'mergeClips options must be an object (e.g. {})');
  // device frames run on their device (lib/tokens/clips-device.ts); host frames are read here
  const device = frames instanceof DeviceTensor ? frames : undefined;
  const host = device ? undefined : floatTensor(frames, 'frames', [3, 4]);
  const { shape, dtype } = device ? deviceFrames(device) : { shape: host!.t.shape, dtype: host!.t.dtype as FloatDType };
  const batched = shape.length === 4;
  const [batch, nt, p, c] = (batched ? shape : [1, ...shape]) as [number, number, number, number];
  check(
    batch > 0 && nt > 0 && p > 0 && c > 0,
    `frames is empty (shape [${shape.join(', ')}]); pass [T, P, C] (or [batch, T, P, C]) with every size >= 1`,
    'SHAPE_MISMATCH',
  );
  const o: Omit<NativeClipOptions, 'frames'> = {
    batch,
    t: nt,
    p,
    c,
    imgKeep: checkNumber(options.imgKeep ?? 0.7, 'imgKeep', 0, 1),
    crossKeep: checkNumber(options.crossKeep ?? 0.7, 'crossKeep', 0, 1),
    intraKeep: checkNumber(options.intraKeep ?? 0.9, 'intraKeep', 0, 1),
  };
  if (options.groups !== undefined) {
    check(Array.isArray(options.groups), `groups must be an array of integers >= 1 (e.g. [2, 2, 3]), got ${String(options.groups)}`);
    check(options.groups.length <= 64, `groups holds ${options.groups.length} rounds; at most 64`);
    o.groups = Int32Array.from(options.groups, (g, i) => checkInt(g, `groups[${i}]`, 1, 1 << 30));
  }
  const plan = { dtype, c, total: nt * p, batch, batched };
  if (device) return { ...plan, device, args: clipDeviceArgs(device, o) };
  return { ...plan, device, args: { ...o, frames: host!.f32 } as NativeClipOptions };
}

function clipResult(res: NativeClipMergeResult, p: ReturnType<typeof clipPlan>): MergeClipsResult {
  const m = res.sizes.length / p.batch;
  return {
    tokens: castFloat(tensor('f32', p.batched ? [p.batch, m, p.c] : [m, p.c], res.x), p.dtype),
    sizes: res.sizes,
    assignment: res.assignment,
    clipLengths: res.clipLengths,
    source: new SourceMap(p.batch, p.total, m, res.assignment),
  };
}

/**
 * TempMe's progressive multi-granularity merging without its trained parts, off the main
 * thread: ImgMe merges redundant tokens inside each frame, then every ClipMe round joins
 * neighbouring clips (groups of `groups[i]`) and merges across them (cross-clip: the tokens
 * of the group's 2nd, 4th, ... clips into those of its 1st, 3rd, ...) and inside the new
 * clip (intra-clip), each step ToMe's bipartite soft matching (cosine, size-weighted
 * averages, order preserved). frames: [T, P, C] or [batch, T, P, C] f32/f16/bf16 (batch items
 * independent; they all give M tokens), a host Tensor or a DeviceTensor: device frames run on
 * their device ('cpu': the CPU backend, same result as host frames; 'cuda:N': the CUDA kernels,
 * the same merges and tokens within f32 rounding) and give tokens and sizes as DeviceTensors
 * there (the assignment and source map come back to the host).
 * @example
 * const frames = tensor('f32', [4, 16, 8], Float32Array.from({ length: 512 }, (_, i) => Math.sin(i)));
 * const { tokens, sizes, clipLengths } = await mergeClips(frames, { groups: [2, 2] });
 */
export function mergeClips<T extends Tensor | DeviceTensor>(frames: T, options: MergeClipsOptions = {}): Promise<MergeClipsResult<T>> {
  return clipOp.run(frames, options) as Promise<MergeClipsResult<T>>;
}

/**
 * Synchronous {@link mergeClips} (blocks the event loop for the native work).
 * @example
 * const { tokens, sizes } = mergeClipsSync(frames, { groups: [2, 2] });
 */
export function mergeClipsSync<T extends Tensor | DeviceTensor>(frames: T, options: MergeClipsOptions = {}): MergeClipsResult<T> {
  return clipOp.runSync(frames, options) as MergeClipsResult<T>;
}

type ClipCall = ReturnType<typeof clipPlan>;
const clipOp = defineOp({
  name: 'mergeClips',
  prepare: (frames: Tensor | DeviceTensor, options: MergeClipsOptions = {}) => clipPlan(frames, options),
  sync: (p: ClipCall) =>
    p.device ? native().tokensMergeClipsDevice(p.args as NativeClipDeviceOptions) : native().tokensMergeClips(p.args as NativeClipOptions),
  async: (p: ClipCall): Promise<NativeClipMergeResult | NativeClipDeviceResult> =>
    p.device
      ? native().tokensMergeClipsDeviceAsync(p.args as NativeClipDeviceOptions)
      : native().tokensMergeClipsAsync(p.args as NativeClipOptions),
  finish: (res, p): MergeClipsResult<Tensor> | MergeClipsResult<DeviceTensor> =>
    p.device ? clipDeviceResult(p.device, res as NativeClipDeviceResult, p) : clipResult(res as NativeClipMergeResult, p),
});
