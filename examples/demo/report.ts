/** The demo report as a terminal table, as Markdown, and the KV trade-off chart as SVG. */
import type { DemoReport, EvictionRow, KVRow } from './run.js';

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const mb = (bytesPerSecond: number) => `${(bytesPerSecond / 1e6).toFixed(1)} MB/s`;

interface Table {
  headers: string[];
  rows: string[][];
}

/** The comparison of the three ways of generating, one row per run. */
export function runTable(r: DemoReport): Table {
  const headers = [
    'run',
    'weights',
    'KV cache',
    'tokens/s',
    'logits vs (1)',
    'top-1 agreement',
    'mean KL (nats)',
    'KV bytes/token',
    'packed bytes/token',
  ];
  const rows: string[][] = [
    [
      '(0)',
      'F32 original',
      'f32',
      r.f32.tokensPerSecond.toFixed(0),
      'calibration',
      pct(r.f32.top1Agreement),
      r.f32.meanKL.toExponential(2),
      int(r.denseKvBytesPerToken),
      int(r.denseKvBytesPerToken),
    ],
    [
      '(1)',
      'plain BF16',
      'f32',
      r.bf16.tokensPerSecond.toFixed(0),
      'reference',
      '100.0%',
      '0',
      int(r.denseKvBytesPerToken),
      int(r.denseKvBytesPerToken),
    ],
    [
      '(2)',
      'streamed, DFloat11',
      'f32',
      r.streamed.tokensPerSecond.toFixed(0),
      `${r.streamed.bitIdentical ? 'bit-identical' : 'DIFFERENT'} ${r.streamed.bitIdenticalSteps}/${r.tokens} steps`,
      pct(r.streamed.tokens.filter((t, i) => t === r.bf16.tokens[i]).length / r.tokens),
      '0',
      int(r.denseKvBytesPerToken),
      int(r.denseKvBytesPerToken),
    ],
  ];
  for (const k of r.kv) rows.push(kvRow(k));
  for (const e of r.eviction?.rows ?? []) rows.push(evictionRow(e, r));
  return { headers, rows };
}

function evictionRow(e: EvictionRow, r: DemoReport): string[] {
  const policy = e.method === 'none' ? 'no eviction' : `${e.method} ${(100 * e.budget).toFixed(0)}% (keeps ${e.keptTokens.toFixed(1)})`;
  return [
    '(4)',
    'streamed, DFloat11',
    `${r.eviction.scheme} + ${policy}`,
    '',
    `decode steps ${r.eviction.prompt + 1}-${r.tokens}`,
    pct(e.top1Agreement),
    e.meanKL.toExponential(2),
    int(e.bytesPerToken),
    '',
  ];
}

function kvRow(k: KVRow): string[] {
  if (!k.available) return ['(3)', 'streamed, DFloat11', k.scheme, 'unavailable', k.error ?? '', '', '', '', ''];
  return [
    '(3)',
    'streamed, DFloat11',
    `${k.scheme} ${k.bits}-bit (K ${k.keyBits!.toFixed(2)} / V ${k.valueBits!.toFixed(2)} b)`,
    k.tokensPerSecond!.toFixed(0),
    'n/a (lossy KV)',
    pct(k.top1Agreement!),
    k.meanKL!.toExponential(2),
    int(k.bytesPerToken!),
    k.packedBytesPerToken! > 0 ? int(k.packedBytesPerToken!) : 'none quantized yet',
  ];
}

/** Lines about the model files, verification, decoding and the backend. */
export function factLines(r: DemoReport): [string, string][] {
  const f = r.files;
  return [
    [
      'model',
      `${r.model.name}: ${int(r.model.parameters)} parameters, ${r.model.layers} layers, ${r.model.heads} query / ${r.model.kvHeads} KV heads, head_dim ${r.model.headDim}`,
    ],
    ['backend', `${r.backend.name} (${r.backend.reason}); CUDA compiled in: ${r.backend.cudaCompiled ? 'yes' : 'no'}`],
    ['device', `compressed weights and KV caches on ${r.backend.device}; forward pass: ${r.backend.forwardPass}`],
    ['F32 file', `${int(f.f32Bytes)} bytes`],
    ['BF16 file', `${int(f.bf16Bytes)} bytes`],
    [
      'compressed file',
      `${int(f.compressedBytes)} bytes (${pct(f.compressedBytes / f.bf16Bytes)} of BF16), compressed in ${f.compressSeconds.toFixed(2)} s`,
    ],
    [
      'bits/weight',
      `${f.bitsPerWeight.toFixed(2)} in compressed units (lossless bound ${f.entropyBound.toFixed(2)}); ${f.fileBitsPerWeight.toFixed(2)} for the whole file`,
    ],
    [
      'verify',
      `${r.verify.ok ? 'ok' : 'FAILED'}: ${r.verify.tensors} tensors${r.verify.checksums ? ', checksums' : ''} (${r.verify.seconds.toFixed(2)} s)`,
    ],
    [
      'decode throughput',
      `${mb(r.decode.bytesPerSecond)} of BF16 (median of ${r.decode.rounds} rounds decoding all ${int(r.decode.blockBytes)} block bytes); run (2) spent ${r.decode.streamedWaitSeconds.toFixed(2)} s waiting for blocks and copying them out as f32`,
    ],
    [
      'KV caches',
      r.kv.length
        ? `default bits per scheme, group size 32, newest ${r.kv[0]?.residualLength ?? '?'} tokens kept in f32; f32 cache: ${int(r.denseKvBytesPerToken)} bytes/token`
        : 'none requested (--kv none)',
    ],
    [
      'bit-identity',
      r.streamed.bitIdentical
        ? `streamed logits are bit-identical to plain BF16 at every one of ${r.tokens} steps`
        : `streamed logits DIFFER from plain BF16 (first at step ${r.streamed.firstMismatch}; ${r.streamed.bitIdenticalSteps}/${r.tokens} steps identical)`,
    ],
  ];
}

function pad(cells: string[], widths: number[]): string {
  return cells
    .map((c, i) => c.padEnd(widths[i]!))
    .join('  ')
    .trimEnd();
}

export function formatText(r: DemoReport): string {
  const out: string[] = [`inferzip end to end: ${r.model.name}, ${r.tokens} tokens greedy from BOS`, ''];
  const facts = factLines(r);
  const w = Math.max(...facts.map(([k]) => k.length));
  for (const [k, v] of facts) out.push(`${k.padEnd(w)}  ${v}`);
  out.push('');
  const t = runTable(r);
  const widths = t.headers.map((h, i) => Math.max(h.length, ...t.rows.map((row) => row[i]!.length)));
  out.push(pad(t.headers, widths), widths.map((x) => '-'.repeat(x)).join('  '));
  for (const row of t.rows) out.push(pad(row, widths));
  out.push('', NOTES.join('\n'));
  return out.join('\n');
}

const NOTES = [
  '(1) and (2) decode greedily; (0) and (3) are fed the tokens of (1), so every step compares next-token distributions over the same context.',
  '(0) is the F32 original: how much BF16 rounding of the weights alone moves this tiny model, a yardstick for the KV rows.',
  'KV bytes/token: all layers, K and V, at the end of the run: packed codes + scales + the f32 window of the newest tokens.',
  'packed bytes/token: the same for quantized tokens only (codes + scales + metadata), what each token costs in a long context.',
  '(4) KV eviction (H2O, D2O) on the fp8 cache (scale blocks of 4 tokens): the first half of the run is the prompt (one prefill attention call per layer), budgets are fractions of it; agreement and KL over the decode steps only, against (1). "no eviction" is the same pipeline with a budget of every token. KV bytes/token: per sequence token, eviction bookkeeping (positions, scores, flags: 24 bytes per slot per layer here) included; a slot is freed once no KV head keeps it.',
];

export function formatMarkdown(r: DemoReport, svgName?: string): string {
  const out: string[] = [`## inferzip end to end: ${r.model.name}, ${r.tokens} tokens`, ''];
  out.push('| | |', '|---|---|');
  for (const [k, v] of factLines(r)) out.push(`| ${k} | ${v.replaceAll('|', '\\|')} |`);
  out.push('');
  const t = runTable(r);
  out.push(`| ${t.headers.join(' | ')} |`, `|${t.headers.map(() => '---').join('|')}|`);
  for (const row of t.rows) out.push(`| ${row.map((c) => c.replaceAll('|', '\\|')).join(' | ')} |`);
  out.push('', ...NOTES.map((n) => `- ${n}`));
  if (svgName) out.push('', `![KV bytes per token vs top-1 agreement](${svgName})`);
  out.push('', `Generated by \`npm start -- --tokens ${r.tokens} --markdown ... --svg ...\`.`, '');
  return out.join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Scatter chart: KV bytes per token (x) against top-1 agreement with plain BF16 (y). */
export function formatSvg(r: DemoReport): string {
  const points = [
    { label: 'f32 (dense)', x: r.denseKvBytesPerToken, y: 1 },
    ...r.kv.filter((k) => k.available).map((k) => ({ label: `${k.scheme} ${k.bits}-bit`, x: k.bytesPerToken!, y: k.top1Agreement! })),
  ];
  const W = 640;
  const H = 400;
  const m = { l: 70, r: 30, t: 40, b: 60 };
  const xMax = Math.ceil((Math.max(...points.map((p) => p.x)) * 1.1) / 100) * 100;
  const yMin = Math.min(0.9, Math.floor(Math.min(r.f32.top1Agreement, ...points.map((p) => p.y)) * 10) / 10);
  const sx = (x: number) => +(m.l + (x / xMax) * (W - m.l - m.r)).toFixed(1);
  const sy = (y: number) => +(H - m.b - ((y - yMin) / (1 - yMin)) * (H - m.t - m.b)).toFixed(1);
  const s: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(`${r.model.name}: KV bytes per token vs top-1 agreement with BF16 (${r.tokens} tokens)`)}</text>`,
  ];
  for (let i = 0; i <= 5; i++) {
    const x = (xMax * i) / 5;
    s.push(`<line x1="${sx(x)}" y1="${m.t}" x2="${sx(x)}" y2="${H - m.b}" stroke="#eee"/>`);
    s.push(`<text x="${sx(x)}" y="${H - m.b + 16}" text-anchor="middle">${int(x)}</text>`);
    const y = yMin + ((1 - yMin) * i) / 5;
    s.push(`<line x1="${m.l}" y1="${sy(y)}" x2="${W - m.r}" y2="${sy(y)}" stroke="#eee"/>`);
    s.push(`<text x="${m.l - 6}" y="${sy(y) + 4}" text-anchor="end">${(100 * y).toFixed(0)}%</text>`);
  }
  s.push(`<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`);
  s.push(`<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`);
  s.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 18}" text-anchor="middle">KV bytes per token (all layers, K+V)</text>`);
  s.push(`<text transform="translate(18 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">top-1 agreement with plain BF16</text>`);
  // Yardstick: BF16 rounding of the weights alone (F32 original vs BF16), independent of the KV cache.
  const yf = sy(r.f32.top1Agreement);
  s.push(`<line x1="${m.l}" y1="${yf}" x2="${W - m.r}" y2="${yf}" stroke="#d33" stroke-dasharray="5 4"/>`);
  s.push(
    `<text x="${W - m.r - 4}" y="${yf + 14}" text-anchor="end" fill="#d33">${esc(`F32 vs BF16 weights (no KV change): ${(100 * r.f32.top1Agreement).toFixed(1)}%`)}</text>`,
  );
  for (const p of points) {
    const x = sx(p.x);
    const y = sy(p.y);
    const right = x < W - 160;
    s.push(`<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="5" fill="${p.label.startsWith('f32') ? '#888' : '#1f6feb'}"/>`);
    s.push(
      `<text x="${(right ? x + 8 : x - 8).toFixed(1)}" y="${(y - 8).toFixed(1)}" text-anchor="${right ? 'start' : 'end'}">${esc(`${p.label}: ${int(p.x)} B, ${(100 * p.y).toFixed(1)}%`)}</text>`,
    );
  }
  s.push('</svg>', '');
  return s.join('\n');
}
