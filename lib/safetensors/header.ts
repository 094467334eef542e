/**
 * Parses and validates a safetensors header. Every check here guards against a hostile
 * or truncated file: nothing is allocated or read from a size the checks have not bounded.
 */
import { InferzipError } from '../errors.js';
import { SAFETENSORS_ELEMENT_SIZE, isSafetensorsDType, type SafetensorsDType } from './dtypes.js';

/** Largest header accepted (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** [begin, end) relative to the start of the data section. */
  readonly dataOffsets: readonly [number, number];
  readonly byteLength: number;
}

export interface ParsedHeader {
  /** Tensors in the header's order. */
  readonly entries: readonly SafetensorsEntry[];
  readonly metadata: Readonly<Record<string, string>>;
  /** Byte offset of the data section inside the file or buffer (8 + header length). */
  readonly dataStart: number;
  /** Where `__metadata__` sat in the JSON header (writers can reproduce it for byte-exact rewrites). */
  readonly metadataPosition: MetadataPosition;
}

/** Position of `__metadata__` among the header's keys ('first' is what the reference writer does). */
export type MetadataPosition = 'first' | 'last';

function corrupt(where: string, message: string): never {
  throw new InferzipError('CORRUPT_DATA', `${where}: ${message}`);
}

/** Reads the u64 little-endian header length and checks it against the cap and the file size. */
export function parseHeaderLength(prefix: Uint8Array, fileSize: number, where: string): number {
  if (fileSize < 8 || prefix.byteLength < 8)
    corrupt(where, `file is ${fileSize} bytes, too short for a safetensors header (needs at least 8)`);
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const len = view.getBigUint64(0, true);
  if (len > BigInt(MAX_HEADER_BYTES))
    corrupt(where, `header length ${len} exceeds the ${MAX_HEADER_BYTES}-byte limit; this is not a safetensors file or it is corrupt`);
  const n = Number(len);
  if (n < 2) corrupt(where, `header length ${n} is too small for a JSON object`);
  if (8 + n > fileSize) corrupt(where, `header length ${n} runs past the end of the ${fileSize}-byte file (truncated?)`);
  return n;
}

/** Parses the JSON header and validates every tensor against a data section of `dataSize` bytes. */
export function parseHeader(json: Uint8Array, dataSize: number, where: string): ParsedHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch {
    corrupt(where, 'header is not valid UTF-8');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    corrupt(where, `header is not valid JSON (${(err as Error).message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) corrupt(where, 'header must be a JSON object');

  let metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  const entries: SafetensorsEntry[] = [];
  const keys = Object.keys(raw as Record<string, unknown>);
  const metadataPosition: MetadataPosition = keys.length > 1 && keys[keys.length - 1] === '__metadata__' ? 'last' : 'first';
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (!value || typeof value !== 'object' || Array.isArray(value)) corrupt(where, '__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') corrupt(where, `__metadata__.${k} must be a string`);
      }
      metadata = Object.assign(Object.create(null) as Record<string, string>, value as Record<string, string>);
      continue;
    }
    entries.push(parseEntry(name, value, dataSize, where));
  }
  checkOverlaps(entries, where);
  return { entries, metadata, dataStart: 0, metadataPosition };
}

function parseEntry(name: string, value: unknown, dataSize: number, where: string): SafetensorsEntry {
  const at = `${where}: tensor '${name}'`;
  if (!value || typeof value !== 'object' || Array.isArray(value)) corrupt(at, 'must be an object { dtype, shape, data_offsets }');
  const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (!isSafetensorsDType(v.dtype)) {
    corrupt(at, `unknown dtype ${JSON.stringify(v.dtype)} (known: ${Object.keys(SAFETENSORS_ELEMENT_SIZE).join(', ')})`);
  }
  if (!Array.isArray(v.shape)) corrupt(at, 'shape must be an array of non-negative integers');
  let count = 1;
  for (const d of v.shape as unknown[]) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0)
      corrupt(at, `shape ${JSON.stringify(v.shape)} has an invalid dimension`);
    count *= d;
    if (!Number.isSafeInteger(count)) corrupt(at, `shape ${JSON.stringify(v.shape)} has too many elements`);
  }
  const offs = v.data_offsets;
  if (!Array.isArray(offs) || offs.length !== 2) corrupt(at, 'data_offsets must be [begin, end]');
  const [begin, end] = offs as unknown[];
  if (
    typeof begin !== 'number' ||
    typeof end !== 'number' ||
    !Number.isSafeInteger(begin) ||
    !Number.isSafeInteger(end) ||
    begin < 0 ||
    end < 0
  ) {
    corrupt(at, `data_offsets ${JSON.stringify(offs)} must be non-negative integers`);
  }
  if (end < begin) corrupt(at, `data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataSize)
    corrupt(at, `data_offsets [${begin}, ${end}] run past the end of the ${dataSize}-byte data section (truncated file?)`);
  const size = SAFETENSORS_ELEMENT_SIZE[v.dtype];
  const expected = count * size;
  if (end - begin !== expected) {
    corrupt(at, `holds ${end - begin} bytes but ${v.dtype}${JSON.stringify(v.shape)} needs ${expected}`);
  }
  return {
    name,
    dtype: v.dtype,
    shape: Object.freeze([...(v.shape as number[])]),
    dataOffsets: Object.freeze([begin, end]) as readonly [number, number],
    byteLength: end - begin,
  };
}

function checkOverlaps(entries: readonly SafetensorsEntry[], where: string): void {
  const sorted = entries.filter((e) => e.byteLength > 0).sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0]);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.dataOffsets[0] < prev.dataOffsets[1]) {
      corrupt(where, `tensors '${prev.name}' [${prev.dataOffsets.join(', ')}] and '${cur.name}' [${cur.dataOffsets.join(', ')}] overlap`);
    }
  }
}
