/**
 * compressModel: a Hugging Face safetensors model (file or shards) in, one DFloat11-layout
 * safetensors file out. Reads the input once, in file order; holds at most the tensors of
 * the unit being assembled (a transformer block), never the whole model; writes to a temp
 * file that is renamed into place only when complete.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { crc32Hex } from '../checksum.js';

import { UNIT_BUFFERS } from '../df11/unit-buffers.js';
import { refuseExistingOutputs, type OverwriteOption } from './no-clobber.js';
import { refuseSameFile } from './same-file.js';
import { InferzipError } from '../errors.js';
import { writeFileAtomic, type SafetensorsEntry } from '../safetensors/index.js';
import { dfloat11ConfigJson, findModelConfig } from './dfloat11-config.js';
import { encodeUnit, unitBytes, unitCrc32, unitElements, unitEntries } from './codec.js';
import {
  FORMAT_KEY,
  FORMAT_VERSION,
  manifestMetadata,
  bytesToLatin1,
  parseManifest,
  segmentsOf,
  type Manifest,
  type ManifestFile,
  type ManifestUnit,
} from './manifest.js';
import { planModel, type PlanOptions, type PlannedUnit } from './plan.js';
import { checkAborted, checkThreads, type ModelTaskOptions } from './progress.js';
import { openModelSource } from './source.js';
import { entropyBits, sparseHistogram } from './stats.js';
import { OutputLayout, type OutputEntry } from './output-layout.js';

export interface CompressModelOptions extends ModelTaskOptions, PlanOptions, OverwriteOption {}

export interface CompressModelResult {
  /** The compressed file (`<dir>/model.safetensors` when the output was a directory). */
  output: string;
  /** config.json written beside it (directory output: a DFloat11 model directory). */
  config?: string;
  /** Bytes of the original model (all shards). */
  inputBytes: number;
  /** Bytes of the compressed file. */
  outputBytes: number;
  /** BF16 elements in the whole model (compressed or not). */
  bf16Weights: number;
  /** BF16 elements stored in compressed units. */
  compressedWeights: number;
  units: number;
  verbatimTensors: number;
  /** BF16 matrices kept raw because they hold exponents DFloat11 cannot code (Inf, NaN, |x| >= 2^113). */
  rawTensors: string[];
  /** Bytes of all unit buffers. */
  unitBytes: number;
  /** unitBytes * 8 / compressedWeights. */
  bitsPerWeight: number;
  /** 8 + exponent entropy of the compressed weights: the lossless bound for bitsPerWeight. */
  entropyBound: number;
  /** outputBytes * 8 / bf16Weights: the whole file, headers, norms and metadata included. */
  fileBitsPerWeight: number;
  seconds: number;
}

/** Name of the tensor that keeps the bytes between original tensors (rare; padding). */
export function gapTensorName(file: number, offset: number): string {
  return `__inferzip__.gap.${file}.${offset}`;
}

/**
 * Compresses a model. `input`: a .safetensors file, a model directory, or an index json.
 * `output`: the compressed .safetensors file to write, or a directory (existing, or a path
 * ending in `/`) to get a DFloat11 model directory: `model.safetensors` plus a config.json
 * (the input's config.json, when there is one, with `dfloat11_config` added).
 * @example
 *   const r = await compressModel('fixtures/stories260K', '/tmp/stories.df11.safetensors',
 *     { onProgress: (p) => console.log(p.unitsDone, '/', p.unitsTotal) });
 *   console.log(r.bitsPerWeight, r.entropyBound);
 */
export async function compressModel(input: string, output: string, options: CompressModelOptions = {}): Promise<CompressModelResult> {
  const started = performance.now();
  checkThreads(options.threads);
  checkAborted(options.signal);
  if (typeof output !== 'string' || output.length === 0) throw new InferzipError('INVALID_ARGUMENT', 'output must be a file path');
  let outStat;
  try {
    outStat = statSync(output);
  } catch {
    // does not exist yet: fine
  }
  // A directory output becomes a DFloat11 model directory: model.safetensors + config.json.
  const configPath = outStat?.isDirectory() || /[/\\]$/.test(output) ? join(output, 'config.json') : undefined;
  // Checked first, and the input opened before mkdir: a refused or failed run creates no directory
  refuseExistingOutputs(configPath ? [join(output, 'model.safetensors'), configPath] : [output], options, 'compressModel');
  using src = openModelSource(input);
  if (configPath) {
    try {
      mkdirSync(output, { recursive: true });
    } catch (err) {
      throw new InferzipError('IO_ERROR', `cannot create output directory '${output}': ${(err as Error).message}`, { cause: err });
    }
    output = join(output, 'model.safetensors');
  }

  refuseSameFile(
    src.files.map((f) => f.path),
    configPath ? [output, configPath] : [output],
    'compressModel',
  );
  const inOrder: SafetensorsEntry[] = src.files.flatMap((f) => [...f.tensors].sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0]));
  const plan = planModel(inOrder, options);
  const unitOfMember = new Map<string, PlannedUnit>();
  for (const u of plan.units) for (const m of u.members) unitOfMember.set(m, u);

  const inputBytes = src.files.reduce((s, f) => s + f.fileSize, 0);
  const bf16Weights = inOrder.filter((e) => e.dtype === 'BF16').reduce((s, e) => s + e.byteLength / 2, 0);
  let bytesDone = 0;
  let unitsDone = 0;
  const report = (current?: string): void => {
    options.onProgress?.({
      phase: 'compress',
      bytesDone,
      bytesTotal: inputBytes,
      unitsDone,
      unitsTotal: plan.units.length,
      ...(current ? { current } : {}),
    });
  };

  const manifest: Manifest = {
    version: 1,
    source: src.kind,
    files: [],
    units: [],
    crc32: Object.create(null) as Record<string, string>,
    gaps: [],
    histogram: [],
  };
  if (src.index)
    manifest.index = {
      name: src.index.name,
      data: bytesToLatin1(src.index.bytes),
      sha256: createHash('sha256').update(src.index.bytes).digest('hex'),
    };
  const modelHist = new Float64Array(256);
  const rawTensors: string[] = [];
  let compressedWeights = 0;
  let totalUnitBytes = 0;
  let verbatimTensors = 0;

  // Writes run in order on a queue, so reading and hashing the next tensors overlaps the
  // encoding of the current unit. One encode at a time keeps memory near two units.
  let queue: Promise<void> = Promise.resolve();
  let failure: { error: unknown } | undefined;
  const layout = await OutputLayout.create(
    output,
    estimateEntries(
      src.files.map((f) => f.tensors),
      plan.units,
      src.files,
    ),
    placeholderMetadata(src.files, plan.units, manifest),
  );
  try {
    const pending = new Map<string, Map<string, Uint8Array>>();
    const enqueue = (task: () => Promise<void>): void => {
      queue = queue
        .then(async () => {
          if (!failure) await task();
        })
        .catch((error: unknown) => {
          failure ??= { error };
        });
    };
    const rethrow = (): void => {
      if (failure) throw failure.error;
    };
    let encoding: Promise<unknown> = Promise.resolve();

    const startUnit = async (unit: PlannedUnit, parts: Map<string, Uint8Array>): Promise<void> => {
      await encoding;
      rethrow();
      const bits = unit.members.map((name) => {
        const bytes = parts.get(name)!;
        return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
      });
      const encode = encodeUnit(bits, options.threads === undefined ? {} : { threads: options.threads });
      encoding = encode.catch(() => {});
      enqueue(async () => {
        const r = await encode;
        // Inf/NaN/huge values cannot be coded: the codec leaves those tensors out, kept exactly as they were.
        for (const i of r.raw) {
          const name = unit.members[i]!;
          rawTensors.push(name);
          await layout.append(verbatimEntry(src.reader.entry(name), parts.get(name)!));
          verbatimTensors++;
        }
        if (r.unit) {
          const kept = r.encoded.map((i) => unit.members[i]!);
          const expected = r.encoded.reduce((s, i) => s + bits[i]!.length, 0);
          if (unitElements(r.unit) !== expected)
            throw new InferzipError('INTERNAL', `unit '${unit.prefix}' encoded ${unitElements(r.unit)} elements, expected ${expected}`);
          for (const entry of unitEntries(unit.prefix, r.unit)) await layout.append(entry);
          const record: ManifestUnit = {
            prefix: unit.prefix,
            kind: unit.kind,
            members: kept,
            entropy: Math.round(entropyBits(r.histogram) * 1e6) / 1e6,
            crc32: unitCrc32(r.unit),
          };
          if (unit.kind === 'block') record.block = unit.block!;
          manifest.units.push(record);
          for (let e = 0; e < 256; e++) modelHist[e]! += r.histogram[e]!;
          compressedWeights += expected;
          totalUnitBytes += unitBytes(r.unit);
        }
        unitsDone++;
        bytesDone += bits.reduce((s, b) => s + b.byteLength, 0);
        report(unit.prefix);
      });
    };

    for (const [fi, file] of src.files.entries()) {
      const sha = createHash('sha256');
      const prefix = new Uint8Array(8);
      new DataView(prefix.buffer).setBigUint64(0, BigInt(file.headerBytes.byteLength), true);
      sha.update(prefix).update(file.headerBytes);
      enqueue(async () => {
        bytesDone += 8 + file.headerBytes.byteLength;
      });
      for (const seg of segmentsOf(file.tensors, file.fileSize - file.dataStart)) {
        checkAborted(options.signal);
        rethrow();
        if (seg.kind === 'gap') {
          const bytes = await file.readRange(seg.offset, seg.length);
          sha.update(bytes);
          const name = gapTensorName(fi, seg.offset);
          manifest.gaps.push({ file: fi, offset: seg.offset, length: seg.length, name });
          enqueue(async () => {
            await layout.append({ name, dtype: 'U8', shape: [seg.length], data: bytes });
            bytesDone += seg.length;
          });
          continue;
        }
        const e = seg.entry;
        const bytes = await file.readRange(e.dataOffsets[0], e.byteLength);
        sha.update(bytes);
        manifest.crc32[e.name] = crc32Hex(bytes);
        const unit = unitOfMember.get(e.name);
        if (!unit) {
          enqueue(async () => {
            await layout.append(verbatimEntry(e, bytes));
            verbatimTensors++;
            bytesDone += e.byteLength;
            report();
          });
          continue;
        }
        let parts = pending.get(unit.prefix);
        if (!parts) pending.set(unit.prefix, (parts = new Map()));
        parts.set(e.name, bytes);
        if (parts.size === unit.members.length) {
          pending.delete(unit.prefix);
          await startUnit(unit, parts);
        }
      }
      const record: ManifestFile = {
        name: basename(file.path),
        header: bytesToLatin1(file.headerBytes),
        headerLength: file.headerBytes.byteLength,
        size: file.fileSize,
        sha256: sha.digest('hex'),
      };
      manifest.files.push(record);
    }
    await queue;
    rethrow();
    if (pending.size > 0) throw new InferzipError('INTERNAL', `units never completed: ${[...pending.keys()].join(', ')}`);
    manifest.histogram = sparseHistogram(modelHist);
    checkAborted(options.signal);
    const metadata = metadataFor(manifest);
    // The manifest must pass the reader's checks and size limits too (the inflate cap readers
    // derive from the tensor count): otherwise the file would be written, reported as a success, and be unreadable.
    try {
      parseManifest(metadata, layout.entryCount);
    } catch (err) {
      throw new InferzipError('UNSUPPORTED', `the compressed output would not read back: ${(err as Error).message}; nothing was written`, {
        cause: err,
      });
    }
    const outputBytes = await layout.finish(metadata);
    if (configPath) await writeFileAtomic(configPath, dfloat11ConfigJson(findModelConfig(input), manifest.units));
    report();
    return {
      output,
      ...(configPath ? { config: configPath } : {}),
      inputBytes,
      outputBytes,
      bf16Weights,
      compressedWeights,
      units: manifest.units.length,
      verbatimTensors,
      rawTensors,
      unitBytes: totalUnitBytes,
      bitsPerWeight: compressedWeights > 0 ? (totalUnitBytes * 8) / compressedWeights : 0,
      entropyBound: compressedWeights > 0 ? 8 + entropyBits(modelHist) : 0,
      fileBitsPerWeight: bf16Weights > 0 ? (outputBytes * 8) / bf16Weights : 0,
      seconds: (performance.now() - started) / 1000,
    };
  } catch (err) {
    failure ??= { error: err };
    await queue;
    await layout.abort();
    throw err;
  }
}

function verbatimEntry(e: SafetensorsEntry, bytes: Uint8Array): OutputEntry {
  return { name: e.name, dtype: e.dtype, shape: e.shape, data: bytes };
}

/** `__metadata__` of the compressed file. */
function metadataFor(manifest: Manifest): Record<string, string> {
  return { [FORMAT_KEY]: FORMAT_VERSION, ...manifestMetadata(manifest) };
}

// ---- header size estimate (see OutputLayout) ------------------------------------------

/** Larger than any offset, dimension or count that can occur. */
const BIG = Number.MAX_SAFE_INTEGER;

/** Every entry the output may hold, with the largest numbers it may carry. */
function estimateEntries(
  fileTensors: readonly (readonly SafetensorsEntry[])[],
  units: readonly PlannedUnit[],
  files: readonly { fileSize: number; dataStart: number; tensors: readonly SafetensorsEntry[] }[],
): OutputEntry[] {
  const inUnit = new Set(units.flatMap((u) => u.members));
  const out: OutputEntry[] = [];
  for (const tensors of fileTensors)
    for (const t of tensors) if (!inUnit.has(t.name)) out.push({ name: t.name, dtype: t.dtype, shape: t.shape, data: new Uint8Array(0) });
  for (const u of units)
    for (const b of UNIT_BUFFERS) {
      out.push({
        name: `${u.prefix}.${b}`,
        dtype: b === 'split_positions' ? 'I64' : 'U8',
        shape: b === 'luts' ? [BIG, 256] : [BIG],
        data: new Uint8Array(0),
      });
    }
  files.forEach((f, fi) => {
    for (const seg of segmentsOf(f.tensors, f.fileSize - f.dataStart)) {
      if (seg.kind === 'gap') out.push({ name: gapTensorName(fi, seg.offset), dtype: 'U8', shape: [seg.length], data: new Uint8Array(0) });
    }
  });
  return out;
}

/**
 * Hex digits that look random but depend only on `label`. The estimate decides the reserved header
 * size, which decides the output's bytes: random stand-ins (as before) made the same input give
 * files differing by a few bytes from run to run.
 */
function standIn(label: string, bytes: number): string {
  return createHash('sha256')
    .update(label)
    .digest('hex')
    .slice(0, bytes * 2);
}

/** Metadata as large as the real one can be (placeholders are as long as real values). */
function placeholderMetadata(
  files: readonly { path: string; headerBytes: Uint8Array; fileSize: number; tensors: readonly SafetensorsEntry[] }[],
  units: readonly PlannedUnit[],
  base: Manifest,
): Record<string, string> {
  const m: Manifest = {
    ...base,
    files: files.map((f) => ({
      name: basename(f.path),
      header: bytesToLatin1(f.headerBytes),
      headerLength: f.headerBytes.byteLength,
      size: f.fileSize,
      sha256: standIn(`file:${basename(f.path)}`, 32),
    })),
    units: units.map((u) => ({
      prefix: u.prefix,
      kind: u.kind,
      block: BIG,
      members: [...u.members],
      entropy: 7.777777,
      crc32: standIn(`unit:${u.prefix}`, 4),
    })),
    // Random-looking digits deflate like real checksums do.
    crc32: Object.fromEntries(files.flatMap((f) => f.tensors.map((t) => [t.name, standIn(`tensor:${t.name}`, 4)]))),
    histogram: Array.from({ length: 256 }, (_, e) => [e, BIG] as [number, number]),
  };
  return metadataFor(m);
}
