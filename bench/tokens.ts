// Token-merging speed: one ToMe step through inferzip's native CPU backend beside PyTorch CPU
// (bench/peers/torch_peer.py, the ToMe paper's algorithm; repetitions alternate with ours) and a
// straightforward dense JavaScript implementation timed in the same run, the native
// FastV / DyCoke / HoliTom passes beside their previous TypeScript implementation
// (test/tokens/reference), and the whole-model token reduction of merge schedules.
//   node --import tsx bench/tokens.ts [--runs 5] [--out bench/results/tokens.md] [--only-tome]
import { writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';

import {
  backend,
  mergeSchedule,
  mergeTokensSync,
  scheduleTokens,
  setThreads,
  tensor,
  type MergeResult,
  type Tensor,
} from '../lib/index.js';
import { interleave, startTorchPeer } from './peers/peers.js';
import { deviceReductionRows } from './tokens-device.js';
import { pruningRows, realActivationRows, reductionRows } from './tokens-pruning.js';
import { cpuModel, loadLine } from './util.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const runs = Number(opt('--runs', '5'));
// --only reduction: just the TopV / Zero-TPrune / TempMe rows (bench/results/tokens-reduction.md)
const only = opt('--only', '');
const onlyTome = args.includes('--only-tome'); // just the ToMe-vs-PyTorch table (quick)
const outPath = opt(
  '--out',
  onlyTome ? 'bench/results/tome-vs-torch.md' : only === 'reduction' ? 'bench/results/tokens-reduction.md' : 'bench/results/tokens.md',
);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function time(fn: () => unknown, n: number): number {
  fn(); // warm-up
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

/** The obvious implementation: normalize, full A x B score matrix, argmax, sort, weighted merge. */
function denseJs(x: Float32Array, n: number, c: number, r: number): { out: Float32Array; sizes: Float32Array } {
  const unit = new Float32Array(n * c);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < c; k++) s += x[i * c + k]! * x[i * c + k]!;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let k = 0; k < c; k++) unit[i * c + k] = x[i * c + k]! * inv;
  }
  const na = (n + 1) >> 1;
  const nb = n >> 1;
  const scores = new Float32Array(na * nb);
  for (let a = 0; a < na; a++) {
    for (let b = 0; b < nb; b++) {
      let d = 0;
      for (let k = 0; k < c; k++) d += unit[2 * a * c + k]! * unit[(2 * b + 1) * c + k]!;
      scores[a * nb + b] = d;
    }
  }
  const bestB = new Int32Array(na);
  const bestS = new Float32Array(na);
  for (let a = 0; a < na; a++) {
    let bi = 0;
    for (let b = 1; b < nb; b++) if (scores[a * nb + b]! > scores[a * nb + bi]!) bi = b;
    bestB[a] = bi;
    bestS[a] = scores[a * nb + bi]!;
  }
  const order = Array.from({ length: na }, (_, a) => a).sort((p, q) => bestS[q]! - bestS[p]! || p - q);
  const merged = new Uint8Array(na);
  for (let i = 0; i < r; i++) merged[order[i]!] = 1;
  const acc = new Float32Array(nb * c);
  const size = new Float32Array(nb).fill(1);
  for (let b = 0; b < nb; b++) for (let k = 0; k < c; k++) acc[b * c + k] = x[(2 * b + 1) * c + k]!;
  for (let a = 0; a < na; a++) {
    if (!merged[a]) continue;
    const b = bestB[a]!;
    for (let k = 0; k < c; k++) acc[b * c + k]! += x[2 * a * c + k]!;
    size[b]! += 1;
  }
  const out = new Float32Array((n - r) * c);
  const sizes = new Float32Array(n - r);
  let j = 0;
  for (let a = 0; a < na; a++) {
    if (merged[a]) continue;
    out.set(x.subarray(2 * a * c, (2 * a + 1) * c), j * c);
    sizes[j++] = 1;
  }
  for (let b = 0; b < nb; b++, j++) {
    for (let k = 0; k < c; k++) out[j * c + k] = acc[b * c + k]! / size[b]!;
    sizes[j] = size[b]!;
  }
  return { out, sizes };
}

function randomTokens(n: number, c: number, seed: number): Float32Array {
  let s = seed;
  const out = new Float32Array(n * c);
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

const lines: string[] = [];
const log = (s = '') => {
  console.log(s);
  lines.push(s);
};

const c0 = cpus();
const threads = backend().cpuThreads;
const torch = await startTorchPeer();
log('# Token merging benchmark');
log();
log(
  `Machine: ${c0.length} x ${cpuModel()} (x86-64 VM shared with other jobs; SIMD level ${backend().simd}, picked at run time), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.versions.node}; backend ${backend().name}.`,
);
log(
  `Median of ${runs} runs after one warm-up. ${loadLine()} (other jobs share the cores, so absolute times are inflated; the ratios compare equal conditions).`,
);
if (only === 'reduction') {
  reductionRows(log, runs, time);
  deviceReductionRows(log, runs, time);
  realActivationRows(log, runs, time);
  writeFileSync(outPath, lines.join('\n') + '\n');
  console.log(`\nwrote ${outPath}`);
  if (typeof torch !== 'string') torch.close();
  process.exit(0);
}
log();
log('## One ToMe step (C = 1024, metric = x, r = N / 4)');
log();
log(
  typeof torch === 'string'
    ? `PyTorch peer: missing: ${torch}.`
    : `PyTorch peer: torch ${torch.version === '?' ? '' : torch.version} CPU, f32, the ToMe paper's bipartite soft matching (normalize, a @ b^T, max, argsort, scatter_reduce), run with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset so OpenBLAS picks its own kernels. Its repetitions alternate with inferzip's (one each, ${runs} rounds), same thread count.`,
);
log();
log(
  '| N | dense JS (ms) | PyTorch 1 thread (ms) | inferzip 1 thread (ms) | vs PyTorch, 1 thread | PyTorch all threads (ms) | inferzip all threads (ms) | vs PyTorch, all threads | vs dense JS, all threads |',
);
log('|---|---|---|---|---|---|---|---|---|');
for (const n of [576, 2304]) {
  const c = 1024;
  const r = n / 4;
  const x = randomTokens(n, c, n);
  const xt = tensor('f32', [n, c], x);
  // same answer first: the benchmark compares equal work
  const ref = denseJs(x, n, c, r);
  const got = mergeTokensSync(xt, { r });
  let maxErr = 0;
  for (let i = 0; i < ref.out.length; i++) maxErr = Math.max(maxErr, Math.abs(ref.out[i]! - got.tokens.data[i]!));
  if (maxErr > 1e-4) throw new Error(`native and dense JS disagree (max error ${maxErr})`);
  const js = time(() => denseJs(x, n, c, r), Math.min(runs, 3));
  const ours = () => {
    const t0 = performance.now();
    mergeTokensSync(xt, { r });
    return performance.now() - t0;
  };
  const row: string[] = [];
  const cells: Record<string, number> = {};
  for (const th of [1, threads]) {
    setThreads(th);
    const peer = typeof torch === 'string' ? null : async () => (await torch.run({ op: 'tome', n, c, r, threads: th, reps: 1 }))[0]!;
    ours();
    if (peer) await peer();
    const t = await interleave(runs, peer, ours);
    cells[`ours${th === 1 ? 1 : 'all'}`] = median(t.ours);
    cells[`peer${th === 1 ? 1 : 'all'}`] = t.peer.length ? median(t.peer) : NaN;
  }
  setThreads(0);
  const f = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');
  const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) ? `**${(a / b).toFixed(2)}x**` : 'n/a');
  row.push(
    `${n}`,
    js.toFixed(1),
    f(cells.peer1!),
    f(cells.ours1!),
    ratio(cells.peer1!, cells.ours1!),
    f(cells.peerall!),
    `${f(cells.oursall!)} (${threads} threads)`,
    ratio(cells.peerall!, cells.oursall!),
    `${(js / cells.oursall!).toFixed(1)}x`,
  );
  log(`| ${row.join(' | ')} |`);
}
log();
log("Ratios: the other's median time / inferzip's (> 1: inferzip is faster).");
log();
if (onlyTome) {
  if (typeof torch !== 'string') torch.close();
  writeFileSync(outPath, lines.join('\n') + '\n');
  console.log(`\nwrote ${outPath}`);
  process.exit(0);
}
log('## Whole-model token reduction of a schedule');
log();
log(
  'Tokens entering each layer under `mergeSchedule` (class token protected), attention cost as sum of N^2 and MLP cost as sum of N, relative to no merging; merge time is the sum of the native steps (C = 1024 for ViT-L, 768 for ViT-B) on this machine.',
);
log();
log('| model | schedule | tokens first -> last | attention N^2 | MLP N | merge time, all layers (ms) |');
log('|---|---|---|---|---|---|');
for (const m of [
  { name: 'ViT-B/16 224px', n: 197, layers: 12, c: 768, spec: 13 as const },
  { name: 'ViT-L/14 336px (LLaVA vision tower)', n: 577, layers: 24, c: 1024, spec: 8 as const },
  { name: 'ViT-L/14 336px', n: 577, layers: 24, c: 1024, spec: { r: 16, inflection: 0.5 } },
]) {
  const sched = mergeSchedule(m.layers, m.spec, { tokens: m.n, protectedTokens: 1 });
  const counts = scheduleTokens(m.n, sched);
  const perLayer = counts.slice(0, m.layers);
  const attn = perLayer.reduce((a, v) => a + v * v, 0) / (m.layers * m.n * m.n);
  const mlp = perLayer.reduce((a, v) => a + v, 0) / (m.layers * m.n);
  let x: Tensor = tensor('f32', [m.n, m.c], randomTokens(m.n, m.c, 7));
  const t0 = performance.now();
  let sizes: Tensor<'f32'> | undefined;
  for (const r of sched) {
    const res: MergeResult<Tensor> = mergeTokensSync(x, { r, sizes, protectedTokens: 1 });
    x = res.tokens;
    sizes = res.sizes;
  }
  const ms = performance.now() - t0;
  const specText = typeof m.spec === 'number' ? `r = ${m.spec}` : `r = ${m.spec.r}, inflection ${m.spec.inflection}`;
  log(
    `| ${m.name} | ${specText} | ${counts[0]} -> ${counts[m.layers]} | ${(attn * 100).toFixed(0)}% | ${(mlp * 100).toFixed(0)}% | ${ms.toFixed(1)} |`,
  );
}
pruningRows(log, runs, time);
reductionRows(log, runs, time);
deviceReductionRows(log, runs, time);
realActivationRows(log, runs, time);
if (typeof torch !== 'string') torch.close();
writeFileSync(outPath, lines.join('\n') + '\n');
console.log(`\nwrote ${outPath}`);
