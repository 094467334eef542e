/** The demo report as terminal text and as Markdown (same tables, same numbers). */
import type { DemoReport, RunResult } from './run.js';

const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function mbps(bytesPerSecond: number): string {
  return bytesPerSecond >= 1e9 ? `${(bytesPerSecond / 1e9).toFixed(2)} GB/s` : `${(bytesPerSecond / 1e6).toFixed(0)} MB/s`;
}

function fixed(x: number | undefined, digits: number): string {
  return x === undefined ? '' : x.toFixed(digits);
}

/** What the logits column says about a run compared with run (1). */
function logitsCell(r: RunResult, n: number): string {
  if (r.id === '1') return 'reference';
  const a = r.agreement!;
  if (a.identicalSteps === n) return `bit-identical ${n}/${n}`;
  if (r.id === '2') return `NOT identical (${a.identicalSteps}/${n} steps)`;
  return `max |Δ| ${a.maxAbsDiff.toPrecision(3)}`;
}

function runRow(r: RunResult, report: DemoReport): string[] {
  const n = report.tokens;
  if (r.status !== 'ok') return [r.label, r.weights, r.kv, `failed: ${r.error ?? 'unknown error'}`, '', '', '', '', '', ''];
  const a = r.agreement;
  const bits = r.keyBits !== undefined ? `${fixed(r.keyBits, 2)} / ${fixed(r.valueBits, 2)}` : '32 / 32';
  return [
    r.label,
    r.weights,
    r.kv,
    logitsCell(r, n),
    a ? pct(a.top1) : '100%',
    a ? a.meanKL.toExponential(2) : '0',
    a ? `${a.samePrefix}/${n}` : `${n}/${n}`,
    r.kvBytesPerToken !== undefined ? r.kvBytesPerToken.toFixed(0) : '',
    bits,
    r.tokensPerSecond !== undefined ? r.tokensPerSecond.toFixed(0) : '',
  ];
}

const RUN_HEADER = ['run', 'weights', 'KV cache', 'logits vs (1)', 'top-1 agree', 'mean KL', 'same greedy prefix', 'KV B/token', 'K/V bits', 'tokens/s'];

function weightRows(r: DemoReport): string[][] {
  const w = r.weights;
  const v = w.verify;
  return [
    ['F32 original (model.f32.safetensors)', kb(w.f32Bytes), '32.00'],
    ['BF16 (model.safetensors)', kb(w.bf16Bytes), '16.00'],
    ['DFloat11 compressed (whole file)', kb(w.compressedBytes), w.fileBitsPerWeight.toFixed(2)],
    ['DFloat11 compressed weights only', '', `${w.bitsPerWeight.toFixed(2)} (lossless bound ${w.entropyBound.toFixed(2)})`],
    [`held on ${r.backend.device} while streaming`, kb(w.streamingBytes.total), `compressed units ${kb(w.streamingBytes.compressed)} + decode buffers ${kb(w.streamingBytes.scratch)}`],
    ['verify', v.ok ? `ok: ${v.tensors} tensors${v.checksums ? ', checksums' : ''}` : `FAILED: ${v.problems.join('; ')}`, `${v.seconds.toFixed(2)} s`],
    ['compress', '', `${w.compressSeconds.toFixed(2)} s`],
    [`block decode (${r.backend.device})`, mbps(w.decodeBytesPerSecond), 'BF16 out, median of 15 passes'],
  ];
}

function intro(r: DemoReport): string[] {
  const m = r.model;
  const b = r.backend;
  return [
    `model: ${m.name}, ${m.parameters.toLocaleString('en-US')} parameters, ${m.layers} layers, ${m.heads} query / ${m.kvHeads} KV heads, head_dim ${m.headDim}, vocab ${m.vocab}`,
    `backend: ${b.name}${b.gpu ? ` (${b.gpu})` : ''}; weights and KV caches on: ${b.device}; CUDA compiled in: ${b.cudaCompiled ? 'yes' : 'no'}; CPU threads: ${b.cpuThreads}`,
    `  (${b.reason})`,
    `machine: ${b.cores} x ${b.cpuModel}, load average ${b.loadAverage.toFixed(1)} at the end of the run (tokens/s and MB/s move with it)`,
    `${r.tokens} tokens, greedy from BOS; run (1) begins ${r.firstTokens.slice(0, 10).join(' ')}`,
  ];
}

function notes(r: DemoReport): string[] {
  const two = r.runs.find((x) => x.id === '2');
  const lines = [
    r.bitIdentical
      ? `Streaming the compressed weights changes nothing: run (2)'s logits equal run (1)'s bit for bit at all ${r.tokens} steps.`
      : `Run (2)'s logits are NOT bit-identical to run (1) — this is a bug.`,
    `Runs (3) feed run (1)'s tokens (teacher forcing) so every step compares the same context; "same greedy prefix" is how many tokens a free greedy run would keep identical to (1).`,
    `KV caches: f32 dense = ${r.kvConfig.f32BytesPerToken} B/token; quantized caches keep the newest ${r.kvConfig.residualLength} tokens in f32 (groups of ${r.kvConfig.groupSize} tokens), so B/token includes that window. K/V bits = bits stored per quantized element, scales included (head_dim 8 makes scales weigh heavily).`,
  ];
  const held = r.weights.streamingBytes;
  lines.push(`Streaming holds the compressed units (${kb(held.compressed)}, vs ${kb(r.weights.bf16Bytes)} of BF16) plus decode buffers for two blocks (prefetch) and the embedding (${kb(held.scratch)}); at 5 tiny blocks the buffers weigh as much as the savings, on a large model they are two blocks out of many.`);
  if (two?.decodeWaitPerToken !== undefined) lines.push(`Run (2) waited ${(1000 * two.decodeWaitPerToken).toFixed(2)} ms per token for block decodes and BF16->f32 widening (the prefetching iterator decodes block i+1 while block i runs).`);
  return lines;
}

function textTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('-+-'), ...rows.map(line)].join('\n');
}

function mdTable(header: string[], rows: string[][], right: number[] = []): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const sep = header.map((_, i) => (right.includes(i) ? '---:' : '---'));
  return [header, sep, ...rows].map((r) => `| ${r.map(esc).join(' | ')} |`).join('\n');
}

/** The report for the terminal. */
export function formatText(r: DemoReport): string {
  return [
    'inferzip end-to-end demo',
    ...intro(r),
    '',
    'Weights',
    textTable(['', 'size', 'bits/weight, notes'], weightRows(r)),
    '',
    'Generation',
    textTable(RUN_HEADER, r.runs.map((x) => runRow(x, r))),
    '',
    ...notes(r),
  ].join('\n');
}

/** The same report as Markdown (docs/demo-report.md); `chart` is a relative path to the SVG. */
export function formatMarkdown(r: DemoReport, chart?: string): string {
  const out = [
    '# inferzip end-to-end demo report',
    '',
    'Produced by `npm start -- --report docs` (examples/demo.ts). Every figure below was measured in that run.',
    '',
    ...intro(r).map((l) => `- ${l.trim()}`),
    '',
    '## Weights',
    '',
    mdTable(['', 'size', 'bits/weight, notes'], weightRows(r)),
    '',
    '## Generation',
    '',
    mdTable(RUN_HEADER, r.runs.map((x) => runRow(x, r)), [4, 5, 6, 7, 8, 9]),
    '',
    ...notes(r).map((l) => `- ${l}`),
  ];
  if (chart) out.push('', `![KV bytes per token vs top-1 agreement](${chart})`);
  return out.join('\n') + '\n';
}
