/**
 * Parses large safetensors headers (and the inferzip manifest inside) on a worker thread for the
 * async entry points: a 96 MB header used to block the event loop for seconds even there.
 * Headers under OFF_THREAD_BYTES are parsed inline (a worker costs ~30 ms to start).
 */
import { closeSync, existsSync, fstatSync, read as readCb } from 'node:fs';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';

import { InferzipError, type InferzipErrorCode } from '../errors.js';
import { parseHeader, parseHeaderLength, type ParsedHeader } from '../safetensors/header.js';
import { SafetensorsFile, openRegularFile } from '../safetensors/reader.js';
import { FORMAT_KEY, parseManifest, type ParsedManifest } from './manifest.js';

const readAsync = promisify(readCb);

/** Headers from this size on are parsed off the main thread by the async entry points. */
export const OFF_THREAD_BYTES = 4 << 20;

/** Parses counted off the main thread (for tests). */
export const offThreadStats = { parses: 0 };

export interface ParsedFileHeader {
  header: ParsedHeader;
  manifest?: ParsedManifest;
}

function startWorker(workerData: unknown): Worker {
  const js = new URL('./parse-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(js))) return new Worker(js, { workerData });
  // Running from the TypeScript sources (tests, tsx): register tsx's loader in the worker first.
  // the ESM build of tsx's API (createRequire resolves the CommonJS one)
  const tsxApi = pathToFileURL(
    createRequire(import.meta.url)
      .resolve('tsx/esm/api')
      .replace(/\.cjs$/, '.mjs'),
  ).href;
  const entry = new URL('./parse-worker.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(code, { eval: true, workerData });
}

/** parseHeader (+ parseManifest when `manifest` and the header is an inferzip file), off-thread when large. */
export async function parseFileHeader(json: Uint8Array, dataSize: number, where: string, manifest: boolean): Promise<ParsedFileHeader> {
  if (json.byteLength < OFF_THREAD_BYTES) {
    const header = parseHeader(json, dataSize, where);
    return {
      header,
      ...(manifest && header.metadata[FORMAT_KEY] !== undefined ? { manifest: parseManifest(header.metadata, header.entries.length) } : {}),
    };
  }
  offThreadStats.parses++;
  type Reply = { ok: true; header: ParsedHeader; manifest?: ParsedManifest } | { ok: false; code: InferzipErrorCode; message: string };
  const reply = await new Promise<Reply>((resolve, reject) => {
    const worker = startWorker({ json, dataSize, where, manifest });
    worker.once('message', (m: Reply) => {
      resolve(m);
      void worker.terminate();
    });
    worker.once('error', (err) => reject(new InferzipError('INTERNAL', `header parser thread failed: ${err.message}`, { cause: err })));
    worker.once('exit', (code) => {
      if (code !== 0) reject(new InferzipError('INTERNAL', `header parser thread exited with code ${code}`));
    });
  });
  if (!reply.ok) throw new InferzipError(reply.code, reply.message);
  // structured clone drops null prototypes: lookups of file-given names must not reach Object.prototype
  const header = { ...reply.header, metadata: Object.assign(Object.create(null) as Record<string, string>, reply.header.metadata) };
  if (reply.manifest) reply.manifest.crc32 = Object.assign(Object.create(null) as Record<string, string>, reply.manifest.crc32);
  return { header, ...(reply.manifest ? { manifest: reply.manifest } : {}) };
}

/**
 * SafetensorsFile.open for the async entry points: the header is read with async reads and
 * parsed (with the inferzip manifest, when `manifest` is set) off the main thread when large.
 */
export async function openSafetensorsFileAsync(
  path: string,
  manifest: boolean,
): Promise<{ file: SafetensorsFile; manifest?: ParsedManifest }> {
  const fd = openRegularFile(path, 'safetensors file');
  try {
    const fileSize = fstatSync(fd).size;
    const prefix = await readAt(fd, Math.min(8, fileSize), 0, path);
    const len = parseHeaderLength(prefix, fileSize, path);
    const headerBytes = await readAt(fd, len, 8, path);
    const parsed = await parseFileHeader(headerBytes, fileSize - 8 - len, path, manifest);
    return {
      file: SafetensorsFile.fromParsed(path, fd, fileSize, headerBytes, parsed.header),
      ...(parsed.manifest ? { manifest: parsed.manifest } : {}),
    };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

async function readAt(fd: number, length: number, position: number, path: string): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await readAsync(fd, out, done, Math.min(length - done, 1 << 30), position + done);
    if (bytesRead === 0) throw new InferzipError('CORRUPT_DATA', `'${path}' ended early at byte ${position + done} (truncated?)`);
    done += bytesRead;
  }
  return out;
}
