/**
 * Cost of CompressedModel's integrity checks (verify: true, the default) beside the work they
 * guard: opening a model (reading + crc32 of each unit's stored buffers) and the first decode of
 * every block (download + crc32 of the decoded matrices, once per unit), against verify: false.
 * Synthetic Llama-shaped BF16 model, N(0, 0.02), on the CPU device. Also the checksum itself:
 * the addon's CRC-32 beside Node's zlib.crc32 on the same warm 64 MiB buffer, alternating.
 *
 *   node --import tsx bench/integrity.ts [--runs 5] [--mb 64] [--json]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { crc32 as zlibCrc32 } from 'node:zlib';

import { backend } from '../lib/index.js';
import { crc32 } from '../lib/checksum.js';
import { CompressedModel, compressModel } from '../lib/model/index.js';
import { median, syntheticModel } from './util.js';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, mb: { type: 'string', default: '64' }, json: { type: 'boolean', default: false } },
});
const runs = Number(values.runs);
const mb = Number(values.mb);

/** Open + first decode of every block (prefetch off, so the two phases do not overlap). */
async function pass(path: string, verify: boolean): Promise<{ open: number; decode: number }> {
  let t = performance.now();
  using model = await CompressedModel.open(path, { device: 'cpu', verify });
  const open = performance.now() - t;
  t = performance.now();
  for await (const block of model.blocks({ prefetch: false })) void block;
  return { open, decode: performance.now() - t };
}

const dir = mkdtempSync(join(tmpdir(), 'inferzip-bench-integrity-'));
try {
  const src = join(dir, 'model.safetensors');
  const weights = await syntheticModel(src, mb);
  const packed = join(dir, 'model.df11.safetensors');
  await compressModel(src, packed);
  await pass(packed, true); // warm the page cache
  const on: { open: number; decode: number }[] = [];
  const off: { open: number; decode: number }[] = [];
  for (let r = 0; r < runs; r++) {
    // alternate so drift in machine load hits both alike
    off.push(await pass(packed, false));
    on.push(await pass(packed, true));
  }
  // The checksum alone, warm buffer, alternating peer and ours.
  const data = new Uint8Array(64 << 20).map((_, i) => (i * 2654435761) >>> 24);
  const zt: number[] = [];
  const ot: number[] = [];
  for (let r = 0; r < Math.max(runs, 5); r++) {
    let t = performance.now();
    const a = zlibCrc32(data);
    zt.push(performance.now() - t);
    t = performance.now();
    const b = crc32(data);
    ot.push(performance.now() - t);
    if (a !== b) throw new Error(`crc32 differs from zlib: ${a} vs ${b}`);
  }
  const gbps = (ms: number): number => data.byteLength / 1e6 / ms;
  const checksum = { impl: backend().crc32, zlibGBps: gbps(median(zt)), oursGBps: gbps(median(ot)), ratio: median(zt) / median(ot) };
  const row = {
    weights,
    checksum,
    openMs: { verifyOff: median(off.map((x) => x.open)), verifyOn: median(on.map((x) => x.open)) },
    firstDecodeMs: { verifyOff: median(off.map((x) => x.decode)), verifyOn: median(on.map((x) => x.decode)) },
  };
  const machine = `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), load ${loadavg()[0]!.toFixed(1)}, Node ${process.version}`;
  if (values.json) console.log(JSON.stringify({ machine, runs, row }, null, 2));
  else {
    const pct = (a: number, b: number): string => `${a >= b ? '+' : ''}${(((a - b) / b) * 100).toFixed(1)}%`;
    console.log(`machine: ${machine}; medians of ${runs} runs; ${weights} BF16 weights (${((weights * 2) / 1e6).toFixed(0)} MB)`);
    console.log(
      `  open         verify off ${row.openMs.verifyOff.toFixed(1)} ms   verify on ${row.openMs.verifyOn.toFixed(1)} ms   (${pct(row.openMs.verifyOn, row.openMs.verifyOff)})`,
    );
    console.log(
      `  first decode verify off ${row.firstDecodeMs.verifyOff.toFixed(1)} ms   verify on ${row.firstDecodeMs.verifyOn.toFixed(1)} ms   (${pct(row.firstDecodeMs.verifyOn, row.firstDecodeMs.verifyOff)})`,
    );
    console.log(
      `  crc32 of 64 MiB (warm): zlib.crc32 ${checksum.zlibGBps.toFixed(2)} GB/s, inferzip (${checksum.impl}) ${checksum.oursGBps.toFixed(2)} GB/s: ${checksum.ratio.toFixed(1)}x`,
    );
    const total = (x: { open: number; decode: number }): number => x.open + x.decode;
    console.log(
      `  open + decode of every block: ${median(off.map(total)).toFixed(1)} ms -> ${median(on.map(total)).toFixed(1)} ms (${pct(median(on.map(total)), median(off.map(total)))}); later decodes of a unit are not checked again`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
