/**
 * DFloat11 codec against zstd -1, the general-purpose compressor a user would try first, on
 * one core, in the same run: rounds alternate `zstd -b1` (the CLI's in-memory benchmark:
 * compress and decompress MB/s of the same bytes, buffers reused, the fastest run of at least a
 * second) with inferzip's encode and decode, measured the same way. Decode is reported into a
 * reused output buffer (what zstd -b measures) and into fresh memory (what decompress(unit)
 * without `out` costs: first touch of new pages included).
 *
 *   node --import tsx bench/df11-vs-zstd.ts [--n 67108864] [--rounds 5]
 * Writes bench/results/df11-vs-zstd.md. Needs the zstd CLI on PATH (not installed by the bench).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { backend } from '../lib/backend.js';
import { compressSync, decompressSync } from '../lib/df11/index.js';
import { tensor } from '../lib/tensor.js';
import { zstdVersion } from './peers/peers.js';
import { cpuModel, median, gaussianBf16 } from './util.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const N = Number(opt('--n', String(64 * 1024 * 1024)));
const ROUNDS = Number(opt('--rounds', '5'));
const root = fileURLToPath(new URL('..', import.meta.url));

/** zstd -b1 on the file: [compress MB/s, decompress MB/s, compressed bytes]. */
function zstdB1(file: string): [number, number, number] {
  const text = execFileSync('sh', ['-c', `zstd -b1 -i1 '${file}' 2>&1`], { encoding: 'utf8', maxBuffer: 1 << 26 });
  const m = [...text.matchAll(/->\s*(\d+)\s*\(x[\d.]+\),\s*([\d.]+) MB\/s,\s*([\d.]+) MB\/s/g)];
  if (!m.length) throw new Error(`could not read zstd -b output: ${text.slice(-200)}`);
  const last = m[m.length - 1]!;
  return [Number(last[2]), Number(last[3]), Number(last[1])];
}

const zv = zstdVersion();
const lines: string[] = [];
const log = (s = '') => {
  console.log(s);
  lines.push(s);
};
const w = gaussianBf16(N, 0.02, 1234);
const bytes = N * 2;
const t = tensor('bf16', [N], w);
const threads = backend().cpuThreads;
log('# DFloat11 vs zstd -1, one core, same run');
log();
log(
  `Machine: ${cpus().length} x ${cpuModel()}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.versions.node}, SIMD ${backend().simd}. Load average at start: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(', ')} (the machine is shared).`,
);
log(
  `Data: ${N.toLocaleString('en')} BF16 weights drawn from N(0, 0.02) (${(bytes / 2 ** 20).toFixed(0)} MiB). ${ROUNDS} rounds; each round runs \`zstd -b1 -i1\` (${zv ?? 'zstd missing'}) then inferzip's encode (1 thread), decode into a reused buffer (1 thread), decode into fresh memory (1 thread, one run: new memory every time) and decode into a reused buffer (${threads} threads). zstd -b repeats each job for at least a second (-i1) and reports its fastest run; inferzip's encode and reused-buffer decodes are measured the same way. Medians over the rounds.`,
);
log();
if (!zv) {
  log('zstd CLI not found on PATH: the peer columns are missing (install zstd; the bench installs nothing).');
}
const dir = join(tmpdir(), `df11-vs-zstd-${process.pid}`);
mkdirSync(dir, { recursive: true });
const file = join(dir, 'w.bf16');
writeFileSync(file, new Uint8Array(w.buffer, w.byteOffset, w.byteLength));
const zc: number[] = [],
  zd: number[] = [];
let zsize = NaN;
const enc: number[] = [],
  dec: number[] = [],
  decFresh: number[] = [],
  decAll: number[] = [];
let unit = compressSync({ w: t }, { threads: 1 });
const out = new Uint16Array(N);
decompressSync(unit, { out, threads: 1 });
for (let i = 0; i < N; i++) if (out[i] !== w[i]) throw new Error(`decode mismatch at ${i}`);
const ms = (fn: () => unknown) => {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
};
// What `zstd -b -i1` does for itself: repeat for at least a second, keep the fastest run.
const fastest = (fn: () => unknown) => {
  let min = Infinity;
  const t0 = performance.now();
  do min = Math.min(min, ms(fn));
  while (performance.now() - t0 < 1000);
  return min;
};
for (let r = 0; r < ROUNDS; r++) {
  if (zv) {
    const [c, d, s] = zstdB1(file);
    zc.push(c);
    zd.push(d);
    zsize = s;
  }
  enc.push(fastest(() => (unit = compressSync({ w: t }, { threads: 1 }))));
  dec.push(fastest(() => decompressSync(unit, { out, threads: 1 })));
  decFresh.push(ms(() => decompressSync(unit, { threads: 1 })));
  decAll.push(fastest(() => decompressSync(unit, { out, threads })));
}
rmSync(dir, { recursive: true, force: true });
spawnSync('true');
const mbs = (m: number) => bytes / 1e6 / (m / 1000);
const best = (xs: number[]) => Math.min(...xs);
const E = mbs(median(enc)),
  D = mbs(median(dec)),
  DF = mbs(median(decFresh)),
  DA = mbs(median(decAll));
const Eb = mbs(best(enc)),
  Db = mbs(best(dec)),
  DFb = mbs(best(decFresh)),
  DAb = mbs(best(decAll));
const ZC = zc.length ? median(zc) : NaN,
  ZD = zd.length ? median(zd) : NaN;
const ZCb = zc.length ? Math.max(...zc) : NaN,
  ZDb = zd.length ? Math.max(...zd) : NaN;
const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const size = unit.stats.bitsPerWeight / 16;
log(
  'Medians over the rounds, and the best round of each (the least disturbed by other jobs; `zstd -b` itself reports the fastest of its own iterations).',
);
log();
log('| what | inferzip, median | zstd -1, median | ratio of medians | inferzip, best round | zstd -1, best round | ratio of bests |');
log('|---|---:|---:|---:|---:|---:|---:|');
log(`| size (of BF16) | ${(size * 100).toFixed(1)}% | ${f((zsize / bytes) * 100, 1)}% | | | | |`);
log(`| encode MB/s, 1 thread | ${f(E)} | ${f(ZC)} | **${f(E / ZC, 2)}x** | ${f(Eb)} | ${f(ZCb)} | **${f(Eb / ZCb, 2)}x** |`);
log(
  `| decode MB/s, 1 thread, reused output buffer | ${f(D)} | ${f(ZD)} | **${f(D / ZD, 2)}x** | ${f(Db)} | ${f(ZDb)} | **${f(Db / ZDb, 2)}x** |`,
);
log(`| decode MB/s, 1 thread, fresh output | ${f(DF)} | | ${f(DF / ZD, 2)}x | ${f(DFb)} | | ${f(DFb / ZDb, 2)}x |`);
log(`| decode MB/s, ${threads} threads, reused output buffer | ${f(DA)} | | | ${f(DAb)} | | |`);
log();
log(
  `Per round (ms): encode ${enc.map((x) => x.toFixed(0)).join(', ')}; decode ${dec.map((x) => x.toFixed(0)).join(', ')}; fresh ${decFresh.map((x) => x.toFixed(0)).join(', ')}. zstd -1 MB/s per round: compress ${zc.join(', ')}; decompress ${zd.join(', ')}.`,
);
log(
  `MB/s count BF16 bytes (input of encode, output of decode), as zstd -b does. Load average at end: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(', ')}.`,
);
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results/df11-vs-zstd.md'), lines.join('\n') + '\n');
