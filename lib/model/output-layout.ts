/**
 * Streams a safetensors file whose tensor sizes are only known once each is written
 * (compressed buffers): the data section starts after a header area reserved from an
 * upper-bound estimate, the header is written last. If the estimate was too small, or
 * leaves more than 0.1% of the file as padding, the data is copied once into a file
 * with an exact header. Temp file + rename: the target never holds a partial file.
 */
import { InferzipError } from '../errors.js';
import type { SafetensorsDType } from '../safetensors/index.js';
import { SAFETENSORS_ELEMENT_SIZE } from '../safetensors/index.js';
import { AtomicFile } from './atomic-file.js';
import { MAX_HEADER_BYTES, parseHeader } from '../safetensors/header.js';

export interface OutputEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  data: ArrayBufferView;
}

interface Placed {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  begin: number;
  end: number;
}

/** The JSON header (unpadded) for entries at explicit data offsets. */
function headerJson(entries: readonly Placed[], metadata: Record<string, string>): Uint8Array {
  // null prototype: a tensor named `__proto__` must become a key, not the object's prototype
  const header: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  header.__metadata__ = metadata;
  for (const e of entries) header[e.name] = { dtype: e.dtype, shape: [...e.shape], data_offsets: [e.begin, e.end] };
  return new TextEncoder().encode(JSON.stringify(header));
}

const roundUp8 = (n: number): number => Math.ceil(n / 8) * 8;
const COPY_CHUNK = 16 << 20;

export class OutputLayout {
  readonly #file: AtomicFile;
  readonly #reserved: number;
  readonly #placed: Placed[] = [];
  readonly #names = new Set<string>();
  #dataBytes = 0;

  private constructor(file: AtomicFile, reserved: number) {
    this.#file = file;
    this.#reserved = reserved;
  }

  /** Opens the temp file; `estimate` lists every entry the file may hold, with numbers at least as long as the real ones. */
  static async create(path: string, estimate: readonly OutputEntry[], estimateMetadata: Record<string, string>): Promise<OutputLayout> {
    const BIG = Number.MAX_SAFE_INTEGER;
    const json = headerJson(
      estimate.map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, begin: BIG, end: BIG })),
      estimateMetadata,
    );
    const reserved = roundUp8(Math.ceil(json.byteLength * 1.02) + 256);
    const file = await AtomicFile.create(path);
    file.seek(8 + reserved);
    return new OutputLayout(file, reserved);
  }

  /** Tensors appended so far (what the header will list). */
  get entryCount(): number {
    return this.#placed.length;
  }

  /** Appends one tensor to the data section. */
  async append(entry: OutputEntry): Promise<void> {
    if (this.#names.has(entry.name)) throw new InferzipError('INTERNAL', `output entry '${entry.name}' written twice`);
    let count = 1;
    for (const d of entry.shape) count *= d;
    const bytes = new Uint8Array(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength);
    if (count * SAFETENSORS_ELEMENT_SIZE[entry.dtype] !== bytes.byteLength) {
      throw new InferzipError(
        'INTERNAL',
        `output entry '${entry.name}': ${entry.dtype}[${entry.shape.join(', ')}] does not match ${bytes.byteLength} bytes`,
      );
    }
    await this.#file.append(bytes);
    this.#names.add(entry.name);
    this.#placed.push({
      name: entry.name,
      dtype: entry.dtype,
      shape: entry.shape,
      begin: this.#dataBytes,
      end: this.#dataBytes + bytes.byteLength,
    });
    this.#dataBytes += bytes.byteLength;
  }

  /** Writes the header, publishes the file and returns its size. */
  async finish(metadata: Record<string, string>): Promise<number> {
    const json = headerJson(this.#placed, metadata);
    // Never publish a file the reader would refuse: apply the reader's own limits and checks to
    // the header first (a valid input with a huge header can produce one over the cap).
    if (roundUp8(json.byteLength) > MAX_HEADER_BYTES) {
      throw new InferzipError(
        'UNSUPPORTED',
        `the output header of '${this.#file.path}' would be ${roundUp8(json.byteLength)} bytes, over the ${MAX_HEADER_BYTES}-byte limit readers accept (too many or too long tensor names, or too much metadata); nothing was written`,
      );
    }
    try {
      parseHeader(json, this.#dataBytes, `output header of '${this.#file.path}'`);
    } catch (err) {
      throw new InferzipError(
        'INTERNAL',
        `the output header of '${this.#file.path}' would not read back (${(err as Error).message}); nothing was written`,
        { cause: err },
      );
    }
    const fits = json.byteLength <= this.#reserved;
    const slack = this.#reserved - json.byteLength;
    if (fits && slack <= this.#dataBytes / 1000) {
      await this.#file.writeAt(framed(json, this.#reserved), 0);
      await this.#file.commit();
      return 8 + this.#reserved + this.#dataBytes;
    }
    const exact = roundUp8(json.byteLength);
    const target = await AtomicFile.create(this.#file.path);
    try {
      await target.append(framed(json, exact));
      for (let off = 0; off < this.#dataBytes; off += COPY_CHUNK) {
        const n = Math.min(COPY_CHUNK, this.#dataBytes - off);
        await target.append(await this.#file.readAt(n, 8 + this.#reserved + off));
      }
      await this.#file.abort();
      await target.commit();
    } catch (err) {
      await target.abort();
      throw err;
    }
    return 8 + exact + this.#dataBytes;
  }

  async abort(): Promise<void> {
    await this.#file.abort();
  }
}

/** u64 length + header JSON space-padded to `size` bytes (the safetensors convention). */
function framed(json: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(8 + size).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(size), true);
  out.set(json, 8);
  return out;
}
