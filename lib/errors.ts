/**
 * The one error class inferzip throws. `code` is stable across releases: match on it,
 * not on the message.
 */
export type InferzipErrorCode =
  | 'INVALID_ARGUMENT'
  | 'SHAPE_MISMATCH'
  | 'DTYPE_MISMATCH'
  | 'DISPOSED'
  | 'OUT_OF_MEMORY'
  | 'CORRUPT_DATA'
  | 'NOT_COMPRESSED'
  | 'IO_ERROR'
  | 'NO_DEVICE'
  | 'DEVICE_MISMATCH'
  | 'UNSUPPORTED'
  | 'BUSY'
  | 'ABORTED'
  | 'NATIVE_LOAD_FAILED'
  | 'INTERNAL';

const CODES: ReadonlySet<string> = new Set<InferzipErrorCode>([
  'INVALID_ARGUMENT',
  'SHAPE_MISMATCH',
  'DTYPE_MISMATCH',
  'DISPOSED',
  'OUT_OF_MEMORY',
  'CORRUPT_DATA',
  'NOT_COMPRESSED',
  'IO_ERROR',
  'NO_DEVICE',
  'DEVICE_MISMATCH',
  'UNSUPPORTED',
  'BUSY',
  'ABORTED',
  'NATIVE_LOAD_FAILED',
  'INTERNAL',
]);

/**
 * The one error class inferzip throws; match on `code`, which is stable across releases.
 * @example
 * try {
 *   await decompress(unit);
 * } catch (err) {
 *   if (err instanceof InferzipError && err.code === 'CORRUPT_DATA') console.error(err.message);
 * }
 */
export class InferzipError extends Error {
  override readonly name = 'InferzipError';
  readonly code: InferzipErrorCode;

  constructor(code: InferzipErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** Turns anything thrown by the addon or Node into an InferzipError (keeping the cause). */
export function toInferzipError(err: unknown, context?: string): InferzipError {
  if (err instanceof InferzipError) return err;
  const prefix = context ? `${context}: ` : '';
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && CODES.has(code)) {
      return new InferzipError(code as InferzipErrorCode, prefix + err.message, { cause: err });
    }
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
      return new InferzipError('IO_ERROR', prefix + err.message, { cause: err });
    }
    if (err.name === 'AbortError') return new InferzipError('ABORTED', prefix + err.message, { cause: err });
    if (err instanceof RangeError && /allocat|memory|array length|buffer length/i.test(err.message)) {
      return new InferzipError('OUT_OF_MEMORY', prefix + err.message, { cause: err });
    }
    return new InferzipError('INTERNAL', prefix + err.message, { cause: err });
  }
  return new InferzipError('INTERNAL', prefix + String(err));
}

/** Runs a synchronous native call, rethrowing its errors as InferzipError. */
export function nativeCall<T>(fn: () => T, context?: string): T {
  try {
    return fn();
  } catch (err) {
    throw toInferzipError(err, context);
  }
}

/** Awaits a native promise, rejecting with InferzipError. */
export async function nativeAwait<T>(promise: Promise<T> | (() => Promise<T>), context?: string): Promise<T> {
  try {
    return await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    throw toInferzipError(err, context);
  }
}

/** Throws INVALID_ARGUMENT (or the given code) unless `cond` holds. */
export function check(cond: unknown, message: string, code: InferzipErrorCode = 'INVALID_ARGUMENT'): asserts cond {
  if (!cond) throw new InferzipError(code, message);
}
