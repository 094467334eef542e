/**
 * inspectModel: what a compressed model holds and how well it compressed: per unit the
 * stored bytes, bits/weight and the entropy bound, and the same for the whole model.
 */
import { SafetensorsFile, ShardedSafetensors, type SafetensorsReader } from '../safetensors/index.js';
import { openCatalogAsync, type UnitInfo } from './catalog.js';
import { decodeUnit, readUnit } from './codec.js';
import { UNIT_BUFFERS, type UnitBufferName } from './plan.js';
import { denseHistogram, entropyBits } from './stats.js';
import { exponentHistogram } from '../df11/index.js';
import { tensor } from '../tensor.js';

export interface UnitReport {
  prefix: string;
  kind: 'block' | 'matrix';
  block?: number;
  tensors: { name: string; shape: readonly number[] }[];
  elements: number;
  /** Stored bytes per buffer and in all. */
  bytes: Record<UnitBufferName, number> & { total: number };
  /** total bytes * 8 / elements. */
  bitsPerWeight: number;
  /** Exponent entropy (bits); 8 + entropy is the lossless bound. Undefined when unknown. */
  entropy?: number;
  entropyBound?: number;
}

export interface ModelReport {
  path: string;
  format: 'inferzip' | 'dfloat11';
  /** Bytes on disk of the compressed model. */
  fileBytes: number;
  /** The original model (inferzip files know it). */
  original?: { files: { name: string; bytes: number }[]; bytes: number; bf16Weights: number };
  units: UnitReport[];
  /** Tensors stored uncompressed, and their bytes. */
  raw: { tensors: number; bytes: number };
  totals: {
    compressedWeights: number;
    unitBytes: number;
    /** Payload: unit bytes * 8 / compressed weights. */
    bitsPerWeight: number;
    /** 8 + entropy of all compressed weights' exponents (when known). */
    entropyBound?: number;
    /** Whole file * 8 / every BF16 weight of the original (when known). */
    fileBitsPerWeight?: number;
    /** Compressed file / original bytes (when known). */
    ratio?: number;
  };
}

export interface InspectOptions {
  /** Decode units whose entropy the file does not record (DFloat11 checkpoints) to compute the bound. */
  decode?: boolean;
}

/**
 * @example
 *   const r = await inspectModel('/tmp/stories.df11.safetensors');
 *   console.log(r.totals.bitsPerWeight, r.totals.entropyBound);
 */
export async function inspectModel(path: string, options: InspectOptions = {}): Promise<ModelReport> {
  using catalog = await openCatalogAsync(path);
  const units: UnitReport[] = [];
  const modelHist = new Float64Array(256);
  let histKnown = true;
  for (const u of catalog.units) {
    const bytes = { total: 0 } as Record<UnitBufferName, number> & { total: number };
    for (const b of UNIT_BUFFERS) {
      bytes[b] = catalog.reader.entry(`${u.prefix}.${b}`).byteLength;
      bytes.total += bytes[b];
    }
    let entropy = u.entropy;
    if (entropy === undefined && options.decode) {
      const data = await decodeUnit(await readUnit(catalog.reader, u.prefix));
      const hist = exponentHistogram(tensor('bf16', [data.length], data));
      entropy = entropyBits(hist);
      for (let e = 0; e < 256; e++) modelHist[e]! += hist[e]!;
    } else if (catalog.format === 'dfloat11') {
      histKnown = false;
    }
    units.push(unitReport(u, bytes, entropy));
  }
  if (catalog.manifest) {
    modelHist.set(denseHistogram(catalog.manifest.histogram));
  }
  const fileBytes = filesBytes(catalog.reader);
  const rawBytes = catalog.rawTensors.reduce((s, t) => s + t.byteLength, 0);
  const compressedWeights = units.reduce((s, u) => s + u.elements, 0);
  const unitBytes = units.reduce((s, u) => s + u.bytes.total, 0);
  const report: ModelReport = {
    path,
    format: catalog.format,
    fileBytes,
    units,
    raw: { tensors: catalog.rawTensors.length, bytes: rawBytes },
    totals: { compressedWeights, unitBytes, bitsPerWeight: compressedWeights > 0 ? (unitBytes * 8) / compressedWeights : 0 },
  };
  if (histKnown && compressedWeights > 0) report.totals.entropyBound = 8 + entropyBits(modelHist);
  const m = catalog.manifest;
  if (m) {
    const bf16Weights = [...m.tensorIndex.values()].filter((t) => t.entry.dtype === 'BF16').reduce((s, t) => s + t.entry.byteLength / 2, 0);
    const origBytes = m.restoreFiles.reduce((s, f) => s + f.size, 0);
    report.original = { files: m.restoreFiles.map((f) => ({ name: f.name, bytes: f.size })), bytes: origBytes, bf16Weights };
    if (bf16Weights > 0) report.totals.fileBitsPerWeight = (fileBytes * 8) / bf16Weights;
    if (origBytes > 0) report.totals.ratio = fileBytes / origBytes;
  }
  return report;
}

/** Bytes on disk of the safetensors file(s) behind a reader. */
function filesBytes(reader: SafetensorsReader): number {
  if (reader instanceof SafetensorsFile) return reader.fileSize;
  if (reader instanceof ShardedSafetensors) return reader.shards.reduce((s, f) => s + f.fileSize, 0);
  return reader.tensors.reduce((s, t) => s + t.byteLength, 0);
}

function unitReport(u: UnitInfo, bytes: UnitReport['bytes'], entropy: number | undefined): UnitReport {
  const r: UnitReport = {
    prefix: u.prefix,
    kind: u.kind,
    tensors: u.members.map((m) => ({ name: m.name, shape: m.shape })),
    elements: u.elements,
    bytes,
    bitsPerWeight: u.elements > 0 ? (bytes.total * 8) / u.elements : 0,
  };
  if (u.block !== undefined) r.block = u.block;
  if (entropy !== undefined) {
    r.entropy = entropy;
    r.entropyBound = 8 + entropy;
  }
  return r;
}
