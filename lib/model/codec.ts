/**
 * The one place the model layer talks to the DFloat11 codec (lib/df11). Everything else
 * in lib/model works on `EncodedUnit` (the six DFloat11 buffers, host side) and
 * `DeviceUnit` (the same buffers resident on the device).
 */
import { native, type NativeBuffer } from '../native.js';
import type { DeviceId } from '../backend.js';
import type { SafetensorsReader } from '../safetensors/index.js';
import type { OutputEntry } from './output-layout.js';
import { InferzipError, nativeCall } from '../errors.js';
import { runPinned } from '../ops.js';
import { decodeInto, encodeOp, nativeUnitParts } from '../df11/codec.js';
import type { NativeUnitParts } from '../df11/native.js';
import type { UnitBuffers } from '../df11/index.js';
import { unitBuffersOf } from '../df11/codec.js';
import '../df11/native.js';
import { hasUnitBuffers, readUnitBuffers, unitBufferBytes, unitBufferEntries, unitBuffersCrc32 } from '../df11/unit-buffers.js';

/** The six DFloat11 v0.5.0 buffers of one unit, as stored in a file (lib/df11's UnitBuffers). */
export type EncodedUnit = UnitBuffers;

/** Elements a unit decodes to (one per sign_mantissa byte). */
export function unitElements(unit: EncodedUnit): number {
  return unit.signMantissa.byteLength;
}

/** Stored bytes of a unit (all six buffers). */
export const unitBytes = unitBufferBytes;

/** crc32 (8 hex digits) of a unit's six buffers as stored, in file order. */
export const unitCrc32 = unitBuffersCrc32;

/** Safetensors entries `<prefix>.<buffer>` of a unit, with the dtypes and shapes DFloat11 uses. */
export const unitEntries = (prefix: string, unit: EncodedUnit): OutputEntry[] => unitBufferEntries(prefix, unit) as OutputEntry[];

/** True when the reader holds all six buffers of `prefix`. */
export function hasUnit(reader: SafetensorsReader, prefix: string): boolean {
  return hasUnitBuffers((name) => reader.has(name), prefix);
}

/** Reads a unit's buffers from a file (checks presence and dtypes; the codec checks contents). */
export const readUnit = readUnitBuffers;

// ---- codec binding (lib/df11) ----------------------------------------------------------

export interface EncodeOptions {
  threads?: number;
}

export interface EncodeResult {
  /** The unit holding the coded matrices (undefined when none could be coded). */
  unit?: EncodedUnit;
  /** Indices (into the input) of the matrices coded into the unit, in stream order. */
  encoded: number[];
  /** Indices of matrices holding exponents >= 240 (Inf, NaN, |x| >= 2^113): kept raw. */
  raw: number[];
  /** Exponent histogram of the coded matrices (256 counts). */
  histogram: Float64Array;
}

/**
 * Encodes BF16 matrices (concatenated in order) into one unit off the main thread. The
 * codec leaves out matrices it cannot code (they must be stored raw by the caller).
 */
export async function encodeUnit(parts: readonly Uint16Array[], options: EncodeOptions = {}): Promise<EncodeResult> {
  for (const [i, p] of parts.entries()) {
    if (!(p instanceof Uint16Array)) throw new InferzipError('DTYPE_MISMATCH', `matrix ${i} must be a Uint16Array of BF16 bits`);
  }
  // The addon's encoder reports the exponent histogram it builds anyway (saves a pass).
  const r = await encodeOp.run({ tensors: [...parts], threads: options.threads });
  const encoded = [...r.encodedInputs];
  const raw = [...r.rawInputs];
  if (encoded.length + raw.length !== parts.length || new Set([...encoded, ...raw]).size !== parts.length) {
    throw new InferzipError('INTERNAL', `the encoder accounted for ${encoded.length + raw.length} of ${parts.length} matrices`);
  }
  const unit = unitBuffersOf(r);
  return { ...(encoded.length > 0 ? { unit } : {}), encoded, raw, histogram: Float64Array.from(r.histogram) };
}

/** Decodes a unit on the host (off the main thread) into `out` (or a new array). */
export async function decodeUnit(unit: EncodedUnit, out?: Uint16Array, options: EncodeOptions = {}): Promise<Uint16Array> {
  const target = out ?? new Uint16Array(unitElements(unit));
  await decodeInto(nativeUnitParts(unit), { out: target, threads: options.threads });
  return target;
}

/** A unit whose buffers live on a device (CUDA memory, or host memory for the CPU backend). */
export interface DeviceUnit extends Disposable {
  readonly elements: number;
  /** Device bytes held by the compressed buffers. */
  readonly bytes: number;
  readonly parts: NativeUnitParts;
  dispose(): void;
}

/** Copies a unit's five decode buffers to the device (split positions stay on the host). */
export async function uploadUnit(unit: EncodedUnit, device: DeviceId): Promise<DeviceUnit> {
  const host = nativeUnitParts(unit);
  const buffers: NativeBuffer[] = [];
  try {
    const parts = {} as Record<keyof NativeUnitParts, NativeBuffer>;
    for (const key of Object.keys(host) as (keyof NativeUnitParts)[]) {
      const src = host[key] as Uint8Array;
      const b = nativeCall(
        () => new (native().NativeBuffer)({ device: device.kind, deviceIndex: device.index, bytes: src.byteLength, zero: false }),
        `uploading unit buffer '${key}'`,
      );
      buffers.push(b);
      if (src.byteLength > 0) await runPinned(src, `uploading unit buffer '${key}'`, () => b.uploadAsync({ source: src, offset: 0 }));
      parts[key] = b;
    }
    const bytes = buffers.reduce((s, b) => s + b.bytes, 0);
    const dispose = (): void => {
      for (const b of buffers) b.dispose();
    };
    return { elements: unitElements(unit), bytes, parts, dispose, [Symbol.dispose]: dispose };
  } catch (err) {
    for (const b of buffers) b.dispose();
    throw err;
  }
}

/** Decodes a device-resident unit into the front of `out` off the main thread; CUDA memory runs the kernel. */
export async function decodeDeviceUnit(unit: DeviceUnit, out: NativeBuffer): Promise<void> {
  await decodeInto(unit.parts, { out, offset: 0, elements: unit.elements });
}
