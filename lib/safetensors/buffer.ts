/** safetensors in memory: parse a byte buffer, or serialize tensors into one. */
import { InferzipError } from '../errors.js';
import { parseHeader, parseHeaderLength, type MetadataPosition, type SafetensorsEntry } from './header.js';
import { BaseReader } from './reader.js';
import { buildHeader, toRawEntries, type SafetensorsInput } from './encode.js';

/**
 * A safetensors image held in memory (e.g. a compressed unit). Reads are views, no copies.
 * @example
 * const file = readSafetensorsBuffer(bytes);
 * const t = file.readSync('weight');
 */
export class SafetensorsBuffer extends BaseReader {
  readonly tensors: readonly SafetensorsEntry[];
  readonly metadata: Readonly<Record<string, string>>;
  readonly bytes: Uint8Array;
  readonly dataStart: number;
  /** Where `__metadata__` sat in the header (see WriteOptions.metadataPosition). */
  readonly metadataPosition: MetadataPosition;

  constructor(bytes: Uint8Array, where = 'safetensors buffer') {
    super();
    if (!(bytes instanceof Uint8Array)) throw new InferzipError('INVALID_ARGUMENT', `${where} must be a Uint8Array`);
    const len = parseHeaderLength(bytes, bytes.byteLength, where);
    this.dataStart = 8 + len;
    const parsed = parseHeader(bytes.subarray(8, 8 + len), bytes.byteLength - this.dataStart, where);
    this.tensors = parsed.entries;
    this.metadata = parsed.metadata;
    this.metadataPosition = parsed.metadataPosition;
    this.bytes = bytes;
  }

  readBytesSync(name: string): Uint8Array {
    const e = this.entry(name);
    return this.bytes.subarray(this.dataStart + e.dataOffsets[0], this.dataStart + e.dataOffsets[1]);
  }
  async readBytes(name: string): Promise<Uint8Array> {
    return this.readBytesSync(name);
  }
  close(): void {}
}

/**
 * Parses a safetensors image (validated like a file).
 * @example
 * const file = readSafetensorsBuffer(readFileSync('model.safetensors'));
 */
export function readSafetensorsBuffer(bytes: Uint8Array): SafetensorsBuffer {
  return new SafetensorsBuffer(bytes);
}

/**
 * Serializes tensors (in the given order) and metadata into one safetensors image.
 * @example
 * const bytes = serializeSafetensors([{ name: 'w', dtype: 'f32', shape: [2], data: new Float32Array([1, 2]) }]);
 */
export function serializeSafetensors(input: SafetensorsInput, metadata?: Record<string, string>): Uint8Array {
  const entries = toRawEntries(input);
  for (const e of entries) {
    if (typeof e.data === 'function')
      throw new InferzipError(
        'INVALID_ARGUMENT',
        `serializeSafetensors needs in-memory data; '${e.name}' has a lazy loader (use writeSafetensors)`,
      );
  }
  const header = buildHeader(entries, metadata);
  const total = 8 + header.byteLength + entries.reduce((s, e) => s + e.byteLength, 0);
  const out = new Uint8Array(total);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.byteLength), true);
  out.set(header, 8);
  let pos = 8 + header.byteLength;
  for (const e of entries) {
    const d = e.data as ArrayBufferView;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), pos);
    pos += d.byteLength;
  }
  return out;
}
