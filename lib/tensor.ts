/**
 * Host tensors: `{ dtype, shape, data }` with a typed array per dtype (bf16 and f16
 * travel as raw bits in a Uint16Array), f32 <-> bf16/f16 conversion with
 * round-to-nearest-even, and ndarray interop.
 */
import ndarray from 'ndarray';

import { InferzipError, check } from './errors.js';

export type DType = 'bf16' | 'f16' | 'f32' | 'u8' | 'i8' | 'i32' | 'u32' | 'i64';

export interface DTypeArrayMap {
  bf16: Uint16Array;
  f16: Uint16Array;
  f32: Float32Array;
  u8: Uint8Array;
  i8: Int8Array;
  i32: Int32Array;
  u32: Uint32Array;
  i64: BigInt64Array;
}
export type TypedArrayFor<D extends DType> = DTypeArrayMap[D];

export interface Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: TypedArrayFor<D>;
}

/**
 * Every element type a Tensor can hold.
 * @example
 * DTYPES.includes('bf16'); // true
 */
export const DTYPES: readonly DType[] = ['bf16', 'f16', 'f32', 'u8', 'i8', 'i32', 'u32', 'i64'];

const ELEMENT_SIZE: Record<DType, number> = { bf16: 2, f16: 2, f32: 4, u8: 1, i8: 1, i32: 4, u32: 4, i64: 8 };

/**
 * Bytes per element of a dtype.
 * @example
 * elementSize('bf16'); // 2
 */
export function elementSize(dtype: DType): number {
  return ELEMENT_SIZE[dtype];
}

/**
 * True when `value` names a Tensor element type.
 * @example
 * isDType('bf16'); // true
 */
export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && (DTYPES as readonly string[]).includes(value);
}

/**
 * Number of elements of a shape (1 for a scalar shape []). Validates the dims.
 * @example
 * shapeSize([2, 3]); // 6
 */
export function shapeSize(shape: readonly number[]): number {
  check(Array.isArray(shape), `shape must be an array of non-negative integers`, 'SHAPE_MISMATCH');
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new InferzipError(
        'SHAPE_MISMATCH',
        `shape [${shape.join(', ')}] has an invalid dimension ${String(d)}: dimensions are non-negative integers`,
      );
    }
    n *= d;
  }
  check(Number.isSafeInteger(n), `shape [${shape.join(', ')}] has too many elements`, 'SHAPE_MISMATCH');
  return n;
}

const CTOR = {
  bf16: Uint16Array,
  f16: Uint16Array,
  f32: Float32Array,
  u8: Uint8Array,
  i8: Int8Array,
  i32: Int32Array,
  u32: Uint32Array,
  i64: BigInt64Array,
} as const;

/** Allocates a zero-filled typed array for `n` elements of `dtype`. */
export function allocArray<D extends DType>(dtype: D, n: number): TypedArrayFor<D> {
  try {
    return new CTOR[dtype](n) as TypedArrayFor<D>;
  } catch (err) {
    // RangeError: over the engine's typed-array limit (2^32 or 2^53 elements by version) or no memory
    throw new InferzipError(
      'OUT_OF_MEMORY',
      `cannot allocate ${n} ${dtype} elements (${n * ELEMENT_SIZE[dtype]} bytes): ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** A typed array of `dtype` viewing `bytes` (copies when unaligned). */
export function viewBytes<D extends DType>(dtype: D, bytes: Uint8Array): TypedArrayFor<D> {
  const size = ELEMENT_SIZE[dtype];
  check(bytes.byteLength % size === 0, `${bytes.byteLength} bytes is not a whole number of ${dtype} elements`, 'SHAPE_MISMATCH');
  const src = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  return new CTOR[dtype](src.buffer as ArrayBuffer, src.byteOffset, src.byteLength / size) as TypedArrayFor<D>;
}

/** The bytes of a tensor's data (a view, no copy). */
export function tensorBytes(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

function arrayMatches(dtype: DType, data: unknown): boolean {
  if (dtype === 'bf16' || dtype === 'f16') return data instanceof Uint16Array;
  return data instanceof CTOR[dtype];
}

/**
 * Makes a tensor, checking that `data` has the dtype's array type and `shape`'s size.
 * Without `data`, allocates zeros.
 * @example const t = tensor('f32', [2, 3], new Float32Array(6));
 */
export function tensor<D extends DType>(dtype: D, shape: readonly number[], data?: TypedArrayFor<D>): Tensor<D> {
  check(isDType(dtype), `unknown dtype '${String(dtype)}'; use one of ${DTYPES.join(', ')}`, 'DTYPE_MISMATCH');
  const n = shapeSize(shape);
  const arr = data ?? allocArray(dtype, n);
  if (!arrayMatches(dtype, arr)) {
    throw new InferzipError(
      'DTYPE_MISMATCH',
      `dtype ${dtype} needs a ${CTOR[dtype].name}, got ${(arr as object)?.constructor?.name ?? typeof arr}`,
    );
  }
  if (arr.length !== n) {
    throw new InferzipError('SHAPE_MISMATCH', `shape [${shape.join(', ')}] holds ${n} elements but data has ${arr.length}`);
  }
  return { dtype, shape: Object.freeze([...shape]), data: arr };
}

/** Checks that `value` is a well-formed tensor (optionally of given dtypes and rank). */
export function assertTensor(
  value: unknown,
  name: string,
  opts: { dtypes?: readonly DType[]; rank?: readonly number[] } = {},
): asserts value is Tensor {
  const t = value as Tensor;
  check(t && typeof t === 'object' && 'dtype' in t && 'shape' in t && 'data' in t, `${name} must be a tensor { dtype, shape, data }`);
  check(isDType(t.dtype), `${name}.dtype '${String(t.dtype)}' is not a dtype (${DTYPES.join(', ')})`, 'DTYPE_MISMATCH');
  const n = shapeSize(t.shape);
  check(arrayMatches(t.dtype, t.data), `${name}: dtype ${t.dtype} needs a ${CTOR[t.dtype].name}`, 'DTYPE_MISMATCH');
  check(t.data.length === n, `${name}: shape [${t.shape.join(', ')}] holds ${n} elements but data has ${t.data.length}`, 'SHAPE_MISMATCH');
  if (opts.dtypes && !opts.dtypes.includes(t.dtype)) {
    throw new InferzipError('DTYPE_MISMATCH', `${name} must be ${opts.dtypes.join(' or ')}, got ${t.dtype}`);
  }
  if (opts.rank && !opts.rank.includes(t.shape.length)) {
    throw new InferzipError('SHAPE_MISMATCH', `${name} must have ${opts.rank.join(' or ')} dimensions, got shape [${t.shape.join(', ')}]`);
  }
}

// ---------------------------------------------------------------------------
// Float conversions (round to nearest, ties to even; NaN stays NaN, sign kept)

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/**
 * bf16 bits of one f32 value.
 * @example
 * f32ToBf16Bits(1); // 0x3f80
 */
export function f32ToBf16Bits(x: number): number {
  f32buf[0] = x;
  const b = u32buf[0]!;
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x0040) & 0xffff; // NaN: keep sign, force quiet
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * f32 value of bf16 bits (exact).
 * @example
 * bf16BitsToF32(0x3f80); // 1
 */
export function bf16BitsToF32(bits: number): number {
  u32buf[0] = (bits & 0xffff) << 16;
  return f32buf[0]!;
}

/**
 * f16 bits of one f32 value.
 * @example
 * f32ToF16Bits(1); // 0x3c00
 */
export function f32ToF16Bits(x: number): number {
  f32buf[0] = x;
  const b = u32buf[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> Inf
  if (e <= 0) {
    // subnormal f16 (or zero): shift the implicit-1 mantissa into place, round half to even
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let out = mant >>> shift;
    if (rest > half || (rest === half && out & 1)) out += 1;
    return sign | out;
  }
  let out = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && out & 1)) out += 1; // may carry into the exponent: correct
  return sign | out;
}

/**
 * f32 value of f16 bits (exact).
 * @example
 * f16BitsToF32(0x3c00); // 1
 */
export function f16BitsToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * Converts f32 values to bf16 bits (round to nearest even).
 * @example
 * const w = tensor('bf16', [2], f32ToBf16(new Float32Array([0.5, -1.25])));
 */
export function f32ToBf16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const b = bits[i]!;
    out[i] = (b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x40 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
  }
  return out;
}

/**
 * Expands bf16 bits to f32 (exact).
 * @example
 * const f = bf16ToF32(new Uint16Array([0x3f80, 0xc000])); // [1, -2]
 */
export function bf16ToF32(src: Uint16Array): Float32Array {
  const bits = new Uint32Array(src.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return new Float32Array(bits.buffer);
}

/**
 * Converts f32 values to f16 bits (round to nearest even).
 * @example
 * const h = f32ToF16(new Float32Array([1, 0.5]));
 */
export function f32ToF16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i]!);
  return out;
}

/**
 * Expands f16 bits to f32 (exact).
 * @example
 * const f = f16ToF32(new Uint16Array([0x3c00])); // [1]
 */
export function f16ToF32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f16BitsToF32(src[i]!);
  return out;
}

/**
 * Any float tensor as f32 values (copy for bf16/f16, same array for f32).
 * @example
 * const values = toFloat32(bf16Tensor); // Float32Array
 */
export function toFloat32(t: Tensor): Float32Array {
  if (t.dtype === 'f32') return t.data as Float32Array;
  if (t.dtype === 'bf16') return bf16ToF32(t.data as Uint16Array);
  if (t.dtype === 'f16') return f16ToF32(t.data as Uint16Array);
  throw new InferzipError('DTYPE_MISMATCH', `expected a float tensor (f32, f16, bf16), got ${t.dtype}`);
}

/**
 * Converts a float tensor to another float dtype.
 * @example
 * const half = castFloat(t, 'f16');
 */
export function castFloat<D extends 'f32' | 'f16' | 'bf16'>(t: Tensor, dtype: D): Tensor<D> {
  if (t.dtype === dtype) return t as Tensor<D>;
  const f = toFloat32(t);
  const data = dtype === 'f32' ? f : dtype === 'bf16' ? f32ToBf16(f) : f32ToF16(f);
  return tensor(dtype, t.shape, data as TypedArrayFor<D>);
}

// ---------------------------------------------------------------------------
// ndarray interop

/** Anything shaped like an ndarray (scijs). */
export interface NdArrayLike {
  data: ArrayLike<number> | ArrayLike<bigint>;
  shape: number[];
  stride: number[];
  offset: number;
  get(...indices: number[]): number;
}

function isNdArray(value: unknown): value is NdArrayLike {
  const v = value as NdArrayLike;
  return !!v && typeof v === 'object' && Array.isArray(v.shape) && Array.isArray(v.stride) && typeof v.offset === 'number' && 'data' in v;
}

function dtypeOfArray(data: unknown): DType | undefined {
  if (data instanceof Float32Array) return 'f32';
  if (data instanceof Uint8Array) return 'u8';
  if (data instanceof Int8Array) return 'i8';
  if (data instanceof Int32Array) return 'i32';
  if (data instanceof Uint32Array) return 'u32';
  if (data instanceof BigInt64Array) return 'i64';
  if (data instanceof Uint16Array) return 'bf16';
  return undefined;
}

/**
 * Accepts a tensor or an ndarray (any strides; a Uint16Array ndarray is read as `dtype`,
 * default bf16) and returns a contiguous tensor.
 * @example
 * const t = fromNdarray(ndarray(new Float32Array(6), [2, 3]));
 */
export function fromNdarray(value: NdArrayLike | Tensor, dtype?: DType): Tensor {
  if (!isNdArray(value)) {
    assertTensor(value, 'tensor');
    return value;
  }
  const inferred = dtype ?? dtypeOfArray(value.data);
  check(inferred, `cannot infer a dtype for an ndarray over ${(value.data as object)?.constructor?.name}; pass one`, 'DTYPE_MISMATCH');
  const shape = value.shape;
  const n = shapeSize(shape);
  const out = allocArray(inferred, n) as unknown as { [i: number]: number | bigint };
  const src = value.data as unknown as { [i: number]: number | bigint };
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < n; i++) {
    let off = value.offset;
    for (let d = 0; d < shape.length; d++) off += idx[d]! * value.stride[d]!;
    out[i] = src[off]!;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) break;
      idx[d] = 0;
    }
  }
  return tensor(inferred, shape, out as unknown as TypedArrayFor<DType>);
}

/**
 * A row-major ndarray viewing the tensor's data (no copy).
 * @example
 * const arr = toNdarray(t); // an ndarray view of the tensor's data
 */
export function toNdarray(t: Tensor): ndarray.NdArray {
  return ndarray(t.data as unknown as ndarray.Data<number>, [...t.shape]);
}
