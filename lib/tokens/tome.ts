/**
 * ToMe bipartite soft matching (Bolya et al., "Token Merging: Your ViT but Faster"):
 * one step removes r tokens by merging the r most similar even-index tokens (A) into
 * their best odd-index partner (B), with size-weighted averages. Native on the CPU
 * (all cores) and CUDA.
 */
import { DeviceTensor, sameDevice } from '../device-tensor.js';
import { InferzipError, check } from '../errors.js';
import { native } from '../native.js';
import { assertTensor, castFloat, tensor, toFloat32, type Tensor } from '../tensor.js';
import { defineOp } from '../ops.js';
import type { NativeTomeDeviceArgs, NativeTomeDeviceResult, NativeTomeHostArgs, NativeTomeHostResult } from './native.js';
import { SourceMap } from './source-map.js';
import { FLOAT_DTYPES, checkFiniteResult, checkInt, type FloatDType } from '../validate.js';

/** Tokens that never merge: the first `k` tokens (e.g. 1 for a class token), or explicit indices. */
export type ProtectedTokens = number | readonly number[];

export interface MergeTokensOptions {
  /** Tokens to remove in this step (per batch row). At most `maxMergeable(N, protectedTokens)`. */
  r: number;
  /** What similarity is measured on, [batch?, N, Cm] (usually the attention keys averaged over heads). Default: x itself. */
  metric?: Tensor | DeviceTensor;
  /** How many original tokens each input token already stands for, [batch?, N] f32 (default all 1). */
  sizes?: Tensor | Float32Array | DeviceTensor;
  /** Tokens that never merge (neither as source nor destination). Default none. */
  protectedTokens?: ProtectedTokens;
  /**
   * false (default): output = unmerged A tokens (ascending index) followed by all B tokens
   * (ascending), as in the paper. true: surviving tokens stay in their original order.
   */
  keepOrder?: boolean;
  /** The source map of the previous step, so `source` / `unmerge` reach back to the original tokens. */
  source?: SourceMap;
  /** Lower r to the largest possible value instead of throwing. Default false. */
  clampR?: boolean;
}

/** Result of one merge step. `T` is the kind of the input (host Tensor or DeviceTensor). */
export interface MergeResult<T extends Tensor | DeviceTensor> {
  /** Merged tokens [batch?, N - r, C] in x's dtype and kind. */
  tokens: T;
  /** Sizes of the merged tokens [batch?, N - r] (f32): how many original tokens each holds. */
  sizes: T extends DeviceTensor ? DeviceTensor<'f32'> : Tensor<'f32'>;
  /** [batch, N]: output index of every input token of this step. */
  dest: Int32Array;
  /** Which original tokens each output holds (composed with `options.source`). */
  source: SourceMap;
  /** Tokens removed per row (r after clamping). */
  r: number;
  /** Spreads y [batch?, N - r, D] back to the original tokens [batch?, N0, D]. */
  unmerge<U extends Tensor | DeviceTensor>(y: U): U;
}

/** Parses `protectedTokens` into a 0/1 mask of n entries (or null when none). */
export function protectedMask(n: number, spec: ProtectedTokens | undefined): Uint8Array | null {
  if (spec === undefined) return null;
  const mask = new Uint8Array(n);
  if (typeof spec === 'number') {
    checkInt(spec, 'protectedTokens', 0, n);
    mask.fill(1, 0, spec);
  } else {
    check(Array.isArray(spec), `protectedTokens must be a count or an array of token indices`);
    for (const i of spec) {
      checkInt(i, 'protectedTokens[i]', 0, n - 1);
      mask[i] = 1;
    }
  }
  return mask.some((v) => v) ? mask : null;
}

/**
 * The largest r one step can remove from n tokens with these protected tokens.
 * @example
 * maxMergeable(197, 1); // the most one ToMe step can remove with a class token
 */
export function maxMergeable(n: number, protectedTokens?: ProtectedTokens): number {
  checkInt(n, 'n', 0);
  const mask = protectedMask(n, protectedTokens);
  let prot = 0;
  let freeA = 0;
  let freeB = 0;
  for (let i = 0; i < n; i++) {
    if (mask?.[i]) prot++;
    else if (i & 1) freeB++;
    else freeA++;
  }
  return freeB === 0 ? 0 : Math.min(freeA, Math.floor((n - prot) / 2));
}

/** A validated step: the native shape fields plus what the TypeScript side keeps. */
interface Plan extends Pick<NativeTomeHostArgs, 'batch' | 'n' | 'c' | 'cm' | 'r' | 'keepOrder'> {
  batched: boolean;
  protect: Uint8Array | null;
  source: SourceMap;
}

function dims(shape: readonly number[], name: string): { batched: boolean; batch: number; n: number; c: number } {
  check(shape.length === 2 || shape.length === 3, `${name} must be [N, C] or [batch, N, C], got [${shape.join(', ')}]`, 'SHAPE_MISMATCH');
  const batched = shape.length === 3;
  const batch = batched ? shape[0]! : 1;
  const n = shape[batched ? 1 : 0]!;
  const c = shape[batched ? 2 : 1]!;
  check(
    batch > 0 && n > 0 && c > 0,
    `${name} is empty (shape [${shape.join(', ')}]); merging needs at least one token and channel`,
    'SHAPE_MISMATCH',
  );
  return { batched, batch, n, c };
}

function plan(x: Tensor | DeviceTensor, o: MergeTokensOptions): Plan {
  check(o && typeof o === 'object', 'mergeTokens needs an options object with r');
  const d = dims(x.shape, 'x');
  check(FLOAT_DTYPES.includes(x.dtype as FloatDType), `x must be f32, f16 or bf16, got ${x.dtype}`, 'DTYPE_MISMATCH');
  let cm = d.c;
  if (o.metric !== undefined) {
    const m = dims(o.metric.shape, 'metric');
    check(
      m.batched === d.batched && m.batch === d.batch && m.n === d.n,
      `metric [${o.metric.shape.join(', ')}] must have the batch and token counts of x [${x.shape.join(', ')}]`,
      'SHAPE_MISMATCH',
    );
    cm = m.c;
  }
  const protect = protectedMask(d.n, o.protectedTokens);
  checkInt(o.r, 'r', 0);
  const max = maxMergeable(d.n, o.protectedTokens);
  let r = o.r;
  if (r > max) {
    if (!o.clampR) {
      throw new InferzipError(
        'INVALID_ARGUMENT',
        `r = ${r} is larger than possible: at most ${max} of ${d.n} tokens can merge in one step` +
          (protect ? ' with these protected tokens' : '') +
          ' (pass clampR: true to lower it)',
      );
    }
    r = max;
  }
  check(o.keepOrder === undefined || typeof o.keepOrder === 'boolean', 'keepOrder must be a boolean');
  const source = o.source ?? SourceMap.identity(d.batch, d.n);
  check(source instanceof SourceMap, 'source must be a SourceMap from a previous merge step');
  check(
    source.batch === d.batch && source.size === d.n,
    `source map describes ${source.batch} x ${source.size} tokens but x has ${d.batch} x ${d.n}`,
    'SHAPE_MISMATCH',
  );
  return { ...d, cm, r, keepOrder: o.keepOrder ?? false, protect, source };
}

function hostSizes(sizes: MergeTokensOptions['sizes'], p: Plan): Float32Array | null {
  if (sizes === undefined) return null;
  check(!(sizes instanceof DeviceTensor), 'sizes is a DeviceTensor but x is a host tensor: pass both on the same side');
  let s: Float32Array;
  if (sizes instanceof Float32Array) s = sizes;
  else {
    assertTensor(sizes, 'sizes', { dtypes: FLOAT_DTYPES });
    const expect = p.batched ? [p.batch, p.n] : [p.n];
    check(
      sizes.shape.length === expect.length && sizes.shape.every((v, i) => v === expect[i]),
      `sizes must be [${expect.join(', ')}], got [${sizes.shape.join(', ')}]`,
      'SHAPE_MISMATCH',
    );
    s = toFloat32(sizes);
  }
  check(s.length === p.batch * p.n, `sizes must hold ${p.batch * p.n} values (got ${s.length})`, 'SHAPE_MISMATCH');
  for (let i = 0; i < s.length; i++) {
    if (!(Number.isFinite(s[i]!) && s[i]! > 0)) throw new InferzipError('INVALID_ARGUMENT', `sizes[${i}] = ${s[i]} must be finite and > 0`);
  }
  return s;
}

function hostArgs(x: Tensor, o: MergeTokensOptions, p: Plan): NativeTomeHostArgs {
  assertTensor(x, 'x', { dtypes: FLOAT_DTYPES });
  // NaN/Inf in x or metric: the native merge rejects them (one vectorized pass) with the element index.
  const xf = toFloat32(x);
  let metric: Float32Array | undefined;
  if (o.metric !== undefined) {
    check(!(o.metric instanceof DeviceTensor), 'metric is a DeviceTensor but x is a host tensor: pass both on the same side');
    assertTensor(o.metric, 'metric', { dtypes: FLOAT_DTYPES });
    metric = toFloat32(o.metric);
  }
  return { x: xf, metric, sizes: hostSizes(o.sizes, p) ?? undefined, protect: p.protect ?? undefined, ...shapeArgs(p) };
}

function shapeArgs(p: Plan) {
  return { batch: p.batch, n: p.n, c: p.c, cm: p.cm, r: p.r, keepOrder: p.keepOrder };
}

function hostResult<T extends Tensor | DeviceTensor>(res: NativeTomeHostResult, p: Plan, dtype: FloatDType): MergeResult<T> {
  const nOut = p.n - p.r;
  const shape = p.batched ? [p.batch, nOut, p.c] : [nOut, p.c];
  // finite inputs near the f32 limit (+-3e38) overflow the weighted means: a typed error, not NaN
  checkFiniteResult(res.x, 'mergeTokens');
  const tokens = castFloat(tensor('f32', shape, res.x), dtype);
  const sizes = tensor('f32', p.batched ? [p.batch, nOut] : [nOut], res.sizes);
  return finish<T>(tokens as T, sizes as MergeResult<T>['sizes'], res.dest, p);
}

function finish<T extends Tensor | DeviceTensor>(tokens: T, sizes: MergeResult<T>['sizes'], dest: Int32Array, p: Plan): MergeResult<T> {
  const source = p.source.then(dest, p.n - p.r);
  return { tokens, sizes, dest, source, r: p.r, unmerge: (y) => source.unmerge(y) };
}

function deviceArgs(x: DeviceTensor, o: MergeTokensOptions, p: Plan): NativeTomeDeviceArgs {
  let metric;
  if (o.metric !== undefined) {
    check(o.metric instanceof DeviceTensor, 'x is a DeviceTensor, so metric must be one too');
    check(o.metric.dtype === x.dtype, `metric dtype ${o.metric.dtype} must match x (${x.dtype})`, 'DTYPE_MISMATCH');
    metric = o.metric.buffer;
  }
  let sizes;
  if (o.sizes !== undefined) {
    check(o.sizes instanceof DeviceTensor, 'x is a DeviceTensor, so sizes must be one too (f32)');
    check(o.sizes.dtype === 'f32', `sizes must be f32, got ${o.sizes.dtype}`, 'DTYPE_MISMATCH');
    check(
      o.sizes.size === p.batch * p.n,
      `sizes must hold ${p.batch * p.n} values (shape [${o.sizes.shape.join(', ')}])`,
      'SHAPE_MISMATCH',
    );
    sizes = o.sizes.buffer;
  }
  // The step runs on x's device; the other tensors must be there too.
  sameDevice('mergeTokens', {
    x,
    metric: o.metric as DeviceTensor | undefined,
    sizes: o.sizes as DeviceTensor | undefined,
  });
  return { x: x.buffer, metric, sizes, protect: p.protect ?? undefined, ...shapeArgs(p), dtype: x.dtype };
}

function deviceResult<T extends Tensor | DeviceTensor>(x: DeviceTensor, res: NativeTomeDeviceResult, p: Plan): MergeResult<T> {
  const nOut = p.n - p.r;
  const tokens = new DeviceTensor(x.dtype, p.batched ? [p.batch, nOut, p.c] : [nOut, p.c], res.x);
  const sizes = new DeviceTensor('f32', p.batched ? [p.batch, nOut] : [nOut], res.sizes);
  const destT = new DeviceTensor('i32', [p.batch * p.n], res.dest);
  const dest = destT.downloadSync().data;
  destT.dispose();
  return finish<T>(tokens as T, sizes as MergeResult<T>['sizes'], dest, p);
}

type MergeCall =
  | { p: Plan; device: DeviceTensor; args: NativeTomeDeviceArgs }
  | { p: Plan; device?: undefined; args: NativeTomeHostArgs; dtype: FloatDType };

const mergeOp = defineOp({
  name: 'mergeTokens',
  prepare(x: Tensor | DeviceTensor, options: MergeTokensOptions): MergeCall {
    const p = plan(x, options);
    if (x instanceof DeviceTensor) return { p, device: x, args: deviceArgs(x, options, p) };
    return { p, args: hostArgs(x, options, p), dtype: x.dtype as FloatDType };
  },
  sync: (m) => (m.device ? native().tokensTomeMergeDevice(m.args) : native().tokensTomeMerge(m.args)),
  async: (m): Promise<NativeTomeHostResult | NativeTomeDeviceResult> =>
    m.device ? native().tokensTomeMergeDeviceAsync(m.args) : native().tokensTomeMergeAsync(m.args),
  finish: (res, m) =>
    m.device ? deviceResult(m.device, res as NativeTomeDeviceResult, m.p) : hostResult(res as NativeTomeHostResult, m.p, m.dtype),
});

/**
 * One ToMe merge step on x [batch?, N, C] (f32/f16/bf16 host tensor or DeviceTensor),
 * off the main thread. Returns N - r tokens per row with their sizes and source map.
 * @example
 * const step = await mergeTokens(x, { r: 16, protectedTokens: 1 });
 * const bias = attentionBias(step.sizes); // add to attention logits
 */
export function mergeTokens<T extends Tensor | DeviceTensor>(x: T, options: MergeTokensOptions): Promise<MergeResult<T>> {
  return mergeOp.run(x, options) as Promise<MergeResult<T>>;
}

/**
 * Synchronous {@link mergeTokens} (blocks the event loop for the native work).
 * @example
 * const step = mergeTokensSync(x, { r: 16, protectedTokens: 1 });
 */
export function mergeTokensSync<T extends Tensor | DeviceTensor>(x: T, options: MergeTokensOptions): MergeResult<T> {
  return mergeOp.runSync(x, options) as MergeResult<T>;
}

/**
 * Proportional attention term: log(sizes), to add to the attention logits of the keys so
 * a merged token weighs as much as the tokens it replaced.
 * @example
 * const step = await mergeTokens(x, { r: 16 });
 * const bias = attentionBias(step.sizes); // add to the attention logits
 */
export function attentionBias(sizes: Tensor | Float32Array): Tensor<'f32'> {
  let values: Float32Array;
  let shape: readonly number[];
  if (sizes instanceof Float32Array) {
    values = sizes;
    shape = [sizes.length];
  } else {
    assertTensor(sizes, 'sizes', { dtypes: FLOAT_DTYPES });
    values = toFloat32(sizes);
    shape = sizes.shape;
  }
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const s = values[i]!;
    if (!(Number.isFinite(s) && s > 0)) throw new InferzipError('INVALID_ARGUMENT', `sizes[${i}] = ${s} must be finite and > 0`);
    out[i] = Math.log(s);
  }
  return tensor('f32', shape, out);
}

/** Per-layer r: a constant, or a linear ramp around r (`inflection` in [-1, 1]; > 0 merges more early). */
export type MergeScheduleSpec = number | { r: number; inflection?: number };

/**
 * r for each of `layers` layers. With `inflection` i, r goes linearly from r * (1 + i) at the
 * first layer to r * (1 - i) at the last (rounded, keeping the total layers * r).
 * Pass `tokens` (and `protectedTokens`) to cap each layer's r to what that layer can remove.
 * @example
 * const rs = mergeSchedule(12, { r: 16 }); // tokens to remove in each of 12 layers
 */
export function mergeSchedule(
  layers: number,
  spec: MergeScheduleSpec,
  cap: { tokens?: number; protectedTokens?: ProtectedTokens } = {},
): number[] {
  checkInt(layers, 'layers', 1, 100_000);
  const r = typeof spec === 'number' ? spec : spec?.r;
  checkInt(r, 'r', 0);
  const inflection = typeof spec === 'number' ? 0 : (spec.inflection ?? 0);
  check(
    typeof inflection === 'number' && Number.isFinite(inflection) && inflection >= -1 && inflection <= 1,
    `inflection must be a number in [-1, 1] (got ${String(inflection)})`,
  );
  const out: number[] = [];
  let carried = 0;
  for (let l = 0; l < layers; l++) {
    const t = layers === 1 ? 0.5 : l / (layers - 1);
    const ideal = r! * (1 + inflection * (1 - 2 * t)) + carried;
    const v = Math.max(0, Math.round(ideal));
    carried = ideal - v;
    out.push(v);
  }
  if (cap.tokens !== undefined) {
    let n = checkInt(cap.tokens, 'tokens', 0);
    for (let l = 0; l < layers; l++) {
      out[l] = Math.min(out[l]!, maxMergeable(n, cap.protectedTokens));
      n -= out[l]!;
    }
  }
  return out;
}

/**
 * Token counts entering each layer and after the last one (length layers + 1) for a schedule.
 * @example
 * const counts = scheduleTokens(197, mergeSchedule(12, { r: 16 })); // tokens left after each layer
 */
export function scheduleTokens(tokens: number, schedule: readonly number[]): number[] {
  let n = checkInt(tokens, 'tokens', 0);
  const out = [n];
  for (const r of schedule) {
    checkInt(r, 'schedule[i]', 0, n);
    n -= r;
    out.push(n);
  }
  return out;
}
