/** compress / decompress: BF16 tensors <-> one DFloat11 unit, on the native encoder and decoders. */
import { DeviceTensor } from '../device-tensor.js';
import { check, nativeCall } from '../errors.js';
import { defineOp, runPinned } from '../ops.js';
import { checkInt, checkThreads } from '../validate.js';
import { native, type NativeBuffer } from '../native.js';
import { assertTensor, tensor, type Tensor } from '../tensor.js';
import type { NativeEncodeArgs, NativeEncodedUnit, NativeUnitParts } from './native.js';
import './native.js';
import type { CompressedUnit, UnitBuffers, UnitSlice, UnitStats } from './unit.js';
import { unitBufferBytes } from './unit-buffers.js';

/** Tensors to compress: by name (insertion order kept) or as [name, tensor] pairs. */
export type TensorsInput = Readonly<Record<string, Tensor>> | readonly (readonly [string, Tensor])[];

export interface CompressOptions {
  /** CPU threads for the encoder (default: all cores, see setThreads). */
  threads?: number;
  /** Longest Huffman code in bits, 8..32 (default 32; lowered automatically when the tables would not fit). */
  maxCodeLength?: number;
}

export interface DecompressOptions {
  /**
   * Where to decode: a Uint16Array of `unit.totalElements` (BF16 bits), or a bf16 DeviceTensor of
   * that size (CUDA memory runs the GPU kernel). Default: a new Uint16Array.
   */
  out?: Uint16Array | DeviceTensor;
  /** CPU threads for the decoder (default: all cores). */
  threads?: number;
}

function toPairs(tensors: TensorsInput): [string, Tensor<'bf16'>][] {
  check(tensors !== null && typeof tensors === 'object', 'tensors must be a record of name -> tensor or an array of [name, tensor] pairs');
  const pairs = Array.isArray(tensors)
    ? (tensors as readonly (readonly [string, Tensor])[])
    : Object.entries(tensors as Record<string, Tensor>);
  const seen = new Set<string>();
  return pairs.map((p, i) => {
    check(Array.isArray(p) && p.length === 2, `tensors[${i}] must be a [name, tensor] pair`);
    const [name, t] = p;
    check(typeof name === 'string' && name.length > 0, `tensors[${i}] needs a non-empty name`);
    check(!seen.has(name), `tensor name '${name}' appears twice`);
    seen.add(name);
    assertTensor(t, `tensor '${name}'`, { dtypes: ['bf16'] });
    return [name, t as Tensor<'bf16'>];
  });
}

function checkCompressOptions(o: CompressOptions): void {
  check(o !== null && typeof o === 'object', 'options must be an object');
  checkThreads(o.threads);
  if (o.maxCodeLength !== undefined) checkInt(o.maxCodeLength, 'maxCodeLength', 8, 32);
}

function buildUnit(pairs: [string, Tensor<'bf16'>][], r: NativeEncodedUnit): CompressedUnit {
  const rawSet = new Set(r.rawInputs);
  const raw: Record<string, Tensor<'bf16'>> = {};
  const offsets = new Map<number, number>();
  let pos = 0;
  for (const i of r.encodedInputs) {
    offsets.set(i, pos);
    pos += pairs[i]![1].data.length;
  }
  for (const i of r.rawInputs) {
    offsets.set(i, pos);
    pos += pairs[i]![1].data.length;
    raw[pairs[i]![0]] = pairs[i]![1];
  }
  const slices: UnitSlice[] = pairs.map(([name, t], i) => ({
    name,
    shape: Object.freeze([...t.shape]),
    offset: offsets.get(i)!,
    length: t.data.length,
    raw: rawSet.has(i),
  }));
  const buffers = unitBuffersOf(r);
  const h = r.nElements > 0 ? r.entropyBits / r.nElements : 0;
  return makeUnit(buffers, slices, raw, { exponentEntropy: h, maxCodeLength: r.maxCodeLength, tables: r.nTables, codeBits: r.codeBits });
}

/** The six DFloat11 buffers of an encoder result. */
export function unitBuffersOf(r: NativeEncodedUnit): UnitBuffers {
  const { encodedExponent, signMantissa, luts, outputPositions, gaps, splitPositions } = r;
  return { encodedExponent, signMantissa, luts, outputPositions, gaps, splitPositions };
}

/** Code length of each exponent (the last row of luts). */
function codeLengths(luts: Uint8Array): Uint8Array {
  return luts.subarray(luts.byteLength - 256);
}

/** Assembles a unit and its statistics (code facts come from the encoder, or are recomputed). */
export function makeUnit(
  buffers: UnitBuffers,
  slices: readonly UnitSlice[],
  raw: Record<string, Tensor<'bf16'>>,
  facts?: { exponentEntropy: number; maxCodeLength: number; tables: number; codeBits: number },
): CompressedUnit {
  const encodedElements = buffers.signMantissa.byteLength;
  let rawElements = 0;
  for (const s of slices) if (s.raw) rawElements += s.length;
  const lengths = buffers.luts.byteLength >= 512 ? codeLengths(buffers.luts) : new Uint8Array(256);
  let maxLen = 0;
  for (const l of lengths) maxLen = Math.max(maxLen, l);
  const f = facts ?? { exponentEntropy: NaN, maxCodeLength: maxLen, tables: Math.max(0, buffers.luts.byteLength / 256 - 1), codeBits: NaN };
  const n = encodedElements;
  const compressedBytes = unitBufferBytes(buffers);
  const stats: UnitStats = {
    encodedElements: n,
    rawElements,
    exponentEntropy: f.exponentEntropy,
    entropyBound: 8 + f.exponentEntropy,
    payloadBitsPerWeight: n > 0 ? (Number.isFinite(f.codeBits) ? f.codeBits : buffers.encodedExponent.byteLength * 8) / n + 8 : 0,
    bitsPerWeight: n > 0 ? (compressedBytes * 8) / n : 0,
    compressedBytes,
    originalBytes: n * 2,
    maxCodeLength: f.maxCodeLength,
    tables: f.tables,
    rawTensors: slices.filter((s) => s.raw).map((s) => s.name),
  };
  return Object.freeze({
    format: 'dfloat11' as const,
    buffers,
    slices: Object.freeze([...slices]),
    raw: Object.freeze(raw),
    encodedElements,
    totalElements: encodedElements + rawElements,
    stats: Object.freeze(stats),
  });
}

/**
 * Encodes BF16 bit arrays (concatenated in order) into one unit's buffers: the one encoder
 * call that compress and lib/model's encodeUnit share.
 * @internal
 */
export const encodeOp = defineOp({
  name: 'df11 encode',
  prepare: (args: NativeEncodeArgs) => args,
  sync: (a) => native().df11Encode(a),
  async: (a) => native().df11EncodeAsync(a),
  finish: (r: NativeEncodedUnit) => r,
});

const compressOp = defineOp({
  name: 'df11.compress',
  prepare(tensors: TensorsInput, options: CompressOptions = {}) {
    checkCompressOptions(options);
    const pairs = toPairs(tensors);
    return { pairs, args: { tensors: pairs.map((p) => p[1].data), threads: options.threads, maxCodeLength: options.maxCodeLength } };
  },
  sync: (c) => encodeOp.runSync(c.args),
  async: (c) => encodeOp.run(c.args),
  finish: (r, c) => buildUnit(c.pairs, r),
});

/**
 * Compresses BF16 tensors losslessly into one DFloat11 unit (one shared code, tensors
 * concatenated in order) off the main thread: the unit that {@link decompress} reads back
 * bit for bit. Tensors holding an exponent >= 240 (|x| >= 2^113, Inf, NaN) cannot be coded:
 * they are kept verbatim in `unit.raw`.
 * @example
 * const unit = await compress({ 'q.weight': q, 'k.weight': k });
 * console.log(unit.stats.bitsPerWeight); // about 11
 */
export function compress(tensors: TensorsInput, options: CompressOptions = {}): Promise<CompressedUnit> {
  return compressOp.run(tensors, options);
}

/**
 * Synchronous {@link compress} (blocks the event loop; prefer compress).
 * @example
 * const unit = compressSync({ w }, { threads: 1 });
 */
export function compressSync(tensors: TensorsInput, options: CompressOptions = {}): CompressedUnit {
  return compressOp.runSync(tensors, options);
}

function assertUnit(unit: CompressedUnit): void {
  check(
    unit && typeof unit === 'object' && unit.format === 'dfloat11' && unit.buffers && Array.isArray(unit.slices),
    'unit must be a CompressedUnit (from compress or unitFromSafetensorsEntries)',
  );
  const b = unit.buffers;
  for (const k of ['encodedExponent', 'signMantissa', 'luts', 'outputPositions', 'gaps'] as const) {
    check(b[k] instanceof Uint8Array, `unit.buffers.${k} must be a Uint8Array`, 'CORRUPT_DATA');
  }
}

/** The five buffers the native decoders read, from a unit's buffers (lib/df11 and lib/model). */
export function nativeUnitParts(b: UnitBuffers): NativeUnitParts {
  return {
    luts: b.luts,
    encodedExponent: b.encodedExponent,
    signMantissa: b.signMantissa,
    outputPositions: b.outputPositions,
    gaps: b.gaps,
  };
}

function prepareOut(unit: CompressedUnit, out: Uint16Array | undefined): Uint16Array {
  if (out === undefined) return new Uint16Array(unit.totalElements);
  check(out instanceof Uint16Array, `out must be a Uint16Array (BF16 bits) or a DeviceTensor`, 'DTYPE_MISMATCH');
  check(
    out.length === unit.totalElements,
    `out holds ${out.length} elements but the unit decodes to ${unit.totalElements}`,
    'SHAPE_MISMATCH',
  );
  return out;
}

function placeRaw(unit: CompressedUnit, out: Uint16Array): void {
  for (const s of unit.slices) {
    if (!s.raw) continue;
    const t = unit.raw[s.name];
    check(t && t.data.length === s.length, `raw tensor '${s.name}' is missing or has the wrong size`, 'CORRUPT_DATA');
    out.set(t.data, s.offset);
  }
}

function views(unit: CompressedUnit, out: Uint16Array): Record<string, Tensor<'bf16'>> {
  const result: Record<string, Tensor<'bf16'>> = {};
  for (const s of unit.slices) result[s.name] = tensor('bf16', s.shape, out.subarray(s.offset, s.offset + s.length));
  return result;
}

function checkSlices(unit: CompressedUnit): void {
  for (const s of unit.slices) {
    check(
      Number.isSafeInteger(s.offset) && s.offset >= 0 && s.offset + s.length <= unit.totalElements,
      `slice '${s.name}' lies outside the unit`,
      'CORRUPT_DATA',
    );
  }
}

/** Where a decode writes: `elements` BF16 words at element `offset` of `out`. */
export interface DecodeTarget {
  out: Uint16Array | NativeBuffer;
  offset?: number;
  elements?: number;
  threads?: number;
}

const decodeOp = defineOp({
  name: 'df11.decode',
  prepare: (unit: NativeUnitParts, target: DecodeTarget) => {
    checkThreads(target.threads);
    return { unit, ...target, threads: target.threads ?? 0 };
  },
  sync: (a) => native().df11Decode(a),
  async: (a) => native().df11DecodeAsync(a),
  finish: () => undefined,
});

/**
 * Decodes a unit's encoded stream (buffers in host or device memory) straight into `out`
 * at an element offset, so a unit can land inside a larger tensor or model buffer without a
 * scratch copy. The CUDA kernel runs when `out` is CUDA memory; everything is validated natively.
 * @internal
 */
export const decodeInto = (unit: NativeUnitParts, target: DecodeTarget): Promise<void> => decodeOp.run(unit, target);
/** @internal */
export const decodeIntoSync = (unit: NativeUnitParts, target: DecodeTarget): void => decodeOp.runSync(unit, target);

/**
 * Decompresses a unit made by {@link compress} (or read from a DFloat11 file) bit for bit.
 * Without `options.out`, returns host tensors (views into one new Uint16Array); with a
 * Uint16Array of `unit.totalElements`, decodes into it; with a DeviceTensor (bf16,
 * totalElements elements; CUDA memory runs the GPU kernel), decodes into it and returns where
 * each tensor lies in it.
 * @example
 * const { 'q.weight': q } = await decompress(unit); // Tensor<'bf16'>, identical to the input
 */
export async function decompress(
  unit: CompressedUnit,
  options?: DecompressOptions & { out?: Uint16Array },
): Promise<Record<string, Tensor<'bf16'>>>;
export async function decompress(
  unit: CompressedUnit,
  options: DecompressOptions & { out: DeviceTensor },
): Promise<Record<string, UnitSlice>>;
export async function decompress(
  unit: CompressedUnit,
  options: DecompressOptions = {},
): Promise<Record<string, Tensor<'bf16'>> | Record<string, UnitSlice>> {
  const out = options?.out;
  const target = decompressTarget(unit, out, options);
  await decodeInto(nativeUnitParts(unit.buffers), target);
  if (out instanceof DeviceTensor) {
    await uploadRaw(unit, out);
    return sliceRecord(unit);
  }
  placeRaw(unit, target.out as Uint16Array);
  return views(unit, target.out as Uint16Array);
}

/**
 * Synchronous {@link decompress}.
 * @example
 * const { w } = decompressSync(unit);
 */
export function decompressSync(unit: CompressedUnit, options?: DecompressOptions & { out?: Uint16Array }): Record<string, Tensor<'bf16'>>;
export function decompressSync(unit: CompressedUnit, options: DecompressOptions & { out: DeviceTensor }): Record<string, UnitSlice>;
export function decompressSync(
  unit: CompressedUnit,
  options: DecompressOptions = {},
): Record<string, Tensor<'bf16'>> | Record<string, UnitSlice> {
  const out = options?.out;
  const target = decompressTarget(unit, out, options);
  decodeIntoSync(nativeUnitParts(unit.buffers), target);
  if (out instanceof DeviceTensor) {
    for (const s of unit.slices)
      if (s.raw) nativeCall(() => out.buffer.upload({ source: unit.raw[s.name]!.data, offset: s.offset * 2 }), 'df11.decompress');
    return sliceRecord(unit);
  }
  placeRaw(unit, target.out as Uint16Array);
  return views(unit, target.out as Uint16Array);
}

/** The coded stream decodes to the front of `out`; raw tensors follow it. */
function decompressTarget(unit: CompressedUnit, out: Uint16Array | DeviceTensor | undefined, options: DecompressOptions): DecodeTarget {
  assertUnit(unit);
  checkSlices(unit);
  check(options !== null && typeof options === 'object', 'options must be an object { out?, threads? }');
  const target = out instanceof DeviceTensor ? deviceOut(unit, out) : prepareOut(unit, out);
  return { out: target, offset: 0, elements: unit.encodedElements, threads: options.threads };
}

function deviceOut(unit: CompressedUnit, out: DeviceTensor): NativeBuffer {
  check(out.dtype === 'bf16', `out must be a bf16 DeviceTensor, got ${out.dtype}`, 'DTYPE_MISMATCH');
  check(out.size === unit.totalElements, `out holds ${out.size} elements but the unit decodes to ${unit.totalElements}`, 'SHAPE_MISMATCH');
  return out.buffer;
}

async function uploadRaw(unit: CompressedUnit, out: DeviceTensor): Promise<void> {
  for (const s of unit.slices) {
    if (!s.raw) continue;
    const data = unit.raw[s.name]!.data;
    await runPinned(data, 'df11.decompress', () => out.buffer.uploadAsync({ source: data, offset: s.offset * 2 }));
  }
}

function sliceRecord(unit: CompressedUnit): Record<string, UnitSlice> {
  const r: Record<string, UnitSlice> = {};
  for (const s of unit.slices) r[s.name] = s;
  return r;
}

/**
 * Decodes by running the CUDA kernel's per-thread steps serially on the CPU (slow; for
 * tests that check the kernel's logic on machines without a GPU).
 */
export function simulateKernelDecode(unit: CompressedUnit): Uint16Array {
  assertUnit(unit);
  const out = new Uint16Array(unit.encodedElements);
  nativeCall(() => native().df11SimulateKernel({ unit: nativeUnitParts(unit.buffers), out }), 'df11.simulateKernel');
  return out;
}

/**
 * Exponent histogram (256 counts) of a BF16 tensor.
 * @example
 * const counts = exponentHistogram(w); // Float64Array(256)
 */
export function exponentHistogram(t: Tensor): Float64Array {
  assertTensor(t, 'tensor', { dtypes: ['bf16'] });
  return nativeCall(() => native().df11Histogram({ data: t.data as Uint16Array }), 'df11.exponentHistogram');
}

/**
 * Shannon entropy of a BF16 tensor's exponents in bits; 8 + this is the DFloat11 bound
 * in bits per weight.
 * @example
 * const bound = 8 + exponentEntropy(w); // bits per weight DFloat11 can reach
 */
export function exponentEntropy(t: Tensor): number {
  const h = exponentHistogram(t);
  let total = 0;
  for (const c of h) total += c;
  if (total === 0) return 0;
  let e = 0;
  for (const c of h) if (c > 0) e -= (c / total) * Math.log2(c / total);
  return e;
}
