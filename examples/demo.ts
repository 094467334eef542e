// `npm start`: the bundled tiny Llama (stories260K) on compressed weights and quantized KV
// caches. Compresses the BF16 model (DFloat11), verifies it, then generates tokens three ways:
//   1. plain BF16 weights;
//   2. weights streamed block by block from the compressed file (logits must be bit-identical);
//   3. (2) plus each KV-cache scheme (top-1 agreement and KL divergence against 1).
// Options: --tokens N (256)  --kv kivi,vidkv,zipcache,fp8  --device cpu|cuda|auto  --json  --out DIR
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { CompressedModel, KV_SCHEMES, backend, compressModel, setDevice, verifyModel, type KVScheme } from '../lib/index.js';
import { readConfig } from './llama/config.js';
import { DenseCache, type AttentionCache } from './llama/kv.js';
import { QuantizedCache } from './llama/kv-quantized.js';
import { Llama, argmax } from './llama/model.js';
import { StreamedLlama } from './llama/streamed.js';
import { loadAllWeights } from './llama/weights.js';
import { summary, toMarkdown, toSvg, toTable, type DemoReport, type SchemeRow } from './report.js';

const { values } = parseArgs({
  options: {
    tokens: { type: 'string', default: '256' },
    kv: { type: 'string', default: KV_SCHEMES.join(',') },
    device: { type: 'string', default: 'auto' },
    json: { type: 'boolean', default: false },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('usage: npm start -- [--tokens N] [--kv kivi,vidkv,zipcache,fp8] [--device cpu|cuda|auto] [--json] [--out DIR]');
  process.exit(0);
}
const N = Number(values.tokens);
if (!Number.isInteger(N) || N < 1 || N > 511) throw new Error(`--tokens must be an integer in [1, 511] (the model's context is 512), got ${values.tokens}`);
const schemes = values.kv.split(',').filter(Boolean) as KVScheme[];
for (const s of schemes) if (!KV_SCHEMES.includes(s)) throw new Error(`--kv: unknown scheme '${s}' (use ${KV_SCHEMES.join(', ')})`);
setDevice(values.device as 'cpu' | 'cuda' | 'auto');
const log = (msg: string) => {
  if (!values.json) process.stderr.write(`${msg}\n`);
};

const fixtures = new URL('../fixtures/stories260K/', import.meta.url).pathname;
const cfg = readConfig(join(fixtures, 'config.json'));
const bf16Path = join(fixtures, 'model.safetensors');
const work = mkdtempSync(join(tmpdir(), 'inferzip-demo-'));
const BOS = 1;
// A 32-token full-precision window (one group) so most of the cache is really quantized.
const RESIDUAL = 32;

try {
  // --- compress + verify -------------------------------------------------
  log('compressing the BF16 model (DFloat11)...');
  const compressed = join(work, 'stories260K.df11.safetensors');
  const c = await compressModel(bf16Path, compressed);
  const v = await verifyModel(compressed);
  log(`  ${c.inputBytes} B -> ${c.outputBytes} B, ${c.bitsPerWeight.toFixed(2)} bits/weight in units; verify: ${v.ok ? 'ok' : 'FAILED'}`);

  // --- 1. plain BF16 -----------------------------------------------------
  log(`run 1: plain BF16 weights, ${N} tokens...`);
  const weights = loadAllWeights(bf16Path, cfg.layers);
  const dense = () => new DenseCache(cfg.layers, cfg.heads, cfg.kvHeads, cfg.headDim, N);
  const plain = new Llama(cfg, weights, dense());
  const inputs = [BOS];
  const refLogits: Float32Array[] = [];
  let t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const logits = plain.stepSync(inputs[i]!);
    refLogits.push(logits.slice());
    inputs.push(argmax(logits));
  }
  const plainTps = N / ((performance.now() - t0) / 1000);

  // --- 2. streamed from the compressed file ------------------------------
  log('run 2: weights streamed block by block from the compressed file...');
  using model = await CompressedModel.open(compressed, { device: 'auto' });
  const streamed = await StreamedLlama.create(model, cfg, dense());
  let firstMismatch: number | null = null;
  let token = BOS;
  t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const logits = await streamed.step(token);
    const a = new Uint32Array(logits.buffer, logits.byteOffset, logits.length);
    const b = new Uint32Array(refLogits[i]!.buffer);
    if (firstMismatch === null && !a.every((x, j) => x === b[j])) firstMismatch = i;
    token = argmax(logits);
  }
  const streamedTps = N / ((performance.now() - t0) / 1000);

  // Block decode throughput on its own (all blocks, repeated).
  let decoded = 0;
  let blocks = 0;
  t0 = performance.now();
  while (performance.now() - t0 < 1000) {
    for (let i = 0; i < model.numBlocks; i++) {
      const blk = await model.decompressBlock(i);
      for (const view of blk.tensors.values()) decoded += view.elements * 2;
      blocks++;
    }
  }
  const decodeSeconds = (performance.now() - t0) / 1000;

  // --- 3. streamed + quantized KV caches (teacher-forced on run 1's tokens) ---
  const kvRows: SchemeRow[] = [];
  for (const scheme of schemes) {
    log(`run 3: streamed weights + ${scheme} KV cache...`);
    const cache: AttentionCache = new QuantizedCache(cfg.layers, cfg.heads, cfg.kvHeads, cfg.headDim, { scheme, residualLength: RESIDUAL, groupSize: 32 });
    try {
      const run = await StreamedLlama.create(model, cfg, cache);
      let agree = 0;
      let kl = 0;
      const start = performance.now();
      for (let i = 0; i < N; i++) {
        const logits = await run.step(inputs[i]!);
        if (argmax(logits) === argmax(refLogits[i]!)) agree++;
        kl += klDivergence(refLogits[i]!, logits);
      }
      const tps = N / ((performance.now() - start) / 1000);
      const q = cache as QuantizedCache;
      kvRows.push({ scheme, bits: q.bits, agreement: agree / N, meanKl: kl / N, kvBytesPerToken: cache.bytesPerToken(), tokensPerSecond: tps });
    } finally {
      cache.dispose();
    }
  }

  const report: DemoReport = {
    backend: `${backend().name} (${backend().reason})`,
    tokens: N,
    model: {
      parameters: c.bf16Weights,
      bf16Bytes: statSync(bf16Path).size,
      compressedBytes: c.outputBytes,
      bitsPerWeight: c.bitsPerWeight,
      fileBitsPerWeight: c.fileBitsPerWeight,
      entropyBound: c.entropyBound,
      compressSeconds: c.seconds,
      verified: v.ok,
    },
    decode: { gbPerSecond: decoded / decodeSeconds / 1e9, blocksPerSecond: blocks / decodeSeconds },
    plain: { tokensPerSecond: plainTps, kvBytesPerToken: dense().bytesPerToken(), firstTokens: inputs.slice(1, 11) },
    streamed: { tokensPerSecond: streamedTps, bitIdentical: firstMismatch === null, stepsCompared: N, firstMismatch, deviceBytes: model.deviceBytes.total },
    kv: kvRows,
    kvNote: `KV schemes at their default bits with a ${RESIDUAL}-token full-precision window; run 3 is teacher-forced on run 1's tokens; KL is KL(plain || quantized) of the next-token distributions, averaged over steps.`,
  };

  if (values.out) {
    mkdirSync(values.out, { recursive: true });
    writeFileSync(join(values.out, 'demo-report.md'), toMarkdown(report));
    writeFileSync(join(values.out, 'kv-tradeoff.svg'), toSvg(report));
    log(`wrote ${join(values.out, 'demo-report.md')} and kv-tradeoff.svg`);
  }
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else console.log(`\n${summary(report)}\n\n${toTable(report)}\n`);
  if (!report.streamed.bitIdentical || !v.ok) process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}

function logSoftmax(x: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of x) max = Math.max(max, v);
  let sum = 0;
  for (const v of x) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(x, (v) => v - lse);
}

/** KL(p || q) of the softmax distributions of two logit vectors. */
function klDivergence(p: Float32Array, q: Float32Array): number {
  const lp = logSoftmax(p);
  const lq = logSoftmax(q);
  let kl = 0;
  for (let i = 0; i < lp.length; i++) kl += Math.exp(lp[i]!) * (lp[i]! - lq[i]!);
  return Math.max(0, kl);
}
