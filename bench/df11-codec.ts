/**
 * DFloat11 codec benchmark: size (bits/weight) beside the entropy bound and zstd, encoder
 * MB/s per core, CPU decoder GB/s (1 thread and all threads) beside `zstd -d` measured in
 * the same run (zstd's in-memory benchmark mode, one thread).
 *
 *   node --import tsx bench/df11-codec.ts            # 64M synthetic weights
 *   DF11_BENCH_N=16777216 node --import tsx bench/df11-codec.ts
 *
 * Writes bench/results/df11-codec.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { compressSync, decompressSync, unitToSafetensorsEntries, unitMetadata, type CompressedUnit } from '../lib/df11/index.js';
import { readSafetensorsBuffer, serializeSafetensors } from '../lib/safetensors/index.js';
import { backend } from '../lib/backend.js';
import { gaussianBf16 } from './util.js';
import { tensor, type Tensor } from '../lib/tensor.js';

const N = Number(process.env.DF11_BENCH_N ?? 64 * 1024 * 1024);
const REPEATS = Number(process.env.DF11_BENCH_REPEATS ?? 5);
const root = fileURLToPath(new URL('..', import.meta.url));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Median CPU seconds (user + system of this process) of single-threaded work. */
function cpuTimeIt(fn: () => void, repeats = REPEATS): number {
  const t: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    t.push((c.user + c.system) / 1e6);
  }
  return median(t);
}

function timeIt(fn: () => void, repeats = REPEATS): number {
  const t: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    t.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return median(t);
}

interface Zstd {
  size3: number;
  size19: number;
  decodeMBs: number;
  /** zstd -d of the -3 file, MB/s of output per CPU second (user + system), median of 5. */
  decodeCpuMBs: number;
}

function zstdBench(bytes: Uint8Array, name: string): Zstd {
  // `zstd -b` prints its result on stderr; capture both streams.
  const dir = join(tmpdir(), `df11-bench-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name);
  try {
    writeFileSync(file, bytes);
    const size = (level: number) => execFileSync('zstd', [`-${level}`, '-T0', '-c', file], { maxBuffer: 1 << 30 }).byteLength;
    const size3 = size(3);
    const size19 = size(19);
    const text = execFileSync('sh', ['-c', `zstd -b3 -i3 '${file}' 2>&1`], { encoding: 'utf8', maxBuffer: 1 << 26 });
    const m = [...text.matchAll(/MB\/s,\s*([\d.]+) MB\/s/g)];
    const decodeMBs = m.length ? Number(m[m.length - 1]![1]) : NaN;
    execFileSync('zstd', ['-3', '-q', '-f', file, '-o', `${file}.zst`]);
    const cpu: number[] = [];
    for (let i = 0; i < 5; i++) {
      const out = execFileSync('bash', ['-c', `TIMEFORMAT='%U %S'; { time zstd -q -d -c '${file}.zst' > /dev/null; } 2>&1`], {
        encoding: 'utf8',
      });
      const [u, sys] = out.trim().split(/\s+/).map(Number);
      cpu.push(u! + sys!);
    }
    return { size3, size19, decodeMBs, decodeCpuMBs: bytes.byteLength / 1e6 / median(cpu) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function fileBits(unit: CompressedUnit): number {
  const bytes = serializeSafetensors(unitToSafetensorsEntries(unit, 'unit'), unitMetadata(unit, 'unit'));
  return (bytes.byteLength * 8) / unit.encodedElements;
}

interface Row {
  name: string;
  n: number;
  entropyBound: number;
  payload: number;
  unit: number;
  file: number;
  zstd3: number;
  zstd19: number;
  encodeMBsCore: number;
  encodeMBsAll: number;
  decode1: number;
  decodeAll: number;
  zstdDecode: number;
  encodeCpuMBs: number;
  decodeCpu1: number;
  zstdDecodeCpu: number;
}

function measure(name: string, tensors: Record<string, Tensor<'bf16'>>): Row {
  const all = Object.values(tensors);
  const n = all.reduce((s, t) => s + t.data.length, 0);
  const raw = new Uint8Array(n * 2);
  let o = 0;
  for (const t of all) {
    raw.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), o);
    o += t.data.byteLength;
  }
  const threads = backend().cpuThreads;
  let unit!: CompressedUnit;
  const encRepeats = n > 1 << 24 ? 3 : REPEATS;
  const enc1 = timeIt(() => (unit = compressSync(tensors, { threads: 1 })), encRepeats);
  const encAll = timeIt(() => (unit = compressSync(tensors, { threads })), encRepeats);
  const out = new Uint16Array(unit.totalElements);
  decompressSync(unit, { out }); // warm up + verify
  for (let i = 0, k = 0; i < all.length; i++) {
    const d = all[i]!.data;
    for (let j = 0; j < d.length; j++, k++) if (out[k] !== d[j]) throw new Error(`${name}: decode mismatch at ${k}`);
  }
  const dec1 = timeIt(() => decompressSync(unit, { out, threads: 1 }));
  const decCpu = cpuTimeIt(() => decompressSync(unit, { out, threads: 1 }));
  const encCpu = cpuTimeIt(() => compressSync(tensors, { threads: 1 }), encRepeats);
  const decAll = timeIt(() => decompressSync(unit, { out, threads }));
  const z = zstdBench(raw, `${name}.bf16`);
  const mb = (n * 2) / 1e6;
  return {
    name,
    n,
    entropyBound: unit.stats.entropyBound,
    payload: unit.stats.payloadBitsPerWeight,
    unit: unit.stats.bitsPerWeight,
    file: fileBits(unit),
    zstd3: (z.size3 * 8) / n,
    zstd19: (z.size19 * 8) / n,
    encodeMBsCore: mb / enc1,
    encodeMBsAll: mb / encAll,
    decode1: mb / 1000 / dec1,
    decodeAll: mb / 1000 / decAll,
    zstdDecode: z.decodeMBs / 1000,
    encodeCpuMBs: mb / encCpu,
    decodeCpu1: mb / 1000 / decCpu,
    zstdDecodeCpu: z.decodeCpuMBs / 1000,
  };
}

function main(): void {
  const rows: Row[] = [];
  const model = readSafetensorsBuffer(new Uint8Array(readFileSync(join(root, 'fixtures/stories260K/model.safetensors'))));
  const weights: Record<string, Tensor<'bf16'>> = {};
  for (const e of model.tensors) if (e.dtype === 'BF16') weights[e.name] = model.readSync(e.name) as Tensor<'bf16'>;
  rows.push(measure('stories260K', weights));
  console.error(JSON.stringify(rows[0]));
  const synth = gaussianBf16(N, 0.02, 1234);
  rows.push(measure(`N(0,0.02) x ${N / (1 << 20)}M`, { w: tensor('bf16', [N], synth) }));
  console.error(JSON.stringify(rows[1]));

  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const f = (x: number, d = 2) => x.toFixed(d);
  const lines = [
    '# DFloat11 codec benchmark',
    '',
    `Machine: ${cpus().length}-core ${cpu} VM, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.versions.node}, no GPU. ` +
      `zstd ${execFileSync('zstd', ['--version'], { encoding: 'utf8' })
        .trim()
        .replace(/^\*+\s*|\s*\*+$/g, '')}.`,
    `Medians of ${REPEATS} runs (encoder: 3 on the large set). Command: \`node --import tsx bench/df11-codec.ts\` (DF11_BENCH_N=${N}).`,
    '',
    '## Size (bits per weight; BF16 = 16)',
    '',
    '| weights | elements | entropy bound 8+H | DF11 payload | DF11 unit (all buffers) | DF11 safetensors file | zstd -3 | zstd -19 |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.n.toLocaleString('en')} | ${f(r.entropyBound, 3)} | ${f(r.payload, 3)} (+${f(r.payload - r.entropyBound, 3)}) | ${f(r.unit, 3)} | ${f(r.file, 3)} (+${f(r.file - r.entropyBound, 3)}) | ${f(r.zstd3, 3)} | ${f(r.zstd19, 3)} |`,
    ),
    '',
    'zstd sizes are of the raw BF16 bytes (`zstd -3 -T0` / `zstd -19 -T0`).',
    '',
    '## Speed',
    '',
    '| weights | encode MB/s, 1 core | encode MB/s, all cores | decode GB/s, 1 thread | decode GB/s, all threads | zstd -d GB/s, 1 thread (same data, -3) | DF11 / zstd (1 thread) |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${f(r.encodeMBsCore, 0)} | ${f(r.encodeMBsAll, 0)} | ${f(r.decode1)} | ${f(r.decodeAll)} | ${f(r.zstdDecode)} | ${f(r.decode1 / r.zstdDecode)}x |`,
    ),
    '',
    'Encode MB/s counts BF16 input bytes; decode GB/s counts BF16 output bytes (zstd: original bytes, from `zstd -b3 -i3`, in memory). Wall-clock medians.',
    '',
    '### Per CPU second (single thread; robust when other jobs share the cores)',
    '',
    '| weights | encode MB/s per CPU-s | decode GB/s per CPU-s | zstd -d GB/s per CPU-s (CLI, -3 file) | DF11 / zstd |',
    '|---|---:|---:|---:|---:|',
    ...rows.map(
      (r) => `| ${r.name} | ${f(r.encodeCpuMBs, 0)} | ${f(r.decodeCpu1)} | ${f(r.zstdDecodeCpu)} | ${f(r.decodeCpu1 / r.zstdDecodeCpu)}x |`,
    ),
    '',
    `Load average while running: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(', ')} (the machine is shared).`,
    '',
  ];
  mkdirSync(join(root, 'bench/results'), { recursive: true });
  writeFileSync(join(root, 'bench/results/df11-codec.md'), lines.join('\n'));
  console.log(lines.join('\n'));
}

main();
