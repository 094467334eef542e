/** Human-readable renderings of the model reports for the CLI. */
import type { CompressModelResult, DecompressModelResult, ModelReport, VerifyModelResult } from '../model/index.js';

export function bytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

const f2 = (x: number): string => x.toFixed(2);

export function compressSummary(r: CompressModelResult): string {
  const lines = [
    `wrote ${r.output}: ${bytes(r.outputBytes)} from ${bytes(r.inputBytes)} (${f2((100 * r.outputBytes) / Math.max(1, r.inputBytes))}%) in ${r.seconds.toFixed(2)} s`,
    `  ${r.units} units, ${r.compressedWeights} of ${r.bf16Weights} BF16 weights compressed, ${r.verbatimTensors} tensors stored verbatim`,
    `  payload ${f2(r.bitsPerWeight)} bits/weight (entropy bound ${f2(r.entropyBound)}), whole file ${f2(r.fileBitsPerWeight)} bits/weight`,
  ];
  if (r.rawTensors.length > 0) lines.push(`  kept raw (Inf/NaN or |x| >= 2^113): ${r.rawTensors.join(', ')}`);
  return lines.join('\n');
}

export function decompressSummary(r: DecompressModelResult): string {
  return [
    `rebuilt ${r.files.length} file(s), ${bytes(r.bytes)} in ${r.seconds.toFixed(2)} s, every checksum matched:`,
    ...r.files.map((f) => `  ${f}`),
  ].join('\n');
}

export function verifySummary(path: string, r: VerifyModelResult): string {
  if (r.ok && !r.checksums)
    return `OK ${path}: ${r.units} units (${r.tensors} matrices) decode and validate; a DFloat11 checkpoint carries no checksums to compare (${r.seconds.toFixed(2)} s)`;
  if (r.ok)
    return `OK ${path}: ${r.units} units decoded, ${r.tensors} tensors and ${r.files} file(s) match their checksums (${r.seconds.toFixed(2)} s)`;
  return [`FAILED ${path}: ${r.problems.length} problem(s)`, ...r.problems.map((p) => `  [${p.kind}] ${p.message}`)].join('\n');
}

export function inspectTable(r: ModelReport): string {
  const lines: string[] = [];
  lines.push(`${r.path} (${r.format}), ${bytes(r.fileBytes)}`);
  if (r.original)
    lines.push(
      `original: ${r.original.files.map((f) => `${f.name} ${bytes(f.bytes)}`).join(', ')}; ${r.original.bf16Weights} BF16 weights`,
    );
  const header = ['unit', 'tensors', 'weights', 'bytes', 'bits/w', 'bound'];
  const rows = r.units.map((u) => [
    u.prefix,
    String(u.tensors.length),
    String(u.elements),
    String(u.bytes.total),
    f2(u.bitsPerWeight),
    u.entropyBound === undefined ? '-' : f2(u.entropyBound),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const fmt = (row: string[]): string => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  lines.push('', fmt(header), ...rows.map(fmt), '');
  const t = r.totals;
  lines.push(
    `units: ${r.units.length}, ${t.compressedWeights} weights in ${bytes(t.unitBytes)}: ${f2(t.bitsPerWeight)} bits/weight` +
      (t.entropyBound === undefined ? ' (entropy bound unknown: pass --decode)' : `, entropy bound ${f2(t.entropyBound)}`),
  );
  lines.push(`raw tensors: ${r.raw.tensors} (${bytes(r.raw.bytes)})`);
  if (t.fileBitsPerWeight !== undefined)
    lines.push(`whole file: ${f2(t.fileBitsPerWeight)} bits per BF16 weight, ${f2(100 * (t.ratio ?? 0))}% of the original`);
  return lines.join('\n');
}
