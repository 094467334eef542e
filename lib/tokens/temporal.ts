/**
 * Temporal token reduction for video tokens [T, P, C] before the LLM:
 * DyCoke (Tao et al., CVPR 2025) paired-frame and 4-frame-window pruning/merging, and
 * HoliTom (Shao et al., 2025) DP temporal segmentation, static-token temporal averaging and
 * density-peak clustering (DPC-KNN) of the remaining tokens. The work runs natively on all
 * cores (native/core/tokens/temporal.cpp): `mergeTemporal` off the main thread,
 * `mergeTemporalSync` blocking.
 */
import { InferzipError, check } from '../errors.js';
import { defineOp } from '../ops.js';
import { native } from '../native.js';
import { assertTensor, castFloat, tensor, toFloat32, type Tensor } from '../tensor.js';
import type { NativeDyCokeArgs, NativeHoliTomArgs, NativeTemporalResult } from './native.js';
import { checkInt, checkNumber, FLOAT_DTYPES, rejectDeviceTensor, type FloatDType } from '../validate.js';

/**
 * DyCoke's temporal pass. Pass 1 compares frame 2i+1 with frame 2i; pass 2, in windows of 4
 * frames starting at 0, 4, 8, ..., compares frame w+2 with frame w. Each compared frame keeps
 * round((1 - K) P) tokens (round() halves up, Math.round: P = 5, K = 0.7 keeps 2), the least
 * similar to the same position of the reference frame. Trailing short windows: with T odd
 * the last frame has no partner and stays whole; a last window of fewer than 3 frames has no
 * pass 2 (its frame w+1 is still pass-1 pruned against w). Similarities always compare the
 * ORIGINAL input tokens at the same spatial position (cosine, f64), in both modes: merging
 * never changes what later comparisons see. In 'merge' mode a removed token joins (size-
 * weighted average) the same-position token of its reference frame (2i in pass 1, w in pass 2).
 */
export interface DyCokeOptions {
  method: 'dycoke';
  /** Fraction of tokens removed from each compared frame (the paper's K); the frame keeps round((1 - K) P). Default 0.7. */
  pruneRatio?: number;
  /** 'prune' drops similar tokens (as the released code does); 'merge' folds them into the matched token with a size-weighted average. Default 'prune'. */
  mode?: 'prune' | 'merge';
}

export interface HoliTomOptions {
  method: 'holitom';
  /** Similarity above which a position counts as static between consecutive frames. Default 0.8. */
  tau?: number;
  /** Spatial grid [h, w] with h * w = P; enables 2D pooling of the similarity features. */
  grid?: readonly [number, number];
  /** Pooling window (pool x pool) for the segmentation similarity when `grid` is given. Default 2 with a grid, 1 without. */
  pool?: number;
  /** Fraction of each segment's non-static tokens that survive (as kept tokens or cluster centres). Default 0.5. */
  keepRatio?: number;
  /** Per-token attention [T * P] (e.g. from the vision encoder's CLS or the text query); the top tokens are kept as they are. */
  attention?: Float32Array | Tensor;
  /** Share of the survivors picked by attention when `attention` is given (the rest are cluster centres). Default 0.5. */
  attentionShare?: number;
  /** k of the k-NN density in density-peak clustering. Default 7. */
  knn?: number;
}

export type MergeTemporalOptions = DyCokeOptions | HoliTomOptions;

export interface MergeTemporalResult {
  /** Kept tokens [M, C], in frames' order then positions' order of their representative token; dtype of the input. */
  tokens: Tensor<FloatDType>;
  /** Frame of each kept token's representative original token. */
  frame: Int32Array;
  /** Spatial position (0..P-1) of each kept token's representative original token. */
  position: Int32Array;
  /** How many original tokens each kept token stands for (1 for pruned-around tokens). */
  sizes: Float32Array;
  /** [T * P]: output index that holds each original token, or -1 when it was pruned away. */
  assignment: Int32Array;
  /** HoliTom only: the temporal segments as [first frame, last frame] pairs. */
  segments?: [number, number][];
}

type Call = { kind: 'dycoke'; args: NativeDyCokeArgs } | { kind: 'holitom'; args: NativeHoliTomArgs };

function dycokeArgs(x: Float32Array, t: number, p: number, c: number, o: DyCokeOptions): Call {
  const ratio = checkNumber(o.pruneRatio ?? 0.7, 'pruneRatio', 0, 1);
  const mode = o.mode ?? 'prune';
  check(mode === 'prune' || mode === 'merge', `mode must be 'prune' or 'merge' (got '${String(mode)}')`);
  return { kind: 'dycoke', args: { frames: x, t, p, c, keep: Math.round((1 - ratio) * p), merge: mode === 'merge' } };
}

function holitomArgs(x: Float32Array, t: number, p: number, c: number, o: HoliTomOptions): Call {
  const tau = checkNumber(o.tau ?? 0.8, 'tau', -1, 1);
  const keepRatio = checkNumber(o.keepRatio ?? 0.5, 'keepRatio', 0, 1);
  const share = checkNumber(o.attentionShare ?? 0.5, 'attentionShare', 0, 1);
  const knn = checkInt(o.knn ?? 7, 'knn', 1, 1024);
  let grid: readonly [number, number] = [0, 0];
  if (o.grid !== undefined) {
    check(Array.isArray(o.grid) && o.grid.length === 2, 'grid must be [height, width]');
    checkInt(o.grid[0], 'grid[0]', 1);
    checkInt(o.grid[1], 'grid[1]', 1);
    check(o.grid[0] * o.grid[1] === p, `grid ${o.grid[0]} x ${o.grid[1]} does not cover the ${p} tokens per frame`, 'SHAPE_MISMATCH');
    grid = o.grid;
  }
  const pool = checkInt(o.pool ?? (o.grid ? 2 : 1), 'pool', 1, 1024);
  check(pool === 1 || o.grid, 'pool needs grid: [height, width]');
  let attention: Float32Array | undefined;
  if (o.attention !== undefined) {
    rejectDeviceTensor(o.attention, 'attention');
    if (o.attention instanceof Float32Array) attention = o.attention;
    else {
      assertTensor(o.attention, 'attention', { dtypes: FLOAT_DTYPES, rank: [1, 2] });
      attention = toFloat32(o.attention);
    }
    check(attention.length === t * p, `attention must hold T * P = ${t * p} values (got ${attention.length})`, 'SHAPE_MISMATCH');
  }
  return {
    kind: 'holitom',
    args: { frames: x, t, p, c, tau, gridH: grid[0], gridW: grid[1], pool, keepRatio, attentionShare: share, knn, attention },
  };
}

function plan(frames: unknown, options: MergeTemporalOptions): { call: Call; c: number; dtype: FloatDType } {
  rejectDeviceTensor(frames, 'frames');
  assertTensor(frames, 'frames', { dtypes: FLOAT_DTYPES, rank: [3] });
  const [t, p, c] = frames.shape as [number, number, number];
  check(t > 0 && p > 0 && c > 0, `frames is empty (shape [${frames.shape.join(', ')}])`, 'SHAPE_MISMATCH');
  check(options && typeof options === 'object', "mergeTemporal needs options { method: 'dycoke' | 'holitom' }");
  const x = toFloat32(frames);
  const dtype = frames.dtype as FloatDType;
  if (options.method === 'dycoke') return { call: dycokeArgs(x, t, p, c, options), c, dtype };
  if (options.method === 'holitom') return { call: holitomArgs(x, t, p, c, options), c, dtype };
  throw new InferzipError(
    'INVALID_ARGUMENT',
    `method must be 'dycoke' or 'holitom' (got '${String((options as { method?: unknown }).method)}')`,
  );
}

function result(res: NativeTemporalResult, kind: Call['kind'], c: number, dtype: FloatDType): MergeTemporalResult {
  const tokens = castFloat(tensor('f32', [res.frame.length, c], res.x), dtype);
  const out: MergeTemporalResult = { tokens, frame: res.frame, position: res.position, sizes: res.sizes, assignment: res.assignment };
  if (kind === 'holitom') {
    out.segments = [];
    for (let i = 0; i < res.segments.length; i += 2) out.segments.push([res.segments[i]!, res.segments[i + 1]!]);
  }
  return out;
}

const temporalOp = defineOp({
  name: 'mergeTemporal',
  prepare: (frames: Tensor, options: MergeTemporalOptions) => plan(frames, options),
  sync: ({ call }) => (call.kind === 'dycoke' ? native().tokensDycokeMerge(call.args) : native().tokensHolitomMerge(call.args)),
  async: ({ call }) => (call.kind === 'dycoke' ? native().tokensDycokeMergeAsync(call.args) : native().tokensHolitomMergeAsync(call.args)),
  finish: (res, { call, c, dtype }) => result(res, call.kind, c, dtype),
});

/**
 * Reduces video tokens frames [T, P, C] (f32/f16/bf16 host tensor) across time with DyCoke
 * or HoliTom, off the main thread. Returns the kept tokens with the (frame, position) of the
 * original token each represents. Leave the inputs unchanged until the promise settles.
 * @example
 * const { tokens, frame, position } = await mergeTemporal(frames, { method: 'dycoke', pruneRatio: 0.7 });
 */
export function mergeTemporal(frames: Tensor, options: MergeTemporalOptions): Promise<MergeTemporalResult> {
  return temporalOp.run(frames, options);
}

/**
 * Synchronous {@link mergeTemporal} (blocks the event loop for the native work).
 * @example
 * const { tokens } = mergeTemporalSync(frames, { method: 'holitom' });
 */
export function mergeTemporalSync(frames: Tensor, options: MergeTemporalOptions): MergeTemporalResult {
  return temporalOp.runSync(frames, options);
}
