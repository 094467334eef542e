/**
 * Worker side of lib/model/off-thread.ts: parses a safetensors header and, when asked, the
 * inferzip manifest it carries, so multi-megabyte headers do not block the caller's event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { InferzipError } from '../errors.js';
import { parseHeader } from '../safetensors/header.js';
import { FORMAT_KEY, parseManifest } from './manifest.js';

interface Job {
  json: Uint8Array;
  dataSize: number;
  where: string;
  manifest: boolean;
}

const job = workerData as Job;
try {
  const header = parseHeader(job.json, job.dataSize, job.where);
  const manifest =
    job.manifest && header.metadata[FORMAT_KEY] !== undefined ? parseManifest(header.metadata, header.entries.length) : undefined;
  parentPort!.postMessage({ ok: true, header: { ...header, metadata: { ...header.metadata } }, manifest });
} catch (err) {
  const e = err instanceof InferzipError ? err : new InferzipError('INTERNAL', String((err as Error)?.message ?? err));
  parentPort!.postMessage({ ok: false, code: e.code, message: e.message });
}
