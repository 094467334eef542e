/**
 * Model-level DFloat11 benchmark: bits/weight of whole files and compress / decompress /
 * verify wall time, on the bundled stories260K model and on a synthetic Llama-shaped
 * model with N(0, 0.02) BF16 weights. Baselines measured in the same run: copying the
 * file (I/O floor) and zstd -3 / -19 of the same bytes (CLI, when installed).
 *
 *   node --import tsx bench/df11-model.ts [--runs 5] [--synthetic-mb 64] [--json]
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { compressModel, decompressModel, verifyModel } from '../lib/model/index.js';
import { median, syntheticModel } from './util.js';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    'synthetic-mb': { type: 'string', default: '64' },
    json: { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
const syntheticMB = Number(values['synthetic-mb']);

async function time(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

function hasZstd(): boolean {
  try {
    execFileSync('zstd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

interface Row {
  model: string;
  bytes: number;
  bf16Weights: number;
  compressedWeights: number;
  entropyBound: number;
  payloadBitsPerWeight: number;
  fileBitsPerWeight: number;
  fileBytes: number;
  compressS: number;
  decompressS: number;
  verifyS: number;
  copyS: number;
  zstd3?: { bitsPerWeight: number; compressS: number; decompressS: number };
  zstd19?: { bitsPerWeight: number; compressS: number; decompressS: number };
}

async function measure(label: string, input: string, dir: string, zstd: boolean, zstdRuns: number): Promise<Row> {
  const packed = join(dir, `${label}.df11.safetensors`);
  const restored = join(dir, `${label}.restored.safetensors`);
  const c: number[] = [];
  const d: number[] = [];
  const v: number[] = [];
  const cp: number[] = [];
  let result = await compressModel(input, packed);
  for (let r = 0; r < runs; r++) {
    rmSync(packed, { force: true });
    c.push(await time(async () => (result = await compressModel(input, packed))));
    rmSync(restored, { force: true });
    d.push(await time(() => decompressModel(packed, restored)));
    v.push(await time(() => verifyModel(packed)));
    rmSync(join(dir, 'copy'), { force: true });
    cp.push(await time(() => copyFileSync(input, join(dir, 'copy'))));
  }
  const bytes = statSync(input).size;
  const row: Row = {
    model: label,
    bytes,
    bf16Weights: result.bf16Weights,
    compressedWeights: result.compressedWeights,
    entropyBound: result.entropyBound,
    payloadBitsPerWeight: result.bitsPerWeight,
    fileBitsPerWeight: result.fileBitsPerWeight,
    fileBytes: result.outputBytes,
    compressS: median(c),
    decompressS: median(d),
    verifyS: median(v),
    copyS: median(cp),
  };
  if (zstd) {
    for (const level of [3, 19] as const) {
      const z = join(dir, `${label}.zst`);
      const zc: number[] = [];
      const zd: number[] = [];
      // zstd -19 takes over a minute on the synthetic model: one run is enough there.
      const levelRuns = level === 19 && zstdRuns < runs ? 1 : zstdRuns;
      for (let r = 0; r < levelRuns; r++) {
        rmSync(z, { force: true });
        zc.push(await time(() => execFileSync('zstd', [`-${level}`, '-q', '-f', '-T1', input, '-o', z])));
        zd.push(await time(() => execFileSync('zstd', ['-d', '-q', '-f', z, '-o', join(dir, 'zout')])));
      }
      const entry = { bitsPerWeight: (statSync(z).size * 8) / result.bf16Weights, compressS: median(zc), decompressS: median(zd) };
      if (level === 3) row.zstd3 = entry;
      else row.zstd19 = entry;
    }
  }
  return row;
}

const dir = mkdtempSync(join(tmpdir(), 'inferzip-bench-df11model-'));
try {
  const zstd = hasZstd();
  const rows: Row[] = [];
  rows.push(await measure('stories260K', join(import.meta.dirname, '..', 'fixtures', 'stories260K', 'model.safetensors'), dir, zstd, runs));
  if (syntheticMB > 0) {
    const synth = join(dir, 'synthetic.safetensors');
    await syntheticModel(synth, syntheticMB);
    rows.push(await measure(`synthetic-${syntheticMB}MB`, synth, dir, zstd, Math.min(runs, 3)));
  }
  const machine = `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), Node ${process.version}`;
  if (values.json) {
    console.log(JSON.stringify({ machine, runs, rows }, null, 2));
  } else {
    console.log(`machine: ${machine}; medians of ${runs} runs\n`);
    for (const r of rows) {
      const mbps = (s: number): string => `${(r.bytes / s / 1e6).toFixed(0)} MB/s`;
      console.log(`${r.model}: ${r.bytes} bytes, ${r.bf16Weights} BF16 weights (${r.compressedWeights} in units)`);
      console.log(
        `  entropy bound ${r.entropyBound.toFixed(3)}  payload ${r.payloadBitsPerWeight.toFixed(3)}  whole file ${r.fileBitsPerWeight.toFixed(3)} bits/weight (${r.fileBytes} bytes, ${((100 * r.fileBytes) / r.bytes).toFixed(1)}%)`,
      );
      console.log(
        `  compress ${(r.compressS * 1000).toFixed(1)} ms (${mbps(r.compressS)})  decompress ${(r.decompressS * 1000).toFixed(1)} ms (${mbps(r.decompressS)})  verify ${(r.verifyS * 1000).toFixed(1)} ms  copy ${(r.copyS * 1000).toFixed(2)} ms`,
      );
      for (const [name, z] of [
        ['zstd -3', r.zstd3],
        ['zstd -19', r.zstd19],
      ] as const) {
        if (z)
          console.log(
            `  ${name}: ${z.bitsPerWeight.toFixed(3)} bits/weight, compress ${(z.compressS * 1000).toFixed(1)} ms, decompress ${(z.decompressS * 1000).toFixed(1)} ms (CLI, incl. process start)`,
          );
      }
    }
    if (!zstd) console.log('\nzstd CLI not found: zstd baselines skipped');
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
