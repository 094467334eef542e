/**
 * KV-cache quantization speed on the CPU backend:
 *  - attention of one decode query per head over T cached tokens (head_dim 128) from packed
 *    2-bit KIVI codes, vs PyTorch CPU dense bf16 attention (bench/peers/torch_peer.py, runs
 *    alternating with ours), vs dense f32 attention, vs dequantize-then-attend, all in the same
 *    run, with the memory-bandwidth bound of the packed read (bytes / read bandwidth measured
 *    in the same run by the PyTorch peer: sum of 256 MiB);
 *  - quantize throughput and bytes per cached token per scheme.
 * Run: node --import tsx bench/kv-attention.ts [--quick]   (writes bench/results/kv-speed.md)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { backend } from '../lib/backend.js';
import { setThreads } from '../lib/index.js';
import { denseAttentionSync, dequantizeKVSync, quantizeKVSync, type KVScheme } from '../lib/kvquant/index.js';
import { tensor } from '../lib/tensor.js';
import { startTorchPeer } from './peers/peers.js';
import { cpuModel } from './util.js';

const quick = process.argv.includes('--quick');
const HEADS = 8;
const D = 128;
const LENGTHS = quick ? [4096, 16384] : [4096, 16384, 65536];

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    const u = (s + 0.5) / 4294967296;
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    const v = (s + 0.5) / 4294967296;
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(fn: () => unknown, reps: number): number {
  fn(); // warm-up
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    ts.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return median(ts);
}

interface Timing {
  wall: number; // median wall-clock ms
  cpu: number; // median CPU ms of the process (all threads): robust when other jobs take cores
}

// Alternates the candidates run by run so load from other processes hits them alike.
function timeInterleaved(fns: (() => unknown)[], reps: number): Timing[] {
  for (const f of fns) f(); // warm-up
  const wall: number[][] = fns.map(() => []);
  const cpu: number[][] = fns.map(() => []);
  for (let i = 0; i < reps; i++)
    fns.forEach((f, j) => {
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      f();
      wall[j]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
      const c = process.cpuUsage(c0);
      cpu[j]!.push((c.user + c.system) / 1e3);
    });
  return fns.map((_, j) => ({ wall: median(wall[j]!), cpu: median(cpu[j]!) }));
}

const lines: string[] = [];
const log = (s = '') => {
  console.log(s);
  lines.push(s);
};

const info = backend();
const torch = await startTorchPeer();
log('# KV-cache quantization: speed (CPU backend)');
log();
log(
  `Machine: ${cpuModel()}, ${cpus().length} cores (VM), Node ${process.version}, backend ${info.name} (${info.cpuThreads} threads, SIMD ${info.simd}).`,
);
log(
  `Load average at start: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(', ')} (other engineers share this VM: absolute times vary run to run; the interleaved ratios are the figure to read).`,
);
log(
  `Workload: batch 1, ${HEADS} KV heads = ${HEADS} query heads, head_dim ${D}, one decode query per head, random normal K/V. Medians of repeated runs, all rows of a table measured in the same process.`,
);
log(
  typeof torch === 'string'
    ? `PyTorch peer: missing: ${torch}.`
    : `PyTorch peer: torch ${torch.version} CPU, dense bf16 K/V, softmax(q K^T / sqrt(d)) V per head (matmul, f32 softmax, matmul), ${info.cpuThreads} threads, OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset; its runs alternate with inferzip's.`,
);
log();
log('## Attention over T cached tokens');
log();
log(
  'Wall-clock medians, and the ratio of CPU time (all threads of the process): the wall ratio is what a caller sees, the CPU-time ratio is what to read when other jobs share the cores. Memory bound: the packed bytes read (codes + parameters, K and V) / read bandwidth (PyTorch sum over 256 MiB f32, same run).',
);
log();
log(
  '| T | PyTorch dense bf16, 1 thread (ms) | packed KIVI-2, 1 thread (ms) | vs PyTorch, 1 thread | PyTorch dense bf16, all threads (ms) | packed KIVI-2, all threads (ms) | vs PyTorch, all threads | memory bound of packed (ms) | dense f32, inferzip (ms) | dequantize + attend (ms) | packed vs dense f32 (wall) | packed vs dense f32 (CPU time) | bytes read dense f32 / packed |',
);
log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
let bwGBs = NaN;
if (typeof torch !== 'string') {
  const ms = await torch.run({ op: 'bw', mib: 256, threads: info.cpuThreads, reps: 7 });
  bwGBs = (256 * 2 ** 20) / 1e6 / median(ms);
}
for (const T of LENGTHS) {
  const k = tensor('f32', [HEADS, T, D], randn(HEADS * T * D, T + 1));
  const v = tensor('f32', [HEADS, T, D], randn(HEADS * T * D, T + 2));
  const q = tensor('f32', [HEADS, 1, D], randn(HEADS * D, 3));
  const qkv = quantizeKVSync(k, v, { scheme: 'kivi', bits: 2 });
  const reps = T >= 65536 ? 11 : 21;
  const [dense, packed] = timeInterleaved([() => denseAttentionSync(q, k, v), () => qkv.attentionSync(q)], reps) as [Timing, Timing];
  // PyTorch bf16 and packed, alternating run by run, on 1 thread and on all threads (on a
  // loaded machine the multi-threaded peer can lose far more than ours: both are shown)
  let peer = NaN;
  let packed2 = NaN;
  let peer1 = NaN;
  let packed1 = NaN;
  if (typeof torch !== 'string') {
    for (const th of [1, info.cpuThreads]) {
      setThreads(th);
      const pt: number[] = [];
      const ours: number[] = [];
      const req = { op: 'attn', tokens: T, heads: HEADS, dim: D, dtype: 'bf16', threads: th, reps: 1 };
      await torch.run(req);
      qkv.attentionSync(q);
      for (let i = 0; i < reps; i++) {
        pt.push((await torch.run(req))[0]!);
        const t0 = process.hrtime.bigint();
        qkv.attentionSync(q);
        ours.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      if (th === 1) {
        peer1 = median(pt);
        packed1 = median(ours);
      } else {
        peer = median(pt);
        packed2 = median(ours);
      }
    }
    setThreads(0);
  }
  const deq = time(
    () => {
      const d = dequantizeKVSync(qkv);
      denseAttentionSync(q, d.k, d.v);
    },
    T >= 65536 ? 3 : 5,
  );
  const m = qkv.memory;
  const denseBytes = 2 * HEADS * T * D * 4;
  const packedBytes = m.packedKeyBytes + m.packedValueBytes;
  const bound = packedBytes / 1e6 / bwGBs;
  const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  log(
    `| ${T} | ${f(peer1)} | ${f(packed1)} | **${f(peer1 / packed1)}x** | ${f(peer)} | ${f(Number.isFinite(packed2) ? packed2 : packed.wall)} | **${f(peer / packed2)}x** | ${f(bound)} (${f(bwGBs, 1)} GB/s) | ${dense.wall.toFixed(2)} | ${deq.toFixed(2)} | ${(dense.wall / packed.wall).toFixed(2)}x | ${(dense.cpu / packed.cpu).toFixed(2)}x | ${(denseBytes / packedBytes).toFixed(1)}x |`,
  );
  qkv.dispose();
}

log();
log('### Grouped-query attention: 32 query heads over the 8 KV heads (one pass over the codes serves the 4 heads of a group)');
log();
log('| T | dense f32 (ms) | packed KIVI-2 (ms) | packed vs dense (wall) | packed vs dense (CPU time) |');
log('|---:|---:|---:|---:|---:|');
for (const T of [16384]) {
  const k = tensor('f32', [HEADS, T, D], randn(HEADS * T * D, T + 5));
  const v = tensor('f32', [HEADS, T, D], randn(HEADS * T * D, T + 6));
  const q = tensor('f32', [4 * HEADS, 1, D], randn(4 * HEADS * D, 9));
  const qkv = quantizeKVSync(k, v, { scheme: 'kivi', bits: 2 });
  const [dense, packed] = timeInterleaved([() => denseAttentionSync(q, k, v), () => qkv.attentionSync(q)], 15) as [Timing, Timing];
  log(
    `| ${T} | ${dense.wall.toFixed(2)} | ${packed.wall.toFixed(2)} | ${(dense.wall / packed.wall).toFixed(2)}x | ${(dense.cpu / packed.cpu).toFixed(2)}x |`,
  );
  qkv.dispose();
}

log();
log('## Quantize throughput and bytes per cached token');
log();
const TQ = quick ? 2048 : 4096;
log(
  `T = ${TQ} tokens, ${HEADS} heads, head_dim ${D} (f32 input: ${((2 * HEADS * TQ * D * 4) / 2 ** 20).toFixed(0)} MiB for K and V). Bytes per token cover K and V of all ${HEADS} heads; f16 would be ${2 * HEADS * D * 2} bytes.`,
);
log();
log('| scheme | quantize (ms) | tokens/s | input MB/s | key bits | value bits | bytes/token | vs f16 |');
log('|---|---:|---:|---:|---:|---:|---:|---:|');
const k = tensor('f32', [HEADS, TQ, D], randn(HEADS * TQ * D, 7));
const v = tensor('f32', [HEADS, TQ, D], randn(HEADS * TQ * D, 8));
const schemes: { name: string; scheme: KVScheme; bits?: number; fp8Format?: 'e4m3' | 'e5m2' }[] = [
  { name: 'kivi-2', scheme: 'kivi', bits: 2 },
  { name: 'kivi-4', scheme: 'kivi', bits: 4 },
  { name: 'vidkv', scheme: 'vidkv' },
  { name: 'zipcache (probe queries = keys)', scheme: 'zipcache' },
  { name: 'fp8 e4m3', scheme: 'fp8', fp8Format: 'e4m3' },
];
for (const s of schemes) {
  let last: ReturnType<typeof quantizeKVSync> | undefined;
  const ms = time(() => {
    last?.dispose();
    last = quantizeKVSync(k, v, { scheme: s.scheme, bits: s.bits, fp8Format: s.fp8Format });
  }, 3);
  const m = last!.memory;
  const bpt = (m.packedKeyBytes + m.packedValueBytes) / TQ;
  log(
    `| ${s.name} | ${ms.toFixed(1)} | ${((TQ / ms) * 1000).toFixed(0)} | ${((2 * HEADS * TQ * D * 4) / ms / 1000).toFixed(0)} | ${m.keyBits.toFixed(3)} | ${m.valueBits.toFixed(3)} | ${bpt.toFixed(0)} | ${((2 * HEADS * D * 2) / bpt).toFixed(2)}x |`,
  );
  last!.dispose();
}
log();
log(
  `Load average at end: ${loadavg()
    .map((x) => x.toFixed(1))
    .join(', ')}.`,
);
log('GPU: not measured (this machine has no GPU; the CUDA kernels compile for sm_75..sm_120 but were not run).');

const here = dirname(fileURLToPath(import.meta.url));
mkdirSync(join(here, 'results'), { recursive: true });
if (!quick) writeFileSync(join(here, 'results', 'kv-speed.md'), lines.join('\n') + '\n');
if (typeof torch !== 'string') torch.close();
