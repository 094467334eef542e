/**
 * The one owner of a DFloat11 unit's six buffers as they are stored: their names in files
 * (`<prefix>.encoded_exponent`, ...), dtypes and shapes, the byte count, the checksum, and
 * reading them back (presence and dtypes checked; the codec checks the contents). lib/df11's
 * serializer and every lib/model reader and writer go through here, so they cannot disagree.
 * @internal
 */
import { crc32 } from '../checksum.js';

import { InferzipError } from '../errors.js';
import type { SafetensorsReader, SafetensorsWriteEntry } from '../safetensors/index.js';
import type { UnitBuffers } from './unit.js';

/** The buffers' names in files, in DFloat11 v0.5.0 file order. */
export const UNIT_BUFFERS = ['encoded_exponent', 'sign_mantissa', 'luts', 'output_positions', 'gaps', 'split_positions'] as const;
export type UnitBufferName = (typeof UNIT_BUFFERS)[number];

const KEY: Record<UnitBufferName, keyof UnitBuffers> = {
  encoded_exponent: 'encodedExponent',
  sign_mantissa: 'signMantissa',
  luts: 'luts',
  output_positions: 'outputPositions',
  gaps: 'gaps',
  split_positions: 'splitPositions',
};

/** Dtypes accepted on read. Published checkpoints store output_positions as U8 bytes; a U32/I32 view is accepted too. */
const READ_DTYPES: Record<UnitBufferName, readonly string[]> = {
  encoded_exponent: ['U8'],
  sign_mantissa: ['U8'],
  luts: ['U8'],
  output_positions: ['U8', 'U32', 'I32'],
  gaps: ['U8'],
  split_positions: ['I64', 'U64'],
};

function bytesOf(b: UnitBuffers, name: UnitBufferName): Uint8Array {
  const v = b[KEY[name]];
  return v instanceof Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Stored bytes of a unit (all six buffers). */
export function unitBufferBytes(b: UnitBuffers): number {
  return UNIT_BUFFERS.reduce((s, name) => s + b[KEY[name]].byteLength, 0);
}

/** crc32 (8 hex digits) of a unit's six buffers as stored, in file order. */
export function unitBuffersCrc32(b: UnitBuffers): string {
  let c = 0;
  for (const name of UNIT_BUFFERS) c = crc32(bytesOf(b, name), c);
  return c.toString(16).padStart(8, '0');
}

/** The safetensors entries `<prefix>.<buffer>` of a unit, with the dtypes and shapes DFloat11 uses. */
export function unitBufferEntries(prefix: string, b: UnitBuffers): SafetensorsWriteEntry[] {
  const lutRows = b.luts.byteLength / 256;
  return UNIT_BUFFERS.map((name) => {
    const data = b[KEY[name]];
    if (name === 'split_positions') return { name: `${prefix}.${name}`, dtype: 'I64', shape: [b.splitPositions.length], data };
    const shape = name === 'luts' && Number.isInteger(lutRows) ? [lutRows, 256] : [data.byteLength];
    return { name: `${prefix}.${name}`, dtype: 'U8', shape, data };
  });
}

/** True when `has` finds all six buffers of `prefix`. */
export function hasUnitBuffers(has: (name: string) => boolean, prefix: string): boolean {
  return UNIT_BUFFERS.every((b) => has(`${prefix}.${b}`));
}

/** One stored buffer as a reader sees it. */
export interface StoredBuffer {
  readonly dtype: string;
  readonly bytes: Uint8Array;
}

/** Builds UnitBuffers from the six stored buffers, checking presence and dtypes. */
export function assembleUnitBuffers(prefix: string, get: (name: UnitBufferName) => StoredBuffer | undefined): UnitBuffers {
  const parts = {} as Record<UnitBufferName, Uint8Array>;
  for (const b of UNIT_BUFFERS) {
    const name = `${prefix}.${b}`;
    const e = get(b);
    if (!e) throw new InferzipError('CORRUPT_DATA', `unit '${prefix}' has no '${name}' tensor`);
    if (!READ_DTYPES[b].includes(e.dtype))
      throw new InferzipError('CORRUPT_DATA', `'${name}' is ${e.dtype}, expected ${READ_DTYPES[b].join(' or ')}`);
    parts[b] = e.bytes;
  }
  const sp = parts.split_positions;
  if (sp.byteLength % 8 !== 0)
    throw new InferzipError(
      'CORRUPT_DATA',
      `'${prefix}.split_positions' holds ${sp.byteLength} bytes, not a whole number of 64-bit values`,
    );
  // copied: file bytes are not 8-byte aligned in general
  const splitPositions = new BigInt64Array(sp.byteLength / 8);
  new Uint8Array(splitPositions.buffer).set(sp);
  return {
    encodedExponent: parts.encoded_exponent,
    signMantissa: parts.sign_mantissa,
    luts: parts.luts,
    outputPositions: parts.output_positions,
    gaps: parts.gaps,
    splitPositions,
  };
}

/** Reads a unit's six buffers from a safetensors reader off the main thread's disk waits. */
export async function readUnitBuffers(reader: SafetensorsReader, prefix: string): Promise<UnitBuffers> {
  const stored = new Map<UnitBufferName, StoredBuffer>();
  for (const b of UNIT_BUFFERS) {
    const name = `${prefix}.${b}`;
    if (reader.has(name)) stored.set(b, { dtype: reader.entry(name).dtype, bytes: await reader.readBytes(name) });
  }
  return assembleUnitBuffers(prefix, (b) => stored.get(b));
}
