/**
 * The GPU targets, ready for the first machine with a CUDA device (none has been lent to this
 * project yet, so this script has only run with `--device cpu`, which exercises the same
 * harness on host memory):
 *  - DF11: decode of a device-resident unit into device memory, GB/s of BF16 output, beside a
 *    device-to-device copy of the same output size in the same run (the memory-bandwidth
 *    roofline; the issue's target is >= 1.5 TB/s on an H100);
 *  - KV: attention of one decode query per head from packed KIVI-2 codes on the device, beside
 *    the time an f16 cache of the same tokens needs just to be read once at the measured copy
 *    bandwidth (a lower bound for any f16 attention kernel: packed faster than that is faster
 *    than every f16 kernel);
 *  - ToMe: one merge step on the device, beside the attention FLOPs it saves priced at the
 *    device's peak (a lower bound on the saved time);
 *  - TempMe: mergeClips of 12 frames on the device, beside the same call on host frames (CPU
 *    backend) in the same run.
 *  - TopV and Zero-TPrune: one pruning call on device tensors, beside what a user would do
 *    without the device path (download the tensors, prune on the host CPU backend).
 *
 *   node --import tsx bench/gpu.ts                 # CUDA; says so and exits 0 without a GPU
 *   node --import tsx bench/gpu.ts --device cpu    # the same harness on the CPU backend
 *   GPU_BENCH_N=268435456 GPU_BENCH_PEAK_TFLOPS=989 node --import tsx bench/gpu.ts
 *
 * Writes bench/results/gpu.md (with --device cpu it only prints: those are not GPU figures).
 * CI runs the harness on the CPU device with a small N so the script keeps working.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { backend, deviceId, type DeviceKind } from '../lib/backend.js';
import { compress } from '../lib/df11/index.js';
import { DeviceTensor } from '../lib/device-tensor.js';
import { quantizeKV } from '../lib/kvquant/index.js';
import { decodeDeviceUnit, uploadUnit } from '../lib/model/codec.js';
import { native } from '../lib/native.js';
import { f32ToBf16, tensor, type Tensor } from '../lib/tensor.js';
import { mergeClips, mergeTokens, pruneByAttentionGraph, pruneByTransport } from '../lib/tokens/index.js';
import { rng } from '../test/df11/helpers.js';
import { median, timeRuns } from './util.js';

const argDevice = process.argv.includes('--device') ? process.argv[process.argv.indexOf('--device') + 1] : 'cuda';
if (argDevice !== 'cuda' && argDevice !== 'cpu') throw new Error(`--device must be cuda or cpu, got ${argDevice}`);
const device = argDevice as DeviceKind;
const info = backend();
if (device === 'cuda' && info.devices.length === 0) {
  console.log(`No CUDA device (${info.reason}); nothing measured. Run with --device cpu to exercise the harness.`);
  process.exit(0);
}
const onCpu = device === 'cpu';
const N = Number(process.env.GPU_BENCH_N ?? (onCpu ? 1 << 24 : 1 << 28));
const REPS = Number(process.env.GPU_BENCH_REPS ?? (onCpu ? 5 : 30));
// Dense BF16 tensor-core peak used to price saved attention work (H100 SXM: 989 TFLOPS).
const PEAK_TFLOPS = Number(process.env.GPU_BENCH_PEAK_TFLOPS ?? (onCpu ? 0.1 : 989));

// Medians of timed runs after one warm-up (the calls synchronize, so wall clock is the figure).
const timeAsync = async (fn: () => Promise<unknown>, reps = REPS): Promise<number> => median(await timeRuns(fn, reps)) / 1e3;
const timeSync = (fn: () => unknown, reps = REPS): Promise<number> => timeAsync(async () => fn(), reps);

function randn(n: number, seed: number, std = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const m = Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * std;
    const a = 2 * Math.PI * r();
    out[i] = m * Math.cos(a);
    if (i + 1 < n) out[i + 1] = m * Math.sin(a);
  }
  return out;
}

/** N(0, 0.02) BF16 weights: one 16M-element draw, tiled with the low mantissa bits varied per tile. */
function weights(n: number): Uint16Array {
  const tile = f32ToBf16(randn(Math.min(n, 1 << 24), 1, 0.02));
  const out = new Uint16Array(n);
  for (let base = 0, k = 0; base < n; base += tile.length, k++) {
    const m = Math.min(tile.length, n - base);
    for (let i = 0; i < m; i++) out[base + i] = tile[i]! ^ (k & 7);
  }
  return out;
}

const lines: string[] = [];
const log = (s = '') => {
  console.log(s);
  lines.push(s);
};
const dev = info.devices[0];
log(`# GPU targets (bench/gpu.ts${onCpu ? ', --device cpu: the harness on host memory, not a GPU figure' : ''})`);
log();
log(
  `Device: ${onCpu ? `CPU backend, ${cpus().length} x ${cpus()[0]?.model ?? 'CPU'} (${info.cpuThreads} threads)` : `${dev!.name}, ${(dev!.memory / 2 ** 30).toFixed(0)} GiB, compute capability ${dev!.computeCapability}`}. Node ${process.version}. Load average ${loadavg()
    .map((x) => x.toFixed(1))
    .join(', ')}.`,
);
log(`Medians of ${REPS} runs after a warm-up; wall clock around each call (the calls synchronize).`);
log();

// --- DF11 decode
const bf16 = weights(N);
const unit = await compress({ w: tensor('bf16', [N], bf16) });
const resident = await uploadUnit({ ...unit.buffers }, deviceId(device));
const out = new (native().NativeBuffer)({ device, bytes: N * 2, zero: false });
const copySrc = new (native().NativeBuffer)({ device, bytes: N * 2, zero: false });
const decode = await timeAsync(() => decodeDeviceUnit(resident, out));
const check = new Uint16Array(N);
out.download({ destination: check, offset: 0 });
for (let i = 0; i < N; i++) if (check[i] !== bf16[i]) throw new Error(`decoded word ${i} differs: the figures below would mean nothing`);
const copy = await timeSync(() => out.copyFrom({ source: copySrc, dstOffset: 0, srcOffset: 0, bytes: N * 2 }));
const copyGBs = (2 * N * 2) / copy / 1e9; // a copy reads and writes every byte
log('## DFloat11 decode (device-resident unit -> device buffer)');
log();
log(
  '| weights | compressed MB | decode (ms) | decode GB/s of BF16 output | device copy of the output (ms) | copy GB/s (read + write) | decode / copy time |',
);
log('|---|---:|---:|---:|---:|---:|---:|');
log(
  `| N(0, 0.02) x ${N.toLocaleString('en-US')} | ${(unit.stats.compressedBytes / 1e6).toFixed(1)} | ${(decode * 1e3).toFixed(3)} | ${((N * 2) / decode / 1e9).toFixed(1)} | ${(copy * 1e3).toFixed(3)} | ${copyGBs.toFixed(1)} | ${(decode / copy).toFixed(2)}x |`,
);
log();
log('Target: >= 1500 GB/s of BF16 output on an H100. The output was checked bit-identical before timing.');
log();
resident[Symbol.dispose]();
out.dispose();
copySrc.dispose();

// --- KV attention from packed codes
const H = 8,
  D = 128;
log('## KV attention from packed KIVI-2 codes (one decode query per head, 8 heads, head_dim 128)');
log();
log(
  '| T | packed attention (ms) | packed bytes read (MB) | f16 K+V bytes (MB) | f16 read-once bound at the copy bandwidth (ms) | packed vs f16 bound |',
);
log('|---:|---:|---:|---:|---:|---:|');
for (const T of onCpu ? [4096, 16384] : [16384, 65536, 262144]) {
  const k = tensor('f32', [H, T, D], randn(H * T * D, T + 1));
  const v = tensor('f32', [H, T, D], randn(H * T * D, T + 2));
  const q = tensor('f32', [H, 1, D], randn(H * D, 3));
  const qkv = await quantizeKV(k, v, { scheme: 'kivi', bits: 2, device });
  const t = await timeAsync(() => qkv.attention(q));
  const packed = qkv.memory.packedKeyBytes + qkv.memory.packedValueBytes;
  const f16 = 2 * H * T * D * 2;
  const bound = f16 / (copyGBs * 1e9);
  log(
    `| ${T} | ${(t * 1e3).toFixed(3)} | ${(packed / 1e6).toFixed(1)} | ${(f16 / 1e6).toFixed(1)} | ${(bound * 1e3).toFixed(3)} | ${(bound / t).toFixed(2)}x |`,
  );
  qkv.dispose();
}
log();
log(
  'Target: faster than f16 attention at long context. A ratio above 1x means faster than any f16 kernel could be (it must at least read its cache once).',
);
log();

// --- ToMe step
log(`## ToMe: one merge step on the device vs the attention it saves (C = 1024, r = N / 4, priced at ${PEAK_TFLOPS} TFLOPS)`);
log();
log('| N | merge step (ms) | attention FLOPs saved per layer (G) | saved time at peak (ms) | saved / merge |');
log('|---:|---:|---:|---:|---:|');
for (const n of [576, 2304]) {
  const C = 1024,
    r = n >> 2;
  const x = await DeviceTensor.from(tensor('f32', [n, C], randn(n * C, n)), { device });
  const t = await timeAsync(async () => {
    const res = await mergeTokens(x, { r });
    res.tokens.dispose();
    res.sizes.dispose();
  });
  // QK^T and PV: 2 * 2 * N^2 * C FLOPs per layer; merging removes r tokens for the layers after it.
  const saved = 4 * C * (n * n - (n - r) * (n - r));
  const savedTime = saved / (PEAK_TFLOPS * 1e12);
  log(
    `| ${n} | ${(t * 1e3).toFixed(3)} | ${(saved / 1e9).toFixed(2)} | ${(savedTime * 1e3).toFixed(4)} | ${(savedTime / t).toFixed(2)}x |`,
  );
  x.dispose();
}
log();
log(
  'Target: cheaper than the attention it saves at N >= 576 (saved / merge > 1x, per later layer; the saving repeats in every layer after the merge).',
);
log();

// --- TempMe
log('## TempMe: mergeClips of 12 frames on the device vs the same frames on the host (CPU backend, all cores), C = 768');
log();
log('| T x P | device (ms) | host CPU (ms) | host / device | tokens left |');
log('|---|---:|---:|---:|---:|');
for (const p of [49, 196]) {
  const T = 12,
    C = 768;
  const host = tensor('f32', [T, p, C], randn(T * p * C, p + 7));
  const frames = await DeviceTensor.from(host, { device });
  let left = 0;
  const t = await timeAsync(async () => {
    const res = await mergeClips(frames, { groups: [2, 2, 3] });
    left = res.tokens.shape[0]!;
    res.tokens.dispose();
    res.sizes.dispose();
  });
  const th = await timeAsync(() => mergeClips(host, { groups: [2, 2, 3] }));
  log(`| ${T} x ${p} | ${(t * 1e3).toFixed(3)} | ${(th * 1e3).toFixed(3)} | ${(th / t).toFixed(2)}x | ${left} |`);
  frames.dispose();
}
log();
log('Target: the device path beats the host CPU path, and the frames never leave the device.');
log();

// --- TopV and Zero-TPrune
log('## TopV and Zero-TPrune on the device vs download + host CPU backend (keep 25%)');
log();
log('| case | on the device (ms) | download + host prune (ms) | host / device |');
log('|---|---:|---:|---:|');
{
  const n = 576,
    heads = 16;
  const softmax = (rows: number, seed: number) => {
    const a = randn(rows * n, seed);
    for (let r = 0; r < rows; r++) {
      const row = a.subarray(r * n, (r + 1) * n);
      let sum = 0;
      for (let j = 0; j < n; j++) sum += row[j] = Math.exp(row[j]!);
      for (let j = 0; j < n; j++) row[j] = row[j]! / sum;
    }
    return a;
  };
  const topv = [tensor('f32', [n, 1024], randn(n * 1024, 11)), tensor('f32', [32, 1024], randn(32 * 1024, 12))] as const;
  const zt = [tensor('f32', [n, 64], randn(n * 64, 13)), tensor('f32', [heads, n, n], softmax(heads * n, 14))] as const;
  const cases = [
    {
      name: `TopV N ${n} (24x24), C 1024, 32 text targets, 10 Sinkhorn rounds`,
      host: topv,
      run: (v: Tensor<'f32'> | DeviceTensor<'f32'>, t: Tensor<'f32'> | DeviceTensor<'f32'>) =>
        pruneByTransport(v, { ratio: 0.25, grid: [24, 24], text: t }),
    },
    {
      name: `Zero-TPrune N ${n}, ${heads} heads, C 64, 30 PageRank rounds`,
      host: zt,
      run: (x: Tensor<'f32'> | DeviceTensor<'f32'>, a: Tensor<'f32'> | DeviceTensor<'f32'>) => pruneByAttentionGraph(x, a, { ratio: 0.25 }),
    },
  ];
  for (const c of cases) {
    const [a, b] = [await DeviceTensor.from(c.host[0], { device }), await DeviceTensor.from(c.host[1], { device })];
    const want = await c.run(c.host[0], c.host[1]);
    const got = await c.run(a, b);
    if (got.kept.join() !== want.kept.join()) throw new Error(`${c.name}: the device kept set differs from the host path`);
    (got.tokens as DeviceTensor).dispose();
    const onDevice = await timeAsync(async () => ((await c.run(a, b)).tokens as DeviceTensor).dispose());
    const viaHost = await timeAsync(async () => c.run(await a.download(), await b.download()));
    log(`| ${c.name} | ${(onDevice * 1e3).toFixed(3)} | ${(viaHost * 1e3).toFixed(3)} | ${(viaHost / onDevice).toFixed(2)}x |`);
    a.dispose();
    b.dispose();
  }
}
log();
log('Kept sets were checked equal to the host path before timing.');

// The emulated device (INFERZIP_CUDA=emulate) runs the kernels on the CPU: its times are not GPU figures.
if (!onCpu && !/emulator/i.test(info.devices[0]?.name ?? '')) {
  const root = dirname(fileURLToPath(import.meta.url));
  mkdirSync(join(root, 'results'), { recursive: true });
  writeFileSync(join(root, 'results', 'gpu.md'), lines.join('\n') + '\n');
}
