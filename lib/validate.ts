/**
 * The one validation module: every user-facing argument check goes through these helpers, so
 * errors read the same everywhere: what is wrong, which argument, what was given, how to fix.
 * Limits the native layer enforces come from lib/limits.ts (exported once by the addon).
 * @internal
 */
import { DeviceTensor } from './device-tensor.js';
import { InferzipError, check } from './errors.js';
import { limits } from './limits.js';
import { assertTensor, toFloat32, type Tensor } from './tensor.js';

export const FLOAT_DTYPES = ['f32', 'f16', 'bf16'] as const;
export type FloatDType = (typeof FLOAT_DTYPES)[number];

/** Checks an integer option in [min, max]. */
export function checkInt(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  check(
    typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max,
    `${name} must be an integer in [${min}, ${max === Number.MAX_SAFE_INTEGER ? '∞' : max}] (got ${String(value)})`,
  );
  return value as number;
}

/** Checks a finite number in [min, max] (open at the ends when asked). */
export function checkNumber(
  value: unknown,
  name: string,
  min: number,
  max: number,
  opts: { openMin?: boolean; openMax?: boolean } = {},
): number {
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (opts.openMin ? value > min : value >= min) &&
    (opts.openMax ? value < max : value <= max);
  check(ok, `${name} must be a number in ${opts.openMin ? '(' : '['}${min}, ${max}${opts.openMax ? ')' : ']'} (got ${String(value)})`);
  return value as number;
}

/**
 * Checks a CPU thread count: undefined (the default: every core), 0 (every core) or
 * 1..maxThreads. The one home of this rule and its message.
 */
export function checkThreads(threads: unknown, name = 'threads'): number | undefined {
  if (threads === undefined) return undefined;
  const max = limits().maxThreads;
  check(
    typeof threads === 'number' && Number.isInteger(threads) && threads >= 0 && threads <= max,
    `${name} must be an integer in [0, ${max}] (0 = all cores), got ${String(threads)}`,
  );
  return threads as number;
}

/** The first index of a non-finite value, or -1. */
export function firstNonFinite(values: ArrayLike<number>): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return i;
  return -1;
}

/** Throws INVALID_ARGUMENT naming the element when `values` holds NaN or Inf. */
export function checkFinite(values: ArrayLike<number>, name: string): void {
  const bad = firstNonFinite(values);
  if (bad >= 0)
    throw new InferzipError(
      'INVALID_ARGUMENT',
      `${name} holds a non-finite value (${values[bad]}) at element ${bad}; clean the input first`,
    );
}

/** A float host tensor of one of the given ranks, as f32 values (NaN/Inf rejected). */
export function floatTensor(value: unknown, name: string, ranks: readonly number[]): { t: Tensor; f32: Float32Array } {
  assertTensor(value, name, { dtypes: FLOAT_DTYPES, rank: ranks });
  const f32 = toFloat32(value);
  checkFinite(f32, name);
  return { t: value, f32 };
}

/**
 * Rejects a DeviceTensor where these host-memory passes need a host Tensor: DISPOSED when
 * it was disposed, else INVALID_ARGUMENT with the way out.
 */
export function rejectDeviceTensor(value: unknown, name: string): void {
  if (!(value instanceof DeviceTensor)) return;
  if (value.disposed) throw new InferzipError('DISPOSED', `${name} is a disposed DeviceTensor`);
  throw new InferzipError('INVALID_ARGUMENT', `${name} is a DeviceTensor; this pass runs on host memory: pass await ${name}.download()`);
}

/** A half-open range [start, end) inside [0, n] (default: all of it). */
export function checkSpan(span: readonly [number, number] | undefined, n: number): [number, number] {
  if (span === undefined) return [0, n];
  check(Array.isArray(span) && span.length === 2, 'span must be [start, end)');
  const start = checkInt(span[0], 'span[0]', 0, n);
  const end = checkInt(span[1], 'span[1]', start, n);
  return [start, end];
}

/**
 * Largest magnitude a quantized KV cache accepts, by scheme. The integer schemes (kivi, vidkv,
 * zipcache) store each group's scale and minimum as f16 (max 65504): beyond 2^15 or so those
 * overflowed and the cache silently held NaN (vidkv from 2^14.9). fp8 keeps f32 scales: there the
 * limit is the f32 range with a margin for max - min. Larger values are rejected, not saturated.
 */
export function kvMaxAbs(scheme: string): number {
  return scheme === 'fp8' ? 2 ** 126 : 2 ** 14;
}

/** Throws INVALID_ARGUMENT naming the element when |x| > `max` (for finite inputs near the f32 limit). */
export function checkMagnitude(values: ArrayLike<number>, name: string, max: number): void {
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    if (x > max || x < -max)
      throw new InferzipError(
        'INVALID_ARGUMENT',
        `${name} holds ${x} at element ${i}, beyond the ${max.toExponential(2)} magnitude this operation keeps finite in f32; scale the input down`,
      );
  }
}

/**
 * Throws INVALID_ARGUMENT when a result computed from finite inputs is not finite: the
 * arithmetic overflowed f32 (e.g. attention logits of huge keys or scales). Callers get a typed
 * error instead of NaN.
 */
export function checkFiniteResult(values: ArrayLike<number>, what: string): void {
  const bad = firstNonFinite(values);
  if (bad >= 0)
    throw new InferzipError(
      'INVALID_ARGUMENT',
      `${what} overflowed f32 (element ${bad} is ${values[bad]}) although the inputs are finite; scale the inputs (or the scale option) down`,
    );
}
