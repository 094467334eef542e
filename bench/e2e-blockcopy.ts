// Copying a decoded block out of the decode buffer as f32 (the forward pass's cost per block
// when weights stream from a DFloat11 file): the demo's one-download-and-widen path against
// per-matrix toTensorSync() + toFloat32() (the baseline, measured in the same run), beside
// the decode itself. CPU time of this process per block, medians of 7 rounds.
//   node --import tsx bench/e2e-blockcopy.ts [blocksPerRound=500]
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

import { CompressedModel, compressModel, toFloat32 } from '../lib/index.js';
import { CompressedWeights } from '../examples/llama/compressed.js';
import { BLOCK_TENSORS } from '../examples/llama/weights.js';

const per = Number(process.argv[2] ?? 500);
const dir = mkdtempSync(join(tmpdir(), 'inferzip-bench-'));
try {
  const packed = join(dir, 'stories.df11.safetensors');
  await compressModel(new URL('../fixtures/stories260K/model.safetensors', import.meta.url).pathname, packed);
  using model = await CompressedModel.open(packed, { device: 'cpu' });
  const weights = await CompressedWeights.open(model);
  const block = await model.decompressBlock(0);
  const matrices = Object.entries(BLOCK_TENSORS)
    .filter(([k]) => !k.endsWith('Norm'))
    .map(([, n]) => n);
  const perMatrix = () => {
    for (const n of matrices) toFloat32(block.get(n).toTensorSync());
  };
  const cpuPerCall = async (f: () => unknown): Promise<number> => {
    const xs: number[] = [];
    for (let r = 0; r < 7; r++) {
      const c = process.cpuUsage();
      for (let i = 0; i < per; i++) await f();
      const u = process.cpuUsage(c);
      xs.push((u.user + u.system) / per);
    }
    return xs.sort((a, b) => a - b)[3]!;
  };
  await cpuPerCall(perMatrix); // warm-up
  const base = await cpuPerCall(perMatrix);
  const fast = await cpuPerCall(() => weights.toWeights(block));
  const decode = await cpuPerCall(() => model.decompressBlock(0));
  console.log(
    `Machine: ${cpus().length}-core ${cpus()[0]?.model ?? 'x86-64'} (shared, load average ${loadavg()[0]!.toFixed(1)}), Node ${process.version}, CPU backend.`,
  );
  console.log(
    `Block 0 of stories260K: ${block.unit.elements} BF16 weights in ${block.tensors.size} matrices; CPU µs per block, median of 7 rounds of ${per}.\n`,
  );
  console.log('| step | CPU µs / block | ratio to baseline |');
  console.log('|---|---:|---:|');
  console.log(`| baseline: per-matrix toTensorSync() + toFloat32() | ${base.toFixed(0)} | 1.00 |`);
  console.log(`| one download + in-place BF16->f32 widening into a reused scratch | ${fast.toFixed(0)} | ${(fast / base).toFixed(2)} |`);
  console.log(
    `| for scale: decompressBlock(0), awaited (decoder on a libuv worker) | ${decode.toFixed(0)} | ${(decode / base).toFixed(2)} |`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
