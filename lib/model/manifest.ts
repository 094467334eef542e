/**
 * The `__metadata__` a compressed model carries so the original files can be rebuilt byte
 * for byte: each source file's exact header (deflated), its size and sha256, which tensors
 * each unit holds, a crc32 per original tensor, and any bytes between tensors.
 * Everything read back is validated: a hostile manifest gives CORRUPT_DATA, never a crash.
 */
import { crc32, deflateRawSync, inflateRawSync } from 'node:zlib';

import { InferzipError } from '../errors.js';
import { parseHeader, type SafetensorsEntry } from '../safetensors/header.js';

export const FORMAT_KEY = 'inferzip.format';
export const FORMAT_VERSION = 'inferzip-df11-model/1';
export const MANIFEST_KEY = 'inferzip.manifest';
/**
 * crc32 of the manifest's JSON bytes. Raw deflate carries no checksum, and one changed byte of
 * its base64 can still inflate to valid JSON: a back-reference copied differently renamed a
 * tensor consistently in every place (found by the mutation fuzzer), which no cross-check saw.
 */
export const MANIFEST_CRC_KEY = 'inferzip.manifest.crc32';
/** DFloat11 v0.5.0 layout constants this writer uses. */
export const DF11_THREADS_PER_BLOCK = 512;
export const DF11_BYTES_PER_THREAD = 8;

export interface ManifestFile {
  /** File name of the original (e.g. model-00001-of-00002.safetensors). */
  name: string;
  /** The original JSON header bytes as a latin1 string (one char per byte, exact). */
  header: string;
  headerLength: number;
  /** Original file size in bytes. */
  size: number;
  /** sha256 (hex) of the whole original file. */
  sha256: string;
}

export interface ManifestUnit {
  prefix: string;
  kind: 'block' | 'matrix';
  block?: number;
  members: string[];
  /** Entropy of the unit's exponents, bits per weight (8 + this is the lossless bound). */
  entropy: number;
  /**
   * crc32 of the six stored buffers: catches damage even in bits the decoder never reads
   * (padding of gaps and of the last code byte, unused table entries).
   */
  crc32?: string;
}

export interface ManifestGap {
  file: number;
  /** Offset inside the data section of the original file. */
  offset: number;
  length: number;
  /** Name of the U8 tensor in the compressed file that holds these bytes. */
  name: string;
}

export interface Manifest {
  version: 1;
  /** 'file': one .safetensors; 'sharded': several shards (plus an index, when there was one). */
  source: 'file' | 'sharded';
  files: ManifestFile[];
  /** model.safetensors.index.json of a sharded source: its bytes as a latin1 string. */
  index?: { name: string; data: string; sha256: string };
  units: ManifestUnit[];
  /** crc32 (8 hex digits) of every original tensor's bytes. */
  crc32: Record<string, string>;
  gaps: ManifestGap[];
  /** Exponent histogram of all compressed weights: [exponent, count] pairs. */
  histogram: [number, number][];
}

/** Largest manifest accepted once inflated (it holds every original header, each <= 100 MB). */
export const MAX_MANIFEST_BYTES = 1 << 30;

/** Bytes <-> latin1 string: exact for every byte value, and deflates well inside JSON. */
export function bytesToLatin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}
export function latin1ToBytes(text: string): Uint8Array {
  const b = Buffer.from(text, 'latin1');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** The manifest as stored in `__metadata__`: base64 of raw-deflated JSON (names repeat a lot) and its crc32. */
export function manifestMetadata(m: Manifest): Record<string, string> {
  const json = Buffer.from(JSON.stringify(m), 'utf8');
  return { [MANIFEST_KEY]: deflateRawSync(json, { level: 9 }).toString('base64'), [MANIFEST_CRC_KEY]: crcHex(json) };
}

const crcHex = (b: Uint8Array): string => crc32(b).toString(16).padStart(8, '0');

/**
 * The most a manifest can plausibly inflate to, for a packed manifest of `packedBytes` in a file
 * of `tensorCount` tensors: a fixed allowance of 16 MiB (an original header may carry megabytes
 * of repetitive `__metadata__` text that deflates ~1000:1; inflating 16 MiB costs ~30 ms), 8 KiB
 * per tensor (its original header entry, crc32 and unit membership, with long names) and 64x the
 * packed size (deflate of JSON headers and metadata text stays well under that; a deflate bomb
 * reaches ~1000x). Capped by MAX_MANIFEST_BYTES. A 1 MB manifest claiming 500 MB is refused after
 * inflating ~80 MB at most, instead of costing 2 GB and seconds in every entry point.
 */
export function manifestInflateLimit(packedBytes: number, tensorCount: number): number {
  return Math.min(MAX_MANIFEST_BYTES, MANIFEST_ALLOWANCE + 64 * packedBytes + 8192 * tensorCount);
}

const MANIFEST_ALLOWANCE = 16 << 20;

function unpackManifest(text: string, tensorCount: number | undefined): Buffer {
  const packed = Buffer.from(text, 'base64');
  const limit = tensorCount === undefined ? MAX_MANIFEST_BYTES : manifestInflateLimit(packed.byteLength, tensorCount);
  try {
    // inflateRawSync streams internally and stops at maxOutputLength: it never allocates past the limit
    return inflateRawSync(packed, { maxOutputLength: limit });
  } catch (err) {
    const over = err instanceof RangeError || (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';
    const why = over
      ? `it inflates to more than ${limit} bytes, more than a file of ${String(tensorCount)} tensors can need`
      : (err as Error).message;
    throw new InferzipError('CORRUPT_DATA', `inferzip manifest: cannot be unpacked (${why})`, { cause: err });
  }
}

/** One original file, with its header parsed back. */
export interface RestoreFile extends ManifestFile {
  headerBytes: Uint8Array;
  tensors: readonly SafetensorsEntry[];
  dataSize: number;
}

export interface ParsedManifest extends Manifest {
  restoreFiles: RestoreFile[];
  /** Original tensor name -> (file index, header entry). */
  tensorIndex: Map<string, { file: number; entry: SafetensorsEntry }>;
  /** Original tensor name -> unit prefix, for tensors stored compressed. */
  unitOf: Map<string, string>;
}

function bad(message: string): never {
  throw new InferzipError('CORRUPT_DATA', `inferzip manifest: ${message}`);
}
const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isName = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 4096;
const isSafeFileName = (v: unknown): v is string => isName(v) && !/[/\\]/.test(v) && v !== '.' && v !== '..' && !v.includes('\0');

/**
 * Throws NOT_COMPRESSED, naming the file, when `metadata` is not an inferzip compressed model's
 * (no format key at all): a plain safetensors model handed to decompress or verify is a
 * mistake to explain, not damage to report as CORRUPT_DATA.
 */
export function requireCompressed(metadata: Readonly<Record<string, string>>, path: string): void {
  if (metadata[FORMAT_KEY] !== undefined) return;
  throw new InferzipError(
    'NOT_COMPRESSED',
    `'${path}' is not an inferzip compressed model (its header has no '${FORMAT_KEY}' metadata): ` +
      'it looks like a plain safetensors file; compress it first with `inferzip compress` / compressModel()',
  );
}

/** Parses and checks a manifest (as found in `__metadata__`). */
export function parseManifest(metadata: Readonly<Record<string, string>>, tensorCount?: number): ParsedManifest {
  if (metadata[FORMAT_KEY] !== FORMAT_VERSION) {
    bad(
      `format is ${JSON.stringify(metadata[FORMAT_KEY] ?? null)}, expected '${FORMAT_VERSION}' (not an inferzip compressed model, or a newer version)`,
    );
  }
  const text = metadata[MANIFEST_KEY];
  if (typeof text !== 'string') bad(`'${MANIFEST_KEY}' is missing`);
  const want = metadata[MANIFEST_CRC_KEY];
  if (typeof want !== 'string') bad(`'${MANIFEST_CRC_KEY}' is missing (a file written by an older inferzip: compress the model again)`);
  let json: Buffer;
  try {
    json = unpackManifest(text, tensorCount);
  } catch (err) {
    bad(`not valid JSON (${(err as Error).message})`);
  }
  const got = crcHex(json);
  if (got !== want) bad(`the manifest does not match its crc32 (${got}, expected ${want}): the file is damaged`);
  let raw: unknown;
  try {
    raw = JSON.parse(json.toString('utf8'));
  } catch (err) {
    bad(`not valid JSON (${(err as Error).message})`);
  }
  if (!isObj(raw) || raw.version !== 1) bad('unsupported manifest version');
  const m = raw as unknown as Manifest;
  if (m.source !== 'file' && m.source !== 'sharded') bad(`source must be 'file' or 'sharded'`);
  if (!Array.isArray(m.files) || m.files.length === 0 || m.files.length > 100_000) bad('files must be a non-empty array');
  if (m.source === 'file' && m.files.length !== 1) bad(`a 'file' source has exactly one file`);
  if (!Array.isArray(m.units) || !Array.isArray(m.gaps) || !isObj(m.crc32) || !Array.isArray(m.histogram))
    bad('units, gaps, crc32 and histogram are required');

  // Names come from the file: look them up in a null-prototype copy ('constructor' must not find
  // Object.prototype.constructor; an own '__proto__' key stays a key).
  m.crc32 = Object.assign(Object.create(null) as Record<string, string>, m.crc32);
  const restoreFiles: RestoreFile[] = [];
  const tensorIndex = new Map<string, { file: number; entry: SafetensorsEntry }>();
  const names = new Set<string>();
  m.files.forEach((f, i) => {
    if (
      !isObj(f) ||
      !isSafeFileName(f.name) ||
      !isCount(f.headerLength) ||
      !isCount(f.size) ||
      typeof f.header !== 'string' ||
      !/^[0-9a-f]{64}$/.test(String(f.sha256))
    ) {
      bad(`files[${i}] is malformed`);
    }
    if (names.has(f.name)) bad(`file name '${f.name}' appears twice`);
    names.add(f.name);
    if (f.size < 8 + f.headerLength) bad(`files[${i}] is smaller than its header`);
    if (/[\u0100-\uffff]/.test(f.header)) bad(`header of '${f.name}' is not a byte string`);
    const headerBytes = latin1ToBytes(f.header);
    if (headerBytes.byteLength !== f.headerLength || f.header.length !== f.headerLength)
      bad(`header of '${f.name}' holds ${headerBytes.byteLength} bytes, expected ${f.headerLength}`);
    const dataSize = f.size - 8 - f.headerLength;
    const parsed = parseHeader(headerBytes, dataSize, `original header of '${f.name}'`);
    for (const e of parsed.entries) {
      if (tensorIndex.has(e.name)) bad(`tensor '${e.name}' appears in two original files`);
      tensorIndex.set(e.name, { file: i, entry: e });
    }
    restoreFiles.push({ ...f, headerBytes, tensors: parsed.entries, dataSize });
  });
  if (m.index !== undefined) {
    if (
      !isObj(m.index) ||
      !isSafeFileName(m.index.name) ||
      typeof m.index.data !== 'string' ||
      !/^[0-9a-f]{64}$/.test(String(m.index.sha256))
    )
      bad('index is malformed');
    if (names.has(m.index.name)) bad(`index name '${m.index.name}' clashes with a shard`);
    if (/[\u0100-\uffff]/.test(m.index.data)) bad('index data is not a byte string');
  }

  const unitOf = new Map<string, string>();
  const prefixes = new Set<string>();
  for (const [i, u] of m.units.entries()) {
    if (
      !isObj(u) ||
      !isName(u.prefix) ||
      (u.kind !== 'block' && u.kind !== 'matrix') ||
      !Array.isArray(u.members) ||
      u.members.length === 0 ||
      typeof u.entropy !== 'number' ||
      !(u.entropy >= 0 && u.entropy <= 8)
    ) {
      bad(`units[${i}] is malformed`);
    }
    if (u.kind === 'block' && !isCount(u.block)) bad(`units[${i}] (block) needs a block index`);
    if (u.crc32 !== undefined && !/^[0-9a-f]{8}$/.test(String(u.crc32))) bad(`units[${i}] has a malformed crc32`);
    if (prefixes.has(u.prefix)) bad(`unit prefix '${u.prefix}' appears twice`);
    prefixes.add(u.prefix);
    for (const name of u.members) {
      const t = typeof name === 'string' ? tensorIndex.get(name) : undefined;
      if (!t) bad(`unit '${u.prefix}' lists '${String(name)}', which is not in any original header`);
      if (t.entry.dtype !== 'BF16') bad(`unit '${u.prefix}' lists '${name}', which is ${t.entry.dtype}, not BF16`);
      if (unitOf.has(name)) bad(`tensor '${name}' is in two units`);
      unitOf.set(name, u.prefix);
    }
  }
  for (const name of tensorIndex.keys()) {
    if (!/^[0-9a-f]{8}$/.test(String(m.crc32[name]))) bad(`no crc32 for tensor '${name}'`);
  }
  for (const [i, g] of m.gaps.entries()) {
    const f = restoreFiles[isCount(g?.file) ? g.file : -1];
    if (
      !isObj(g) ||
      !f ||
      !isCount(g.offset) ||
      !isCount(g.length) ||
      g.length === 0 ||
      g.offset + g.length > f.dataSize ||
      !isName(g.name)
    )
      bad(`gaps[${i}] is malformed`);
  }
  for (const [i, h] of m.histogram.entries()) {
    if (!Array.isArray(h) || h.length !== 2 || !isCount(h[0]) || h[0] > 255 || !isCount(h[1])) bad(`histogram[${i}] is malformed`);
  }
  return { ...m, restoreFiles, tensorIndex, unitOf };
}

/** Pieces of an original data section in offset order: a tensor or a run of gap bytes. */
export type Segment = { kind: 'tensor'; entry: SafetensorsEntry } | { kind: 'gap'; offset: number; length: number };

/** Splits a data section into tensors and the bytes between them (zero-length tensors included). */
export function segmentsOf(tensors: readonly SafetensorsEntry[], dataSize: number): Segment[] {
  const sorted = [...tensors].sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.byteLength - b.byteLength);
  const out: Segment[] = [];
  let pos = 0;
  for (const e of sorted) {
    const [begin, end] = e.dataOffsets;
    if (begin > pos) out.push({ kind: 'gap', offset: pos, length: begin - pos });
    out.push({ kind: 'tensor', entry: e });
    pos = Math.max(pos, end);
  }
  if (dataSize > pos) out.push({ kind: 'gap', offset: pos, length: dataSize - pos });
  return out;
}
