/** Atomic safetensors writes: everything goes to a temp file that is renamed into place. */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

import { releaseTemp, sweepStaleTemps, trackTemp } from './temp-files.js';
import { InferzipError, toInferzipError } from '../errors.js';
import type { MetadataPosition } from './header.js';
import { buildHeader, toRawEntries, type SafetensorsInput } from './encode.js';

export interface WriteOptions {
  /** String key/value pairs stored as `__metadata__`. */
  metadata?: Record<string, string>;
  /**
   * Where `__metadata__` goes in the JSON header: 'first' (default, like the reference writer)
   * or 'last'. Pass a reader's `metadataPosition` to rewrite a file byte for byte.
   */
  metadataPosition?: MetadataPosition;
}

/**
 * The rename that publishes a write replaces whatever has the target's name: refuse a target that
 * exists and is not a regular file (a directory, a device such as /dev/full, a FIFO, a socket).
 */
function refuseSpecialTarget(path: string): void {
  let st;
  try {
    st = statSync(path);
  } catch {
    return; // does not exist: fine
  }
  if (!st.isFile()) {
    const kind = st.isDirectory()
      ? 'a directory'
      : st.isFIFO()
        ? 'a named pipe (FIFO)'
        : st.isSocket()
          ? 'a socket'
          : 'a device or other special file';
    throw new InferzipError('INVALID_ARGUMENT', `cannot write '${path}': it is ${kind}, not a regular file (writes replace the target)`);
  }
}

/**
 * A temp path beside the target, so the final rename stays on one filesystem. Temp files of the
 * same target left by dead processes are swept first; the new one is tracked (removed on
 * SIGINT/SIGTERM/exit) until the caller passes it to releaseTemp.
 */
export function tempPathFor(path: string): string {
  refuseSpecialTarget(path);
  sweepStaleTemps(path);
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  trackTemp(tmp);
  return tmp;
}

function asBytes(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function lengthPrefix(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}

/**
 * Writes tensors (in order, with metadata) to `path` atomically. Entries may supply
 * their data through a loader, so a large model is written without holding it whole.
 * @example
 * await writeSafetensors('out.safetensors', [{ name: 'w', dtype: 'f32', shape: [2], data: new Float32Array([1, 2]) }]);
 */
export async function writeSafetensors(path: string, input: SafetensorsInput, options: WriteOptions = {}): Promise<void> {
  const entries = toRawEntries(input);
  const header = buildHeader(entries, options.metadata, options.metadataPosition);
  const tmp = tempPathFor(path);
  let handle;
  try {
    handle = await open(tmp, 'wx');
    await writeAllAsync(handle, lengthPrefix(header.byteLength));
    await writeAllAsync(handle, header);
    for (const e of entries) {
      const data = typeof e.data === 'function' ? await e.data() : e.data;
      if (data.byteLength !== e.byteLength) {
        throw new InferzipError('SHAPE_MISMATCH', `loader for '${e.name}' returned ${data.byteLength} bytes, expected ${e.byteLength}`);
      }
      await writeAllAsync(handle, asBytes(data));
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, path);
    releaseTemp(tmp);
  } catch (err) {
    await handle?.close().catch(() => {});
    await rm(tmp, { force: true }).catch(() => {});
    releaseTemp(tmp);
    throw toInferzipError(err, `writing '${path}'`);
  }
}

/**
 * Synchronous variant of writeSafetensors (loaders must return data synchronously).
 * @example
 * writeSafetensorsSync('out.safetensors', [{ name: 'w', dtype: 'f32', shape: [2], data: new Float32Array([1, 2]) }]);
 */
export function writeSafetensorsSync(path: string, input: SafetensorsInput, options: WriteOptions = {}): void {
  const entries = toRawEntries(input);
  const header = buildHeader(entries, options.metadata, options.metadataPosition);
  const tmp = tempPathFor(path);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx');
    writeAll(fd, lengthPrefix(header.byteLength));
    writeAll(fd, header);
    for (const e of entries) {
      const data = typeof e.data === 'function' ? e.data() : e.data;
      if (data instanceof Promise) throw new InferzipError('INVALID_ARGUMENT', `loader for '${e.name}' is async; use writeSafetensors`);
      if (data.byteLength !== e.byteLength) {
        throw new InferzipError('SHAPE_MISMATCH', `loader for '${e.name}' returned ${data.byteLength} bytes, expected ${e.byteLength}`);
      }
      writeAll(fd, asBytes(data));
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, path);
    releaseTemp(tmp);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    releaseTemp(tmp);
    throw toInferzipError(err, `writing '${path}'`);
  }
}

/** Writes every byte (a write may be partial; chunks stay under the 2 GiB per-call limit). */
async function writeAllAsync(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, Math.min(bytes.byteLength - done, 1 << 30));
    done += bytesWritten;
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, Math.min(bytes.byteLength - done, 1 << 30));
}

/** Writes any bytes atomically (temp file + rename). */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    const h = await open(tmp, 'wx');
    try {
      await writeAllAsync(h, typeof data === 'string' ? Buffer.from(data) : data);
      await h.sync();
    } finally {
      await h.close();
    }
    await rename(tmp, path);
    releaseTemp(tmp);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    releaseTemp(tmp);
    throw toInferzipError(err, `writing '${path}'`);
  }
}
