/**
 * verifyModel: decodes every unit of a compressed model and checks every original tensor
 * (crc32) and file (sha256) without writing anything. Problems are collected, not thrown:
 * a corrupt file gives `ok: false` with the list; only an unreadable file throws.
 * A DFloat11 directory carries no checksums: there every unit is decoded (the decoder
 * validates the whole stream) and its size checked against its matrices.
 */
import { statSync } from 'node:fs';

import type { SafetensorsFile } from '../safetensors/index.js';
import { openCatalog } from './catalog.js';
import { openSafetensorsFileAsync } from './off-thread.js';
import { decodeUnit, readUnit } from './codec.js';
import { toInferzipError, type InferzipError } from '../errors.js';
import { FORMAT_KEY, parseManifest, requireCompressed } from './manifest.js';
import { unitStructureProblems } from './manifest-checks.js';
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
  /** False for DFloat11 checkpoints, which carry no checksums (units are only decoded and validated). */
  checksums: boolean;
  seconds: number;
}

/** The report for a file whose header or manifest cannot be read: a verification failure, not an error. */
function damagedFile(path: string, e: InferzipError, started: number): VerifyModelResult {
  return {
    ok: false,
    tensors: 0,
    units: 0,
    files: 0,
    problems: [{ kind: 'file', name: path, message: e.message }],
    checksums: true,
    seconds: (performance.now() - started) / 1000,
  };
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
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    // SafetensorsFile.open reports it
  }
  if (isDir) return verifyDFloat11(path, options, started);
  let reader: SafetensorsFile;
  let parsedManifest: ReturnType<typeof parseManifest> | undefined;
  try {
    // large headers and manifests are parsed off the main thread
    const opened = await openSafetensorsFileAsync(path, true);
    reader = opened.file;
    parsedManifest = opened.manifest;
  } catch (err) {
    // A damaged header is a verification failure; a missing or unreadable file is an error.
    const e = toInferzipError(err);
    if (e.code !== 'CORRUPT_DATA') throw e;
    return damagedFile(path, e, started);
  }
  if (!parsedManifest && reader.metadata[FORMAT_KEY] === undefined) {
    // a plain safetensors file: an error that says so (NOT_COMPRESSED), not a damaged-file report
    const metadata = reader.metadata;
    reader.close();
    requireCompressed(metadata, path);
  }
  try {
    let manifest;
    try {
      manifest = parsedManifest ?? parseManifest(reader.metadata, reader.tensors.length);
    } catch (err) {
      const e = toInferzipError(err);
      if (e.code !== 'CORRUPT_DATA') throw e;
      return damagedFile(path, e, started);
    }
    for (const message of unitStructureProblems(manifest.units))
      problems.push({ kind: 'file', name: path, message: `manifest: ${message}` });
    await restoreModel(reader, manifest, {
      phase: 'verify',
      checkStored: true,
      onMismatch: (m) => problems.push(m),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.threads !== undefined ? { threads: options.threads } : {}),
    });
    return {
      ok: problems.length === 0,
      tensors: manifest.tensorIndex.size,
      units: manifest.units.length,
      files: manifest.restoreFiles.length,
      problems,
      checksums: true,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    reader.close();
  }
}

/** Decodes every unit of a DFloat11 directory (no checksums exist there). */
async function verifyDFloat11(path: string, options: ModelTaskOptions, started: number): Promise<VerifyModelResult> {
  const problems: Mismatch[] = [];
  using catalog = openCatalog(path);
  const bytesTotal = catalog.units.reduce((s, u) => s + u.elements * 2, 0);
  let bytesDone = 0;
  let unitsDone = 0;
  for (const u of catalog.units) {
    try {
      const data = await decodeUnit(
        await readUnit(catalog.reader, u.prefix),
        undefined,
        options.threads === undefined ? {} : { threads: options.threads },
      );
      if (data.length !== u.members.reduce((s, m) => s + m.elements, 0))
        problems.push({
          kind: 'unit',
          name: u.prefix,
          message: `unit '${u.prefix}' decodes to ${data.length} elements, its matrices need ${u.elements}`,
        });
    } catch (err) {
      problems.push({ kind: 'unit', name: u.prefix, message: `unit '${u.prefix}' cannot be decoded: ${toInferzipError(err).message}` });
    }
    bytesDone += u.elements * 2;
    unitsDone++;
    options.onProgress?.({ phase: 'verify', bytesDone, bytesTotal, unitsDone, unitsTotal: catalog.units.length, current: u.prefix });
  }
  const tensors = catalog.units.reduce((s, u) => s + u.members.length, 0);
  return {
    ok: problems.length === 0,
    tensors,
    units: catalog.units.length,
    files: 0,
    problems,
    checksums: false,
    seconds: (performance.now() - started) / 1000,
  };
}
