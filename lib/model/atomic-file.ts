/**
 * A file that only appears under its final name once it is complete: bytes go to a
 * temp file beside the target (same filesystem), then fsync + rename on commit().
 * abort() (or any failure before commit) leaves nothing behind.
 */
import { existsSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

import { InferzipError, toInferzipError } from '../errors.js';
import { releaseTemp } from '../safetensors/temp-files.js';
import { tempPathFor } from '../safetensors/writer.js';

export class AtomicFile {
  readonly path: string;
  readonly tempPath: string;
  #handle: FileHandle | undefined;
  #position = 0;
  #state: 'open' | 'committed' | 'aborted' = 'open';

  private constructor(path: string, handle: FileHandle, tempPath: string) {
    this.path = path;
    this.tempPath = tempPath;
    this.#handle = handle;
  }

  static async create(path: string): Promise<AtomicFile> {
    const tmp = tempPathFor(path);
    try {
      return new AtomicFile(path, await open(tmp, 'wx+'), tmp);
    } catch (err) {
      releaseTemp(tmp);
      // ENOENT here means the folder is missing: name it, not the temp file nobody asked for
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !existsSync(dirname(path))) {
        throw new InferzipError('IO_ERROR', `cannot create '${path}': the output directory '${dirname(path)}' does not exist`, {
          cause: err,
        });
      }
      throw toInferzipError(err, `creating '${path}'`);
    }
  }

  /** Bytes appended so far (the position of the next append). */
  get position(): number {
    return this.#position;
  }

  #live(): FileHandle {
    if (!this.#handle || this.#state !== 'open') throw new InferzipError('INTERNAL', `'${this.path}' is already ${this.#state}`);
    return this.#handle;
  }

  /** Appends bytes at the current position. */
  async append(bytes: Uint8Array): Promise<void> {
    await this.writeAt(bytes, this.#position);
    this.#position += bytes.byteLength;
  }

  /** Writes bytes at an absolute position (does not move the append position). */
  async writeAt(bytes: Uint8Array, position: number): Promise<void> {
    const h = this.#live();
    let done = 0;
    while (done < bytes.byteLength) {
      const chunk = bytes.subarray(done, done + Math.min(bytes.byteLength - done, 1 << 30));
      let bytesWritten: number;
      try {
        ({ bytesWritten } = await h.write(chunk, 0, chunk.byteLength, position + done));
      } catch (err) {
        // ENOSPC, EIO, EFBIG...: typed, with the file it was for
        throw toInferzipError(err, `writing '${this.path}' (temporary '${this.tempPath}')`);
      }
      if (bytesWritten <= 0) throw new InferzipError('IO_ERROR', `writing '${this.path}' made no progress (disk full?)`);
      done += bytesWritten;
    }
  }

  /** Moves the append position (the gap, if any, is filled later with writeAt). */
  seek(position: number): void {
    this.#live();
    this.#position = position;
  }

  /** Reads back bytes already written (used when the data section has to move). */
  async readAt(length: number, position: number): Promise<Uint8Array> {
    const h = this.#live();
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await h.read(out, done, Math.min(length - done, 1 << 30), position + done));
      } catch (err) {
        throw toInferzipError(err, `reading back '${this.tempPath}'`);
      }
      if (bytesRead === 0) throw new InferzipError('IO_ERROR', `'${this.tempPath}' is shorter than expected`);
      done += bytesRead;
    }
    return out;
  }

  /** Flushes to disk and renames into place. */
  async commit(): Promise<void> {
    const h = this.#live();
    try {
      await h.sync();
      await h.close();
      this.#handle = undefined;
      await rename(this.tempPath, this.path);
      this.#state = 'committed';
      releaseTemp(this.tempPath);
    } catch (err) {
      await this.abort();
      throw toInferzipError(err, `writing '${this.path}'`);
    }
  }

  /** Discards the temp file. Safe to call more than once, and after commit (then a no-op). */
  async abort(): Promise<void> {
    if (this.#state === 'committed') return;
    this.#state = 'aborted';
    const h = this.#handle;
    this.#handle = undefined;
    await h?.close().catch(() => {});
    await rm(this.tempPath, { force: true }).catch(() => {});
    releaseTemp(this.tempPath);
  }
}
