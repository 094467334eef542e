/**
 * Rebuilds the original files of a compressed model as byte streams, checking every
 * tensor's crc32 and every file's sha256 on the way. decompressModel writes the streams;
 * verifyModel only hashes them.
 */
import { createHash } from 'node:crypto';
import { crc32Hex } from '../checksum.js';

import { InferzipError, toInferzipError } from '../errors.js';
import type { SafetensorsReader } from '../safetensors/index.js';
import { decodeUnit, readUnit, unitCrc32, unitElements } from './codec.js';
import { latin1ToBytes, segmentsOf, type ParsedManifest, type RestoreFile } from './manifest.js';
import { checkAborted, type ModelProgress } from './progress.js';

export interface Mismatch {
  kind: 'tensor' | 'unit' | 'file' | 'index' | 'gap';
  name: string;
  message: string;
}

export interface RestoreSink {
  beginFile(index: number, file: RestoreFile): Promise<void>;
  /** Next bytes of the current file, in order. */
  write(bytes: Uint8Array): Promise<void>;
}

export interface RestoreOptions {
  phase: ModelProgress['phase'];
  sink?: RestoreSink;
  /** Also check each unit's stored bytes against their crc32. */
  checkStored?: boolean;
  /** Decoder threads (default: all cores). */
  threads?: number;
  /** Called for each problem found; throw from it to stop at the first one. */
  onMismatch(m: Mismatch): void;
  onProgress?: (p: ModelProgress) => void;
  signal?: AbortSignal;
}

/**
 * Checks a unit's buffers against what the manifest says it holds, then decodes it.
 * With `onStoredMismatch`, the stored bytes are also compared with their crc32 (verify
 * does; rebuilding need not, the rebuilt tensors are checked anyway); decoding goes on so
 * the damaged tensors get named too.
 */
export async function decodeManifestUnit(
  reader: SafetensorsReader,
  manifest: ParsedManifest,
  prefix: string,
  onStoredMismatch?: (message: string) => void,
  threads?: number,
): Promise<Uint16Array> {
  const unit = manifest.units.find((u) => u.prefix === prefix);
  if (!unit) throw new InferzipError('INVALID_ARGUMENT', `no unit '${prefix}'`);
  const encoded = await readUnit(reader, prefix);
  if (onStoredMismatch && unit.crc32 !== undefined) {
    const crc = unitCrc32(encoded);
    if (crc !== unit.crc32)
      onStoredMismatch(`the stored buffers of unit '${prefix}' do not match their checksum (crc32 ${crc}, expected ${unit.crc32})`);
  }
  const counts = unit.members.map((n) => manifest.tensorIndex.get(n)!.entry.byteLength / 2);
  const total = counts.reduce((s, c) => s + c, 0);
  if (unitElements(encoded) !== total)
    throw new InferzipError(
      'CORRUPT_DATA',
      `unit '${prefix}' holds ${unitElements(encoded)} elements, but its ${counts.length} tensors need ${total}`,
    );
  const sp = encoded.splitPositions;
  if (sp.length !== counts.length - 1)
    throw new InferzipError('CORRUPT_DATA', `unit '${prefix}' has ${sp.length} split positions for ${counts.length} tensors`);
  let acc = 0;
  for (let i = 0; i < sp.length; i++) {
    acc += counts[i]!;
    if (sp[i] !== BigInt(acc))
      throw new InferzipError('CORRUPT_DATA', `unit '${prefix}': split position ${i} is ${sp[i]}, expected ${acc}`);
  }
  return decodeUnit(encoded, undefined, threads === undefined ? {} : { threads });
}

export async function restoreModel(reader: SafetensorsReader, manifest: ParsedManifest, options: RestoreOptions): Promise<void> {
  const bytesTotal = manifest.restoreFiles.reduce((s, f) => s + f.size, 0);
  let bytesDone = 0;
  let unitsDone = 0;
  const unitsTotal = manifest.units.length;
  const report = (current?: string): void =>
    options.onProgress?.({ phase: options.phase, bytesDone, bytesTotal, unitsDone, unitsTotal, ...(current ? { current } : {}) });

  // The last few decoded units: a block's tensors are usually contiguous, so each unit is
  // decoded once; interleaved layouts still work, at the cost of decoding again.
  const cache = new Map<string, Promise<Uint16Array>>();
  const decoded = new Set<string>();
  const storedReported = new Set<string>();
  const unitData = (prefix: string): Promise<Uint16Array> => {
    let p = cache.get(prefix);
    if (p) {
      cache.delete(prefix);
      cache.set(prefix, p);
      return p;
    }
    const onStored = (message: string): void => {
      // A unit decoded again after eviction is reported once.
      if (storedReported.has(prefix)) return;
      storedReported.add(prefix);
      options.onMismatch({ kind: 'unit', name: prefix, message });
    };
    p = decodeManifestUnit(reader, manifest, prefix, options.checkStored ? onStored : undefined, options.threads);
    p.catch(() => {});
    cache.set(prefix, p);
    while (cache.size > 3) cache.delete(cache.keys().next().value!);
    return p;
  };
  // Units in the order the rebuilt files need them: while one unit's tensors are checked
  // and written, the next one decodes.
  const unitOrder: string[] = [];
  for (const file of manifest.restoreFiles) {
    for (const seg of segmentsOf(file.tensors, file.dataSize)) {
      const p = seg.kind === 'tensor' ? manifest.unitOf.get(seg.entry.name) : undefined;
      if (p !== undefined && unitOrder[unitOrder.length - 1] !== p) unitOrder.push(p);
    }
  }
  const nextUnit = new Map<string, string>();
  for (let i = 0; i + 1 < unitOrder.length; i++) if (!nextUnit.has(unitOrder[i]!)) nextUnit.set(unitOrder[i]!, unitOrder[i + 1]!);
  const failedUnits = new Set<string>();

  /** The original bytes of a tensor, or undefined when they cannot be produced. */
  const tensorBytes = async (name: string): Promise<Uint8Array | undefined> => {
    const { entry } = manifest.tensorIndex.get(name)!;
    const prefix = manifest.unitOf.get(name);
    if (prefix === undefined) {
      if (!reader.has(name)) {
        options.onMismatch({ kind: 'tensor', name, message: `tensor '${name}' is missing from the compressed file` });
        return undefined;
      }
      const stored = reader.entry(name);
      if (stored.dtype !== entry.dtype || stored.byteLength !== entry.byteLength || stored.shape.join(',') !== entry.shape.join(',')) {
        options.onMismatch({
          kind: 'tensor',
          name,
          message: `tensor '${name}' is stored as ${stored.dtype}[${stored.shape.join(', ')}], but the original is ${entry.dtype}[${entry.shape.join(', ')}]`,
        });
        return undefined;
      }
      return reader.readBytes(name);
    }
    if (failedUnits.has(prefix)) return undefined;
    let data: Uint16Array;
    try {
      data = await unitData(prefix);
    } catch (err) {
      failedUnits.add(prefix);
      const e = toInferzipError(err);
      options.onMismatch({ kind: 'unit', name: prefix, message: `unit '${prefix}' cannot be decoded: ${e.message}` });
      return undefined;
    }
    if (!decoded.has(prefix)) {
      decoded.add(prefix);
      unitsDone++;
      const next = nextUnit.get(prefix);
      if (next !== undefined && !cache.has(next) && !failedUnits.has(next)) void unitData(next);
    }
    const unit = manifest.units.find((u) => u.prefix === prefix)!;
    let offset = 0;
    for (const m of unit.members) {
      if (m === name) break;
      offset += manifest.tensorIndex.get(m)!.entry.byteLength / 2;
    }
    return new Uint8Array(data.buffer, data.byteOffset + offset * 2, entry.byteLength);
  };

  for (const [fi, file] of manifest.restoreFiles.entries()) {
    await options.sink?.beginFile(fi, file);
    const sha = createHash('sha256');
    let complete = true;
    const emit = async (bytes: Uint8Array): Promise<void> => {
      sha.update(bytes);
      await options.sink?.write(bytes);
      bytesDone += bytes.byteLength;
    };
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(file.headerLength), true);
    await emit(prefix);
    await emit(file.headerBytes);
    const gaps = new Map(manifest.gaps.filter((g) => g.file === fi).map((g) => [g.offset, g]));
    for (const seg of segmentsOf(file.tensors, file.dataSize)) {
      checkAborted(options.signal);
      if (seg.kind === 'gap') {
        const g = gaps.get(seg.offset);
        const stored = g && reader.has(g.name) ? reader.entry(g.name) : undefined;
        if (!g || g.length !== seg.length || !stored || stored.dtype !== 'U8' || stored.byteLength !== seg.length) {
          options.onMismatch({
            kind: 'gap',
            name: `${file.name}@${seg.offset}`,
            message: `the ${seg.length} bytes at data offset ${seg.offset} of '${file.name}' are missing from the compressed file`,
          });
          complete = false;
          continue;
        }
        await emit(await reader.readBytes(g.name));
        continue;
      }
      const name = seg.entry.name;
      const bytes = await tensorBytes(name);
      if (!bytes) {
        complete = false;
        continue;
      }
      const crc = crc32Hex(bytes);
      if (crc !== manifest.crc32[name]) {
        options.onMismatch({
          kind: 'tensor',
          name,
          message: `tensor '${name}' does not match its checksum (crc32 ${crc}, expected ${manifest.crc32[name]})`,
        });
        complete = false;
      }
      await emit(bytes);
      report();
    }
    const digest = sha.digest('hex');
    if (complete && digest !== file.sha256) {
      options.onMismatch({ kind: 'file', name: file.name, message: `rebuilt '${file.name}' does not match the original's sha256` });
    }
    report(file.name);
  }
  if (manifest.index) {
    const bytes = latin1ToBytes(manifest.index.data);
    if (createHash('sha256').update(bytes).digest('hex') !== manifest.index.sha256) {
      options.onMismatch({
        kind: 'index',
        name: manifest.index.name,
        message: `the stored '${manifest.index.name}' does not match its sha256`,
      });
    }
  }
}
