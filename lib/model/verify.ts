/**
 * verifyModel: decodes every unit of a compressed model and checks every original tensor
 * (crc32) and file (sha256) without writing anything. Problems are collected, not thrown:
 * a corrupt file gives `ok: false` with the list; only an unreadable file throws.
 */
import { SafetensorsFile } from '../safetensors/index.js';
import { toInferzipError } from '../errors.js';
import { parseManifest } from './manifest.js';
import { checkThreads, type ModelTaskOptions } from './progress.js';
import { restoreModel, type Mismatch } from './restore.js';

export interface VerifyModelResult {
  ok: boolean;
  /** Original tensors checked (all of them when ok). */
  tensors: number;
  units: number;
  files: number;
  /** What did not match (empty when ok). */
  problems: Mismatch[];
  seconds: number;
}

/**
 * @example
 *   const r = await verifyModel('/tmp/stories.df11.safetensors');
 *   if (!r.ok) console.error(r.problems);
 */
export async function verifyModel(path: string, options: ModelTaskOptions = {}): Promise<VerifyModelResult> {
  const started = performance.now();
  checkThreads(options.threads);
  const problems: Mismatch[] = [];
  let reader: SafetensorsFile;
  try {
    reader = SafetensorsFile.open(path);
  } catch (err) {
    // A damaged header is a verification failure; a missing or unreadable file is an error.
    const e = toInferzipError(err);
    if (e.code !== 'CORRUPT_DATA') throw e;
    return { ok: false, tensors: 0, units: 0, files: 0, problems: [{ kind: 'file', name: path, message: e.message }], seconds: (performance.now() - started) / 1000 };
  }
  try {
    let manifest;
    try {
      manifest = parseManifest(reader.metadata);
    } catch (err) {
      const e = toInferzipError(err);
      if (e.code !== 'CORRUPT_DATA') throw e;
      return { ok: false, tensors: 0, units: 0, files: 0, problems: [{ kind: 'file', name: path, message: e.message }], seconds: (performance.now() - started) / 1000 };
    }
    await restoreModel(reader, manifest, {
      phase: 'verify',
      onMismatch: (m) => problems.push(m),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    return { ok: problems.length === 0, tensors: manifest.tensorIndex.size, units: manifest.units.length, files: manifest.restoreFiles.length, problems, seconds: (performance.now() - started) / 1000 };
  } finally {
    reader.close();
  }
}
