/**
 * `inferzip inspect` on a model that is not compressed (a plain safetensors file, a model
 * directory or an index): its tensors by dtype and what `inferzip compress` would do with them,
 * from the headers alone (no tensor data is read).
 */
import { planModel } from '../model/plan.js';
import { openModelSource } from '../model/source.js';
import { bytes } from './format.js';

export interface PlainReport {
  path: string;
  format: 'safetensors';
  files: number;
  fileBytes: number;
  tensors: number;
  /** Per dtype: tensors and elements. */
  dtypes: Record<string, { tensors: number; elements: number }>;
  /** What compress would make of it (the default plan). */
  plan: { units: number; compressibleWeights: number; verbatimTensors: number };
}

export function inspectPlain(path: string): PlainReport {
  using src = openModelSource(path);
  const entries = src.files.flatMap((f) => [...f.tensors]);
  const dtypes: PlainReport['dtypes'] = {};
  for (const e of entries) {
    const d = (dtypes[e.dtype] ??= { tensors: 0, elements: 0 });
    d.tensors++;
    d.elements += e.shape.reduce((a, b) => a * b, 1);
  }
  const plan = planModel(entries);
  return {
    path,
    format: 'safetensors',
    files: src.files.length,
    fileBytes: src.files.reduce((s, f) => s + f.fileSize, 0),
    tensors: entries.length,
    dtypes,
    plan: {
      units: plan.units.length,
      compressibleWeights: plan.units.reduce((s, u) => s + u.elements, 0),
      verbatimTensors: plan.verbatim.length,
    },
  };
}

export function plainTable(r: PlainReport): string {
  const lines = [`${r.path} (plain safetensors, not compressed), ${r.files} file(s), ${bytes(r.fileBytes)}, ${r.tensors} tensors`];
  for (const [dtype, d] of Object.entries(r.dtypes))
    lines.push(`  ${dtype.padEnd(5)} ${String(d.tensors).padStart(6)} tensors, ${d.elements} elements`);
  lines.push(
    r.plan.units > 0
      ? `inferzip compress would make ${r.plan.units} DFloat11 units of ${r.plan.compressibleWeights} BF16 weights and keep ${r.plan.verbatimTensors} tensors verbatim`
      : 'nothing here to compress: DFloat11 codes BF16 matrices, and this model has none (inferzip compress exits 1 unless --allow-uncompressed)',
  );
  return lines.join('\n');
}
