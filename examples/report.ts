/** Formats the demo report: a terminal table, Markdown, and an SVG chart. */
export interface SchemeRow {
  scheme: string;
  bits: number;
  agreement: number;
  meanKl: number;
  kvBytesPerToken: number;
  tokensPerSecond: number;
}

export interface DemoReport {
  backend: string;
  tokens: number;
  model: { parameters: number; bf16Bytes: number; compressedBytes: number; bitsPerWeight: number; fileBitsPerWeight: number; entropyBound: number; compressSeconds: number; verified: boolean };
  decode: { gbPerSecond: number; blocksPerSecond: number };
  plain: { tokensPerSecond: number; kvBytesPerToken: number; firstTokens: number[] };
  streamed: { tokensPerSecond: number; bitIdentical: boolean; stepsCompared: number; firstMismatch: number | null; deviceBytes: number };
  kv: SchemeRow[];
  kvNote: string;
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

export function toTable(r: DemoReport): string {
  const rows: string[][] = [
    ['run', 'weights', 'KV cache', 'top-1 agreement', 'mean KL', 'KV bytes/token', 'tokens/s'],
    ['1 plain', `BF16 ${(r.model.bf16Bytes / 1024).toFixed(0)} KiB`, 'f32', '(reference)', '0', r.plain.kvBytesPerToken.toFixed(0), r.plain.tokensPerSecond.toFixed(0)],
    [
      '2 streamed',
      `DF11 ${(r.model.compressedBytes / 1024).toFixed(0)} KiB`,
      'f32',
      r.streamed.bitIdentical ? '100% (bit-identical)' : `MISMATCH at step ${r.streamed.firstMismatch}`,
      '0',
      r.plain.kvBytesPerToken.toFixed(0),
      r.streamed.tokensPerSecond.toFixed(0),
    ],
    ...r.kv.map((k) => [`3 ${k.scheme}`, 'DF11 streamed', `${k.scheme} ${k.bits}-bit`, pct(k.agreement), k.meanKl.toExponential(2), k.kvBytesPerToken.toFixed(0), k.tokensPerSecond.toFixed(0)]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const line = (row: string[]) => row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ');
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
}

export function summary(r: DemoReport): string {
  return [
    `backend: ${r.backend}`,
    `model: stories260K, ${r.model.parameters.toLocaleString('en')} parameters; BF16 file ${r.model.bf16Bytes.toLocaleString('en')} B -> DFloat11 file ${r.model.compressedBytes.toLocaleString('en')} B ` +
      `(${pct(r.model.compressedBytes / r.model.bf16Bytes)}), compressed in ${r.model.compressSeconds.toFixed(2)} s, verified: ${r.model.verified ? 'yes' : 'NO'}`,
    `bits/weight: units ${r.model.bitsPerWeight.toFixed(2)}, whole file ${r.model.fileBitsPerWeight.toFixed(2)}, lossless bound ${r.model.entropyBound.toFixed(2)} (BF16: 16)`,
    `block decode: ${r.decode.gbPerSecond.toFixed(2)} GB/s of BF16 output, ${r.decode.blocksPerSecond.toFixed(0)} blocks/s`,
    `streamed logits vs plain BF16: ${r.streamed.bitIdentical ? 'bit-identical' : 'DIFFERENT'} at all ${r.streamed.stepsCompared} steps; device memory held ${r.streamed.deviceBytes.toLocaleString('en')} B`,
    `first tokens: ${r.plain.firstTokens.join(' ')}`,
    r.kvNote,
  ].join('\n');
}

export function toMarkdown(r: DemoReport): string {
  const table = [
    '| run | weights | KV cache | top-1 agreement with (1) | mean KL | KV bytes / token | tokens/s |',
    '|---|---|---|---|---|---|---|',
    `| 1 | BF16 (${r.model.bf16Bytes.toLocaleString('en')} B) | f32 | reference | 0 | ${r.plain.kvBytesPerToken.toFixed(0)} | ${r.plain.tokensPerSecond.toFixed(0)} |`,
    `| 2 | DFloat11, streamed per block (${r.model.compressedBytes.toLocaleString('en')} B) | f32 | ${r.streamed.bitIdentical ? '100% — logits bit-identical' : 'MISMATCH'} | 0 | ${r.plain.kvBytesPerToken.toFixed(0)} | ${r.streamed.tokensPerSecond.toFixed(0)} |`,
    ...r.kv.map((k) => `| 3 | DFloat11, streamed | ${k.scheme} ${k.bits}-bit | ${pct(k.agreement)} | ${k.meanKl.toExponential(2)} | ${k.kvBytesPerToken.toFixed(0)} | ${k.tokensPerSecond.toFixed(0)} |`),
  ];
  return [`# inferzip demo report (${r.tokens} tokens, ${r.backend})`, '', ...summary(r).split('\n').map((l) => `- ${l}`), '', ...table, '', '![KV bytes per token vs agreement](kv-tradeoff.svg)', ''].join('\n');
}

/** A small scatter plot: KV bytes per token (x) vs top-1 agreement (y), one point per scheme. */
export function toSvg(r: DemoReport): string {
  const W = 560;
  const H = 320;
  const m = { l: 60, r: 20, t: 30, b: 50 };
  const pts = [{ name: 'f32 (plain)', x: r.plain.kvBytesPerToken, y: 1 }, ...r.kv.map((k) => ({ name: `${k.scheme} ${k.bits}b`, x: k.kvBytesPerToken, y: k.agreement }))];
  const xmax = Math.max(...pts.map((p) => p.x)) * 1.1;
  const ymin = Math.min(0.5, ...pts.map((p) => p.y)) - 0.05;
  const sx = (x: number) => m.l + (x / xmax) * (W - m.l - m.r);
  const sy = (y: number) => m.t + ((1 - y) / (1 - ymin)) * (H - m.t - m.b);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => f * xmax);
  const yt = [ymin, (ymin + 1) / 2, 1];
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">KV cache: bytes per token vs top-1 agreement (${r.tokens} tokens)</text>`,
    `<line x1="${m.l}" y1="${H - m.b}" x2="${W - m.r}" y2="${H - m.b}" stroke="black"/>`,
    `<line x1="${m.l}" y1="${m.t}" x2="${m.l}" y2="${H - m.b}" stroke="black"/>`,
    ...ticks.map((t) => `<text x="${sx(t)}" y="${H - m.b + 16}" text-anchor="middle">${t.toFixed(0)}</text>`),
    ...yt.map((t) => `<text x="${m.l - 6}" y="${sy(t) + 4}" text-anchor="end">${(100 * t).toFixed(0)}%</text>`),
    `<text x="${W / 2}" y="${H - 12}" text-anchor="middle">KV bytes per cached token (all layers)</text>`,
    `<text x="14" y="${H / 2}" text-anchor="middle" transform="rotate(-90 14 ${H / 2})">top-1 agreement</text>`,
    ...pts.map((p) => `<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="5" fill="#2b6cb0"/><text x="${(sx(p.x) + 8).toFixed(1)}" y="${(sy(p.y) - 6).toFixed(1)}">${esc(p.name)}</text>`),
    '</svg>',
    '',
  ].join('\n');
}
