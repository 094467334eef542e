// End-to-end speed of the demo's runs, as medians over repeated runs (the demo itself times
// each run once). Ratios are against run (1), plain BF16 weights, measured in the same round.
//   node --import tsx bench/e2e.ts [rounds=5] [tokens=128]
import { cpus } from 'node:os';

import { KV_SCHEMES } from '../lib/index.js';
import { median } from '../examples/demo/compare.js';
import { runDemo } from '../examples/demo/run.js';

const rounds = Number(process.argv[2] ?? 5);
const tokens = Number(process.argv[3] ?? 128);
const rows = new Map<string, number[]>();
const ratios = new Map<string, number[]>();
const decode: number[] = [];
const add = (m: Map<string, number[]>, k: string, v: number) => m.set(k, [...(m.get(k) ?? []), v]);

for (let r = 0; r < rounds; r++) {
  const rep = await runDemo({ tokens, kv: [...KV_SCHEMES], residual: 32, device: 'cpu', json: true });
  if (!rep.streamed.bitIdentical) throw new Error('streamed logits differ from plain BF16: the benchmark would measure a broken path');
  const base = rep.bf16.tokensPerSecond;
  const put = (name: string, tps: number) => {
    add(rows, name, tps);
    add(ratios, name, tps / base);
  };
  put('(1) plain BF16, f32 KV', base);
  put('(2) streamed DFloat11 (prefetch), f32 KV', rep.streamed.tokensPerSecond);
  for (const k of rep.kv) if (k.available) put(`(3) streamed + ${k.scheme} ${k.bits}-bit KV`, k.tokensPerSecond!);
  decode.push(rep.decode.bytesPerSecond);
  process.stderr.write(`round ${r + 1}/${rounds}\n`);
}

console.log(`Machine: ${cpus().length}-core ${cpus()[0]?.model ?? 'x86-64'} (shared), Node ${process.version}, CPU backend.`);
console.log(`${rounds} rounds of ${tokens} tokens; medians; ratio = tokens/s over run (1) of the same round.\n`);
console.log('| run | tokens/s (median) | ratio to (1) (median) |');
console.log('|---|---:|---:|');
for (const [name, v] of rows) console.log(`| ${name} | ${median(v).toFixed(0)} | ${median(ratios.get(name)!).toFixed(2)} |`);
console.log(
  `\nDFloat11 block decode (all 5 blocks, 453,120 BF16 bytes, sequential): median ${(median(decode) / 1e6).toFixed(1)} MB/s over rounds (min ${(Math.min(...decode) / 1e6).toFixed(1)}, max ${(Math.max(...decode) / 1e6).toFixed(1)}).`,
);
