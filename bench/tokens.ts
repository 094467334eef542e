// ToMe step speed: inferzip (native, all cores) vs a straightforward dense JavaScript
// implementation (normalize, full similarity matrix, arg-max, sort, weighted merge)
// measured in the same run. Also the token reduction of a merge schedule.
//   node --import tsx bench/tokens.ts [--out bench/results/tokens.md]
import { writeFileSync } from 'node:fs';

import { backend, mergeSchedule, mergeTokensSync, setThreads, tensor } from '../lib/index.js';
import { machine, median, timeRuns } from './util.js';

function denseJsMerge(x: Float32Array, n: number, c: number, r: number): Float32Array {
  const na = (n + 1) >> 1;
  const nb = n >> 1;
  const norm = new Float32Array(n * c);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < c; k++) s += x[i * c + k]! ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let k = 0; k < c; k++) norm[i * c + k] = x[i * c + k]! * inv;
  }
  const scores = new Float32Array(na * nb);
  for (let a = 0; a < na; a++) {
    for (let b = 0; b < nb; b++) {
      let d = 0;
      const ar = 2 * a * c;
      const br = (2 * b + 1) * c;
      for (let k = 0; k < c; k++) d += norm[ar + k]! * norm[br + k]!;
      scores[a * nb + b] = d;
    }
  }
  const best = new Int32Array(na);
  const bestScore = new Float32Array(na);
  for (let a = 0; a < na; a++) {
    let bi = 0;
    for (let b = 1; b < nb; b++) if (scores[a * nb + b]! > scores[a * nb + bi]!) bi = b;
    best[a] = bi;
    bestScore[a] = scores[a * nb + bi]!;
  }
  const order = Array.from({ length: na }, (_, i) => i).sort((p, q) => bestScore[q]! - bestScore[p]! || p - q);
  const merged = new Uint8Array(na);
  for (let i = 0; i < r; i++) merged[order[i]!] = 1;
  const slot = new Int32Array(n).fill(-1);
  let k = 0;
  for (let a = 0; a < na; a++) if (!merged[a]) slot[2 * a] = k++;
  for (let b = 0; b < nb; b++) slot[2 * b + 1] = k++;
  const out = new Float32Array(k * c);
  const sizes = new Float32Array(k);
  for (let i = 0; i < n; i++) {
    const o = i % 2 === 0 && merged[i >> 1] ? slot[2 * best[i >> 1]! + 1]! : slot[i]!;
    for (let j = 0; j < c; j++) out[o * c + j] = out[o * c + j]! + x[i * c + j]!;
    sizes[o] = sizes[o]! + 1;
  }
  for (let o = 0; o < k; o++) for (let j = 0; j < c; j++) out[o * c + j] = out[o * c + j]! / sizes[o]!;
  return out;
}

const outArg = process.argv.indexOf('--out');
const outPath = outArg > 0 ? process.argv[outArg + 1] : undefined;
const C = 1024;
const lines: string[] = [];
const log = (s: string) => {
  console.log(s);
  lines.push(s);
};
log(`# Token merging benchmark\n\nMachine: ${machine()}; inferzip backend: ${backend().name}.\n`);
log('One ToMe step (r = N/4, C = 1024, metric = x), median of 5 runs after a warm-up:\n');
log('| N | dense JS (ms) | inferzip 1 thread (ms) | inferzip all threads (ms) | speed-up 1T | speed-up all |');
log('|---|---|---|---|---|---|');
for (const N of [576, 2304]) {
  const data = Float32Array.from({ length: N * C }, () => Math.random() * 2 - 1);
  const x = tensor('f32', [N, C], data);
  const r = N / 4;
  const runs = N > 1000 ? 3 : 5;
  const js = median(await timeRuns(() => denseJsMerge(data, N, C, r), runs));
  setThreads(1);
  const one = median(await timeRuns(() => mergeTokensSync(x, { r, device: 'cpu' }), runs));
  setThreads(0);
  const all = median(await timeRuns(() => mergeTokensSync(x, { r, device: 'cpu' }), runs));
  log(`| ${N} | ${js.toFixed(1)} | ${one.toFixed(1)} | ${all.toFixed(1)} | ${(js / one).toFixed(1)}x | ${(js / all).toFixed(1)}x |`);
}
log('\nWhole-model token reduction of a schedule (tokens left after each layer):\n');
for (const [name, layers, tokens, r] of [['ViT-B/16 (r = 13)', 12, 197, 13], ['ViT-L/16 @ 336 (r = 8)', 24, 577, 8]] as const) {
  const sched = mergeSchedule(layers, r, tokens - 1); // class token protected
  let left = tokens;
  const trail = sched.map((s) => (left -= s));
  const avg = (tokens + trail.reduce((a, b) => a + b, 0)) / (layers + 1);
  log(`- ${name}: ${tokens} -> ${left} tokens; mean tokens per layer ${avg.toFixed(0)} (${((100 * avg) / tokens).toFixed(0)}% of the unmerged count)`);
}
if (outPath) writeFileSync(outPath, lines.join('\n') + '\n');
