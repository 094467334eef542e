/**
 * Reads safetensors files tensor by tensor with positional reads, so files of any size
 * (over 2 GiB, too) never have to fit in memory at once.
 */
import { closeSync, constants as fsConstants, fstatSync, openSync, read as readCb, readSync } from 'node:fs';
import { promisify } from 'node:util';

import { InferzipError, check } from '../errors.js';
import { tensor, viewBytes, type Tensor } from '../tensor.js';
import { tensorDType } from './dtypes.js';
import { parseHeader, parseHeaderLength, type MetadataPosition, type ParsedHeader, type SafetensorsEntry } from './header.js';

const readAsync = promisify(readCb);

/** What every safetensors reader offers (a single file, a shard set or an in-memory buffer). */
export interface SafetensorsReader extends Disposable {
  /** Tensors in header order (shard order, then header order, for sharded models). */
  readonly tensors: readonly SafetensorsEntry[];
  /** `__metadata__` of the (first) file. */
  readonly metadata: Readonly<Record<string, string>>;
  has(name: string): boolean;
  /** The header entry of a tensor; throws INVALID_ARGUMENT for unknown names. */
  entry(name: string): SafetensorsEntry;
  /** The raw little-endian bytes of a tensor. */
  readBytes(name: string): Promise<Uint8Array>;
  readBytesSync(name: string): Uint8Array;
  /** A tensor as a typed array (UNSUPPORTED for dtypes inferzip has no array type for, e.g. F64). */
  read(name: string): Promise<Tensor>;
  readSync(name: string): Tensor;
  close(): void;
}

export function entryToTensor(entry: SafetensorsEntry, bytes: Uint8Array): Tensor {
  const dtype = tensorDType(entry.dtype);
  if (!dtype) {
    throw new InferzipError(
      'UNSUPPORTED',
      `tensor '${entry.name}' is ${entry.dtype}, which has no inferzip tensor type; use readBytes() for its raw bytes`,
    );
  }
  return tensor(dtype, entry.shape, viewBytes(dtype, bytes));
}

/** Shared lookup logic of the readers. */
export abstract class BaseReader implements SafetensorsReader {
  abstract readonly tensors: readonly SafetensorsEntry[];
  abstract readonly metadata: Readonly<Record<string, string>>;
  #index: Map<string, SafetensorsEntry> | undefined;

  protected index(): Map<string, SafetensorsEntry> {
    this.#index ??= new Map(this.tensors.map((e) => [e.name, e]));
    return this.#index;
  }
  has(name: string): boolean {
    return this.index().has(name);
  }
  entry(name: string): SafetensorsEntry {
    const e = this.index().get(name);
    if (!e) throw new InferzipError('INVALID_ARGUMENT', `no tensor named '${name}' (the file has ${this.tensors.length} tensors)`);
    return e;
  }
  abstract readBytes(name: string): Promise<Uint8Array>;
  abstract readBytesSync(name: string): Uint8Array;
  async read(name: string): Promise<Tensor> {
    return entryToTensor(this.entry(name), await this.readBytes(name));
  }
  readSync(name: string): Tensor {
    return entryToTensor(this.entry(name), this.readBytesSync(name));
  }
  abstract close(): void;
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Closes the descriptor of a reader that was dropped without close()/dispose(), so a program
 * that forgets to dispose does not run out of descriptors (EMFILE). The held value is a box
 * that close() empties (and the registration is removed), so a descriptor is closed once.
 */
const dropped = new FinalizationRegistry<{ fd: number | undefined }>((box) => {
  if (box.fd === undefined) return;
  try {
    closeSync(box.fd);
  } catch {
    // already gone: nothing to release
  }
  box.fd = undefined;
});

/**
 * Opens `path` for reading without blocking (a FIFO opened plainly waits forever for a writer),
 * then refuses anything that is not a regular file before a byte is read.
 */
export function openRegularFile(path: string, what = 'file'): number {
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  } catch (err) {
    throw new InferzipError('IO_ERROR', `cannot open '${path}': ${(err as Error).message}`, { cause: err });
  }
  let kind: string | undefined;
  try {
    const st = fstatSync(fd);
    if (!st.isFile())
      kind = st.isDirectory()
        ? 'a directory'
        : st.isFIFO()
          ? 'a named pipe (FIFO)'
          : st.isSocket()
            ? 'a socket'
            : st.isCharacterDevice() || st.isBlockDevice()
              ? 'a device'
              : 'not a regular file';
  } catch (err) {
    closeSync(fd);
    throw new InferzipError('IO_ERROR', `cannot stat '${path}': ${(err as Error).message}`, { cause: err });
  }
  if (kind !== undefined) {
    closeSync(fd);
    throw new InferzipError('INVALID_ARGUMENT', `'${path}' is ${kind}, expected a regular ${what}`);
  }
  return fd;
}

/**
 * One .safetensors file on disk.
 * @example
 * using file = openSafetensors('model.safetensors');
 * const t = await file.read('lm_head.weight');
 */
export class SafetensorsFile extends BaseReader {
  readonly path: string;
  readonly tensors: readonly SafetensorsEntry[];
  readonly metadata: Readonly<Record<string, string>>;
  /** The raw JSON header bytes (for byte-exact rewrites). */
  readonly headerBytes: Uint8Array;
  /** File offset where the data section starts. */
  readonly dataStart: number;
  /** Where `__metadata__` sat in the header (see WriteOptions.metadataPosition). */
  readonly metadataPosition: MetadataPosition;
  readonly fileSize: number;
  readonly #box: { fd: number | undefined };

  get #fd(): number | undefined {
    return this.#box.fd;
  }

  private constructor(path: string, fd: number, parsed?: { fileSize: number; headerBytes: Uint8Array; header: ParsedHeader }) {
    super();
    this.path = path;
    this.#box = { fd };
    if (parsed) {
      this.fileSize = parsed.fileSize;
      this.headerBytes = parsed.headerBytes;
      this.dataStart = 8 + parsed.headerBytes.byteLength;
      this.tensors = parsed.header.entries;
      this.metadata = parsed.header.metadata;
      this.metadataPosition = parsed.header.metadataPosition;
      dropped.register(this, this.#box, this.#box);
      return;
    }
    try {
      this.fileSize = fstatSync(fd).size;
      const prefix = new Uint8Array(Math.min(8, this.fileSize));
      readFully(fd, prefix, 0);
      const len = parseHeaderLength(prefix, this.fileSize, path);
      this.headerBytes = new Uint8Array(len);
      readFully(fd, this.headerBytes, 8);
      this.dataStart = 8 + len;
      const parsed = parseHeader(this.headerBytes, this.fileSize - this.dataStart, path);
      this.tensors = parsed.entries;
      this.metadata = parsed.metadata;
      this.metadataPosition = parsed.metadataPosition;
    } catch (err) {
      closeSync(fd);
      this.#box.fd = undefined;
      throw err;
    }
    dropped.register(this, this.#box, this.#box);
  }

  /** Opens and validates a file (IO_ERROR if it cannot be opened, CORRUPT_DATA if malformed). */
  static open(path: string): SafetensorsFile {
    return new SafetensorsFile(path, openRegularFile(path, 'safetensors file'));
  }

  /**
   * @internal A reader over `fd` (opened with openRegularFile) whose header was read and parsed
   * elsewhere (lib/model/off-thread.ts parses large headers on a worker thread).
   */
  static fromParsed(path: string, fd: number, fileSize: number, headerBytes: Uint8Array, header: ParsedHeader): SafetensorsFile {
    return new SafetensorsFile(path, fd, { fileSize, headerBytes, header });
  }

  get closed(): boolean {
    return this.#fd === undefined;
  }

  #fdOrThrow(): number {
    if (this.#fd === undefined) throw new InferzipError('DISPOSED', `safetensors file '${this.path}' was closed`);
    return this.#fd;
  }

  /** Raw bytes of [offset, offset+length) of the data section. */
  readRangeSync(offset: number, length: number): Uint8Array {
    const fd = this.#fdOrThrow();
    check(
      offset >= 0 && length >= 0 && this.dataStart + offset + length <= this.fileSize,
      `range [${offset}, +${length}) is outside the data section of '${this.path}'`,
      'CORRUPT_DATA',
    );
    const out = allocBytes(length, this.path);
    readFully(fd, out, this.dataStart + offset);
    return out;
  }

  async readRange(offset: number, length: number): Promise<Uint8Array> {
    const fd = this.#fdOrThrow();
    check(
      offset >= 0 && length >= 0 && this.dataStart + offset + length <= this.fileSize,
      `range [${offset}, +${length}) is outside the data section of '${this.path}'`,
      'CORRUPT_DATA',
    );
    const out = allocBytes(length, this.path);
    let done = 0;
    while (done < length) {
      const chunk = Math.min(length - done, 1 << 30);
      const { bytesRead } = await readAsync(fd, out, done, chunk, this.dataStart + offset + done);
      if (bytesRead === 0) throw new InferzipError('CORRUPT_DATA', `'${this.path}' ended early (truncated while reading?)`);
      done += bytesRead;
    }
    return out;
  }

  readBytesSync(name: string): Uint8Array {
    const e = this.entry(name);
    return this.readRangeSync(e.dataOffsets[0], e.byteLength);
  }

  async readBytes(name: string): Promise<Uint8Array> {
    const e = this.entry(name);
    return this.readRange(e.dataOffsets[0], e.byteLength);
  }

  close(): void {
    const fd = this.#box.fd;
    if (fd === undefined) return;
    this.#box.fd = undefined;
    dropped.unregister(this.#box);
    closeSync(fd);
  }
}

/** A byte array for one read; over the engine's limit or memory it is a typed error naming the file. */
function allocBytes(length: number, path: string): Uint8Array {
  try {
    return new Uint8Array(length);
  } catch (err) {
    throw new InferzipError(
      'OUT_OF_MEMORY',
      `cannot hold ${length} bytes of '${path}' in one array (${(err as Error).message}); read such a tensor in parts with readRange()`,
      { cause: err },
    );
  }
}

function readFully(fd: number, out: Uint8Array, position: number): void {
  let done = 0;
  while (done < out.byteLength) {
    const n = readSync(fd, out, done, Math.min(out.byteLength - done, 1 << 30), position + done);
    if (n === 0) throw new InferzipError('CORRUPT_DATA', `file ended early at byte ${position + done} (truncated?)`);
    done += n;
  }
}

/**
 * Reads a small text file (config.json, a shard index) after refusing anything that is not a
 * regular file: readFileSync on a FIFO would wait forever. `maxBytes` bounds the allocation.
 */
export function readRegularTextFile(path: string, maxBytes = 64 << 20): string {
  return new TextDecoder().decode(readRegularFileBytes(path, maxBytes));
}

/** The bytes of a small regular file, exactly as stored (see readRegularTextFile). */
export function readRegularFileBytes(path: string, maxBytes = 64 << 20): Uint8Array {
  const fd = openRegularFile(path);
  try {
    const size = fstatSync(fd).size;
    if (size > maxBytes)
      throw new InferzipError('INVALID_ARGUMENT', `'${path}' is ${size} bytes, over the ${maxBytes}-byte limit for a metadata file`);
    const out = new Uint8Array(size);
    readFully(fd, out, 0);
    return out;
  } finally {
    closeSync(fd);
  }
}
