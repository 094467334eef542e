/**
 * The end-to-end demo's measurements: compress the bundled BF16 model, verify it, then
 * generate the same tokens three ways — (1) BF16 weights in memory, (2) weights decoded
 * block by block from the compressed file on every step, (3) (2) with each quantized KV
 * cache — and compare every step's logits with (1).
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

import { CompressedModel, backend, compressModel, verifyModel, type KVScheme } from '../../lib/index.js';
import { resolveDevice } from '../../lib/backend.js';
import { readConfig, type LlamaConfig } from '../llama/config.js';
import { DenseCache, type AttentionCache } from '../llama/kv.js';
import { QuantizedCache } from '../llama/kv-quantized.js';
import { Llama, argmax } from '../llama/model.js';
import { CompressedWeights } from '../llama/streamed.js';
import { loadAllWeights } from '../llama/weights.js';
import { AgreementMeter, type Agreement } from './metrics.js';
import type { DemoOptions } from './options.js';

export const MODEL_DIR = new URL('../../fixtures/stories260K/', import.meta.url).pathname;
const BOS = 1;

export interface RunResult {
  /** '1', '2', or the KV scheme of a part-(3) run. */
  id: string;
  label: string;
  weights: 'BF16 in memory' | 'DFloat11, streamed per block';
  kv: string;
  status: 'ok' | 'failed';
  /** Why the run failed (status 'failed'). */
  error?: string;
  tokensPerSecond?: number;
  /** Against run (1), step by step (absent for run (1) itself). */
  agreement?: Agreement;
  /** KV cache bytes per token after the run, all layers, K and V. */
  kvBytesPerToken?: number;
  /** Bits really stored per quantized key / value element (codes, scales, metadata). */
  keyBits?: number;
  valueBits?: number;
  /** Run (2): seconds per token spent waiting for block decodes (not hidden by prefetching). */
  decodeWaitPerToken?: number;
}

export interface DemoReport {
  model: { name: string; parameters: number; layers: number; heads: number; kvHeads: number; headDim: number; vocab: number };
  backend: { name: string; reason: string; cudaCompiled: boolean; gpu?: string; cpuThreads: number; device: string; cpuModel: string; cores: number; loadAverage: number };
  tokens: number;
  /** Run (1)'s greedy tokens (first 16). */
  firstTokens: number[];
  weights: {
    f32Bytes: number;
    bf16Bytes: number;
    compressedBytes: number;
    bitsPerWeight: number;
    entropyBound: number;
    fileBitsPerWeight: number;
    compressSeconds: number;
    verify: { ok: boolean; tensors: number; checksums: boolean; seconds: number; problems: string[] };
    /** Held by the CompressedModel while streaming: compressed units + decode buffers, bytes. */
    streamingBytes: { compressed: number; scratch: number; total: number };
    /** BF16 bytes out per second decoding every block (median pass), on `device`. */
    decodeBytesPerSecond: number;
  };
  kvConfig: { residualLength: number; groupSize: number; f32BytesPerToken: number };
  runs: RunResult[];
  /** True when run (2)'s logits equal run (1)'s bit for bit at every step. */
  bitIdentical: boolean;
}

const KV_LABEL: Record<KVScheme, string> = {
  kivi: 'kivi 2-bit',
  vidkv: 'vidkv 1.5/1.58-bit',
  zipcache: 'zipcache 4/2-bit',
  fp8: 'fp8 e4m3',
};

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Greedy run over BF16 weights held in memory: the reference logits of every step. */
async function runReference(cfg: LlamaConfig, n: number): Promise<{ logits: Float32Array[]; inputs: number[]; row: RunResult }> {
  const weights = loadAllWeights(join(MODEL_DIR, 'model.safetensors'), cfg.layers);
  const cache = new DenseCache(cfg.layers, cfg.heads, cfg.kvHeads, cfg.headDim, n);
  const model = new Llama(cfg, weights, cache);
  const logits: Float32Array[] = [];
  const inputs = [BOS];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const l = model.stepSync(inputs[i]!);
    logits.push(l.slice());
    inputs.push(argmax(l));
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    logits,
    inputs,
    row: { id: '1', label: '(1) BF16 weights', weights: 'BF16 in memory', kv: 'f32', status: 'ok', tokensPerSecond: n / seconds, kvBytesPerToken: cache.bytesPerToken() },
  };
}

/**
 * Streams the weights from the compressed model on every step. `inputs` given: fed as the
 * tokens (teacher forcing, so every step compares the same context); absent: free greedy run.
 */
async function runStreamed(cfg: LlamaConfig, weights: CompressedWeights, cache: AttentionCache, n: number, reference: Float32Array[], inputs?: number[]) {
  const model = new Llama(cfg, weights, cache);
  const meter = new AgreementMeter(reference);
  const wait0 = weights.waitSeconds;
  let token = BOS;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const logits = await model.stepStreamed(inputs ? inputs[i]! : token, weights.blocks());
    meter.add(logits);
    token = argmax(logits);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { agreement: meter.result(), tokensPerSecond: n / seconds, waitPerToken: (weights.waitSeconds - wait0) / n };
}

function failed(id: string, label: string, kv: string, err: unknown): RunResult {
  return { id, label, weights: 'DFloat11, streamed per block', kv, status: 'failed', error: err instanceof Error ? err.message : String(err) };
}

/** Times full passes decoding every block (no prefetch); BF16 bytes out per second, median. */
async function decodeThroughput(model: CompressedModel, passes = 15): Promise<number> {
  const bytes = model.blockUnits.reduce((s, u) => s + u.elements * 2, 0);
  const times: number[] = [];
  for (let p = 0; p < passes; p++) {
    const t0 = performance.now();
    for (let i = 0; i < model.numBlocks; i++) await model.decompressBlock(i);
    times.push((performance.now() - t0) / 1000);
  }
  return bytes / median(times);
}

export async function runDemo(options: DemoOptions, log: (msg: string) => void = () => {}): Promise<DemoReport> {
  const cfg = readConfig(join(MODEL_DIR, 'config.json'));
  const n = Math.min(options.tokens, cfg.maxPositions);
  const device = resolveDevice(options.device);
  const b = backend();
  const tmp = mkdtempSync(join(tmpdir(), 'inferzip-demo-'));
  try {
    const bf16Path = join(MODEL_DIR, 'model.safetensors');
    const packed = join(tmp, 'stories260K.df11.safetensors');
    log('compressing the BF16 model (DFloat11)...');
    const c = await compressModel(bf16Path, packed);
    log('verifying the compressed file...');
    const v = await verifyModel(packed);
    if (!v.ok) throw new Error(`the compressed file failed verification: ${v.problems.map((p) => p.message).join('; ')}`);

    log(`run (1): BF16 weights, ${n} tokens...`);
    const ref = await runReference(cfg, n);
    const runs: RunResult[] = [ref.row];

    using model = await CompressedModel.open(packed, { device });
    const weights = await CompressedWeights.open(model, cfg);

    log('run (2): weights streamed from the compressed file...');
    let bitIdentical = false;
    try {
      const cache = new DenseCache(cfg.layers, cfg.heads, cfg.kvHeads, cfg.headDim, n);
      const r = await runStreamed(cfg, weights, cache, n, ref.logits);
      bitIdentical = r.agreement.identicalSteps === n;
      runs.push({
        id: '2',
        label: '(2) DFloat11 streamed',
        weights: 'DFloat11, streamed per block',
        kv: 'f32',
        status: 'ok',
        tokensPerSecond: r.tokensPerSecond,
        agreement: r.agreement,
        kvBytesPerToken: cache.bytesPerToken(),
        decodeWaitPerToken: r.waitPerToken,
      });
    } catch (err) {
      runs.push(failed('2', '(2) DFloat11 streamed', 'f32', err));
    }

    for (const scheme of options.kv) {
      const label = `(3) ${KV_LABEL[scheme]}`;
      log(`run ${label}...`);
      let cache: QuantizedCache | undefined;
      try {
        cache = new QuantizedCache(cfg.layers, cfg.heads, cfg.kvHeads, cfg.headDim, { scheme, device, residualLength: options.residual });
        const r = await runStreamed(cfg, weights, cache, n, ref.logits, ref.inputs);
        const mem = cache.memory();
        runs.push({
          id: scheme,
          label,
          weights: 'DFloat11, streamed per block',
          kv: KV_LABEL[scheme],
          status: 'ok',
          tokensPerSecond: r.tokensPerSecond,
          agreement: r.agreement,
          kvBytesPerToken: cache.bytesPerToken(),
          keyBits: mem.keyBits,
          valueBits: mem.valueBits,
        });
      } catch (err) {
        runs.push(failed(scheme, label, KV_LABEL[scheme], err));
      } finally {
        cache?.dispose();
      }
    }

    const streamingBytes = { ...model.deviceBytes };
    log('timing block decodes...');
    const decodeBytesPerSecond = await decodeThroughput(model);

    return {
      model: { name: 'stories260K', parameters: c.bf16Weights, layers: cfg.layers, heads: cfg.heads, kvHeads: cfg.kvHeads, headDim: cfg.headDim, vocab: cfg.vocab },
      backend: { name: b.name, reason: b.reason, cudaCompiled: b.cudaCompiled, gpu: b.devices[0]?.name, cpuThreads: b.cpuThreads, device, cpuModel: cpus()[0]?.model ?? 'unknown CPU', cores: cpus().length, loadAverage: loadavg()[0]! },
      tokens: n,
      firstTokens: ref.inputs.slice(1, 17),
      weights: {
        f32Bytes: statSync(join(MODEL_DIR, 'model.f32.safetensors')).size,
        bf16Bytes: statSync(bf16Path).size,
        compressedBytes: c.outputBytes,
        bitsPerWeight: c.bitsPerWeight,
        entropyBound: c.entropyBound,
        fileBitsPerWeight: c.fileBitsPerWeight,
        compressSeconds: c.seconds,
        verify: { ok: v.ok, tensors: v.tensors, checksums: v.checksums, seconds: v.seconds, problems: v.problems.map((p) => p.message) },
        streamingBytes,
        decodeBytesPerSecond,
      },
      kvConfig: { residualLength: options.residual, groupSize: 32, f32BytesPerToken: cfg.layers * 2 * cfg.kvHeads * cfg.headDim * 4 },
      runs,
      bitIdentical,
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
