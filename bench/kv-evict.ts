/**
 * H2O / D2O eviction speed on the CPU backend, all rows in the same run, interleaved:
 *  - attention of one decode query per head over T cached tokens from packed 2-bit KIVI codes,
 *    without eviction vs with score accumulation (an h2o cache whose budget holds every token,
 *    so each call only accumulates scores);
 *  - one decode step (append + attention + eviction round) of an h2o and a d2o cache at budget
 *    T, and the same step of the plain TypeScript reference (test/kvquant/reference/evict.ts,
 *    8 heads, f32 rows) at the same T.
 * Run: node --import tsx bench/kv-evict.ts [--quick]   (writes bench/results/kv-evict.md)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { backend } from '../lib/backend.js';
import { QuantizedKVCache, type KVCacheOptions } from '../lib/kvquant/index.js';
import { tensor } from '../lib/tensor.js';
import { EvictingHead } from '../test/kvquant/reference/evict.js';
import { cpuModel } from './util.js';

const quick = process.argv.includes('--quick');
const HEADS = 8;
const D = 128;
const LENGTHS = quick ? [1024, 4096] : [1024, 4096, 16384];

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Median wall ms of each candidate, run alternately so load from other processes hits them alike. */
function interleaved(fns: (() => unknown)[], reps: number): number[] {
  for (const f of fns) f();
  const wall: number[][] = fns.map(() => []);
  for (let i = 0; i < reps; i++)
    fns.forEach((f, j) => {
      const t0 = process.hrtime.bigint();
      f();
      wall[j]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
    });
  return wall.map(median);
}

const lines: string[] = [];
const log = (s = '') => {
  console.log(s);
  lines.push(s);
};

const info = backend();
log('# KV eviction (H2O, D2O): speed (CPU backend)');
log();
log(`Machine: ${cpuModel()}, ${cpus().length} cores (VM), Node ${process.version}, backend ${info.name} (${info.cpuThreads} threads).`);
log(
  `Load average at start: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(', ')} (shared VM: read the ratios of interleaved rows).`,
);
log(
  `Workload: batch 1, ${HEADS} KV heads = ${HEADS} query heads, head_dim ${D}, KIVI 2-bit, residual window 128, one decode query per head.`,
);
log();
log(
  '| cached tokens T | attention, no eviction (ms) | attention + score accumulation (ms) | ratio | h2o decode step (ms) | d2o decode step (ms) | TS reference h2o step (ms) | reference / h2o |',
);
log('|---:|---:|---:|---:|---:|---:|---:|---:|');

const base: Omit<KVCacheOptions, 'eviction'> = { scheme: 'kivi', bits: 2, heads: HEADS, headDim: D, device: 'cpu' };
for (const T of LENGTHS) {
  const k = tensor('f32', [HEADS, T, D], randn(HEADS * T * D, 1));
  const v = tensor('f32', [HEADS, T, D], randn(HEADS * T * D, 2));
  const q1 = tensor('f32', [HEADS, 1, D], randn(HEADS * D, 3));
  const k1 = tensor('f32', [HEADS, 1, D], randn(HEADS * D, 4));
  const v1 = tensor('f32', [HEADS, 1, D], randn(HEADS * D, 5));
  // prefill attention with the last 64 prompt queries (scores of every token; P = T)
  const qp = tensor('f32', [HEADS, 64, D], randn(HEADS * 64 * D, 6));
  using plain = QuantizedKVCache.create(base);
  using scored = QuantizedKVCache.create({ ...base, eviction: { method: 'h2o', budget: 1 << 30 } });
  using h2o = QuantizedKVCache.create({ ...base, eviction: { method: 'h2o', budget: T } });
  using d2o = QuantizedKVCache.create({ ...base, eviction: { method: 'd2o', budget: T } });
  for (const c of [plain, scored, h2o, d2o]) {
    c.appendSync(k, v);
    c.attentionSync(qp);
  }
  const reps = T >= 16384 ? 9 : 21;
  const [tPlain = 0, tScored = 0] = interleaved([() => plain.attentionSync(q1), () => scored.attentionSync(q1)], reps);
  const step = (c: QuantizedKVCache) => () => {
    c.appendSync(k1, v1);
    c.attentionSync(q1);
  };
  const [tH2o = 0, tD2o = 0] = interleaved([step(h2o), step(d2o)], reps);
  // the TS reference: one head per KV head, same T and one decode step
  const kd = k.data,
    vd = v.data;
  const refs = Array.from({ length: HEADS }, (_, h) => {
    const r = new EvictingHead({ method: 'h2o', budget: T });
    for (let t = 0; t < T; t++)
      r.append(
        t,
        Array.from(kd.subarray((h * T + t) * D, (h * T + t + 1) * D)),
        Array.from(vd.subarray((h * T + t) * D, (h * T + t + 1) * D)),
      );
    return r;
  });
  let pos = T;
  const row = (x: Float32Array, h: number) => Array.from(x.subarray(h * D, (h + 1) * D));
  const [tRef = 0] = interleaved(
    [
      () => {
        refs.forEach((r, h) => {
          r.append(pos, row(k1.data, h), row(v1.data, h));
          r.attend([{ position: pos, q: row(q1.data, h) }]);
        });
        pos++;
      },
    ],
    T >= 16384 ? 3 : 7,
  );
  log(
    `| ${T} | ${tPlain.toFixed(2)} | ${tScored.toFixed(2)} | ${(tScored / tPlain).toFixed(2)}x | ${tH2o.toFixed(2)} | ${tD2o.toFixed(2)} | ${tRef.toFixed(1)} | ${(tRef / tH2o).toFixed(0)}x |`,
  );
}
log();
log(
  "Score accumulation keeps each block's probabilities and running max and rescales them once the chunks merge (no second pass over the codes). A decode step includes the append, the attention with accumulation and the eviction round (ranking, freeing slots; d2o also the cosine search over the kept keys and the merge). The reference is the plain TypeScript oracle of the tests (its first call counted as the prefill), not a tuned implementation.",
);

const out = join(dirname(fileURLToPath(import.meta.url)), 'results', 'kv-evict.md');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${lines.join('\n')}\n`);
