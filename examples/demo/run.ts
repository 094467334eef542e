/**
 * The end-to-end demo as a function: compress the bundled BF16 model, verify it, then
 * generate three ways (plain BF16 weights; weights streamed from the compressed file;
 * streamed weights plus each quantized KV cache) and measure everything the report shows.
 * Every figure comes from this run; nothing is filled in by hand.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { resolveDevice } from '../../lib/backend.js';
import { CompressedModel, backend, compressModel, openSafetensors, verifyModel, type KVScheme } from '../../lib/index.js';
import { CompressedWeights } from '../llama/compressed.js';
import { readConfig, type LlamaConfig } from '../llama/config.js';
import { DenseCache } from '../llama/kv.js';
import { EvictingCache } from '../llama/kv-evicting.js';
import { QuantizedCache } from '../llama/kv-quantized.js';
import { Llama, argmax } from '../llama/model.js';
import { loadAllWeights } from '../llama/weights.js';
import type { DemoOptions } from './args.js';
import { bitIdentical, klDivergence, median } from './compare.js';

export const FIXTURE_DIR = new URL('../../fixtures/stories260K/', import.meta.url).pathname;

export interface GenerationRun {
  name: string;
  tokens: number[];
  seconds: number;
  tokensPerSecond: number;
}

export interface KVRow {
  scheme: KVScheme;
  /** False when the scheme could not run here; `error` says why and no figures are given. */
  available: boolean;
  error?: string;
  bits?: number;
  /** Bits really stored per quantized key / value element (scales and metadata included). */
  keyBits?: number;
  valueBits?: number;
  /** Tokens per layer quantized at the end of the run (the rest sit in the f32 residual window). */
  quantizedTokens?: number;
  residualLength?: number;
  /** KV bytes per token over all layers, residual window included, at the end of the run. */
  bytesPerToken?: number;
  /** Packed bytes per quantized token over all layers, K and V (what long contexts cost per token). */
  packedBytesPerToken?: number;
  /** Fraction of steps whose greedy token equals run (1)'s. */
  top1Agreement?: number;
  /** Mean KL(P_bf16 || P_kv) of the next-token distributions, nats. */
  meanKL?: number;
  maxKL?: number;
  tokensPerSecond?: number;
}

/** A KV-eviction policy on the fp8 cache, measured over the decode steps after a prompt. */
export interface EvictionRow {
  /** 'none' is the same pipeline with a budget of every token (nothing evicted), on the same steps. */
  method: 'none' | 'h2o' | 'd2o';
  /** Budget as a fraction of the prompt (1 for 'none'). */
  budget: number;
  /** Tokens each layer keeps at the end (mean over layers; d2o budgets differ per layer). */
  keptTokens: number;
  /** KV bytes per sequence token over all layers at the end (eviction bookkeeping included). */
  bytesPerToken: number;
  /** Over the decode steps only (the prompt's steps see no eviction). */
  top1Agreement: number;
  meanKL: number;
  maxKL: number;
}

export interface DemoReport {
  model: { name: string; parameters: number; layers: number; heads: number; kvHeads: number; headDim: number; vocab: number };
  backend: { name: string; reason: string; cudaCompiled: boolean; device: string; forwardPass: string };
  tokens: number;
  files: {
    f32Bytes: number;
    bf16Bytes: number;
    compressedBytes: number;
    /** Compressed unit bits per compressed weight, and the lossless bound (8 + exponent entropy). */
    bitsPerWeight: number;
    entropyBound: number;
    /** Whole compressed file (headers, norms, metadata) bits per BF16 weight. */
    fileBitsPerWeight: number;
    compressSeconds: number;
  };
  verify: { ok: boolean; tensors: number; checksums: boolean; seconds: number };
  decode: {
    /** Median of several rounds decoding every block once, BF16 bytes out per second. */
    bytesPerSecond: number;
    blockBytes: number;
    rounds: number;
    /** Seconds run (2) waited for decoded blocks plus their copy to host f32 (with prefetch, decoding overlaps compute). */
    streamedWaitSeconds: number;
  };
  /**
   * Calibration: the F32 original fed run (1)'s tokens. How far BF16 rounding of the weights
   * alone moves this tiny model's next-token distributions, to read the KV rows against.
   */
  f32: { top1Agreement: number; meanKL: number; tokensPerSecond: number };
  bf16: GenerationRun;
  streamed: GenerationRun & { bitIdenticalSteps: number; bitIdentical: boolean; firstMismatch: number | null };
  denseKvBytesPerToken: number;
  kv: KVRow[];
  /** H2O / D2O rows: the first half of the run is the prompt (prefill), the rest is decoded. */
  eviction: { prompt: number; decodeSteps: number; scheme: KVScheme; rows: EvictionRow[] };
}

function newLlama(cfg: LlamaConfig, weights: ConstructorParameters<typeof Llama>[1], cache: ConstructorParameters<typeof Llama>[2]): Llama {
  return new Llama(cfg, weights, cache);
}

export async function runDemo(o: DemoOptions, log: (line: string) => void = () => {}): Promise<DemoReport> {
  const cfg = readConfig(join(FIXTURE_DIR, 'config.json'));
  const device = resolveDevice(o.device).label;
  const b = backend();
  const n = o.tokens;
  const tmp = mkdtempSync(join(tmpdir(), 'inferzip-demo-'));
  try {
    // Compress and verify.
    log('compressing the bundled BF16 model...');
    const packed = join(tmp, 'stories260K.df11.safetensors');
    const c = await compressModel(FIXTURE_DIR, packed);
    log('verifying...');
    const v = await verifyModel(packed);

    // (1) plain BF16 weights, f32 KV cache. Keep every step's logits for the comparisons.
    log(`(1) ${n} tokens with plain BF16 weights...`);
    const plainWeights = loadAllWeights(join(FIXTURE_DIR, 'model.safetensors'), cfg.layers);
    const refLogits: Float32Array[] = [];
    const refTokens: number[] = [];
    const inputs: number[] = [];
    let bf16Seconds = 0;
    let streamedSeconds = 0;
    {
      const llama = newLlama(cfg, plainWeights, new DenseCache(cfg.layers, cfg.heads, cfg.kvHeads, cfg.headDim, n));
      let token = 1;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        inputs.push(token);
        const logits = llama.stepSync(token);
        refLogits.push(logits.slice());
        token = argmax(logits);
        refTokens.push(token);
      }
      bf16Seconds = (performance.now() - t0) / 1000;
    }

    // Calibration: the F32 original on the same tokens.
    log(`    ${n} tokens with the F32 original, for calibration...`);
    let f32Agree = 0;
    let f32Kl = 0;
    let f32Seconds = 0;
    {
      const llama = newLlama(
        cfg,
        loadAllWeights(join(FIXTURE_DIR, 'model.f32.safetensors'), cfg.layers),
        new DenseCache(cfg.layers, cfg.heads, cfg.kvHeads, cfg.headDim, n),
      );
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const logits = llama.stepSync(inputs[i]!);
        if (argmax(logits) === refTokens[i]) f32Agree++;
        f32Kl += klDivergence(refLogits[i]!, logits);
      }
      f32Seconds = (performance.now() - t0) / 1000;
    }

    using model = await CompressedModel.open(packed, { device });

    // Decode throughput on its own: every block decoded once per round, sequentially.
    const weights = await CompressedWeights.open(model);
    const rounds = 9;
    const blockBytes = model.blockUnits.reduce((s, u) => s + u.elements * 2, 0);
    const roundSeconds: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      for (let i = 0; i < model.numBlocks; i++) await model.decompressBlock(i);
      roundSeconds.push((performance.now() - t0) / 1000);
    }

    // (2) weights streamed block by block from the compressed file (prefetching iterator), f32 KV cache.
    log(`(2) ${n} tokens with weights streamed from the compressed file...`);
    const streamedTokens: number[] = [];
    let identical = 0;
    let firstMismatch: number | null = null;
    {
      const llama = newLlama(cfg, weights, new DenseCache(cfg.layers, cfg.heads, cfg.kvHeads, cfg.headDim, n));
      let token = 1;
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const logits = await weights.stepPrefetched(llama, token);
        if (bitIdentical(logits, refLogits[i]!)) identical++;
        else firstMismatch ??= i;
        token = argmax(logits);
        streamedTokens.push(token);
      }
      streamedSeconds = (performance.now() - t0) / 1000;
    }
    const streamedWait = weights.stats.waitSeconds;

    // (3) streamed weights + each quantized KV cache, fed run (1)'s tokens so that every
    // step compares next-token distributions over the same context.
    const kv: KVRow[] = [];
    for (const scheme of o.kv) {
      log(`(3) ${n} tokens with streamed weights and a ${scheme} KV cache...`);
      let cache: QuantizedCache | undefined;
      try {
        cache = new QuantizedCache(cfg.layers, cfg.heads, cfg.kvHeads, cfg.headDim, { scheme, device, residualLength: o.residual });
        const llama = newLlama(cfg, weights, cache);
        let agree = 0;
        let klSum = 0;
        let klMax = 0;
        const t0 = performance.now();
        for (let i = 0; i < n; i++) {
          const logits = await weights.stepPrefetched(llama, inputs[i]!);
          if (argmax(logits) === refTokens[i]) agree++;
          const kl = klDivergence(refLogits[i]!, logits);
          klSum += kl;
          klMax = Math.max(klMax, kl);
        }
        const seconds = (performance.now() - t0) / 1000;
        const mem = cache.memory();
        const opt = cache.options;
        kv.push({
          scheme,
          available: true,
          bits: opt.bits,
          keyBits: mem[0]!.keyBits,
          valueBits: mem[0]!.valueBits,
          quantizedTokens: mem[0]!.quantizedKeys,
          residualLength: opt.residualLength,
          bytesPerToken: cache.bytesPerToken(),
          packedBytesPerToken: mem.reduce(
            (sum, m) =>
              sum +
              (m.quantizedKeys ? m.packedKeyBytes / m.quantizedKeys : 0) +
              (m.quantizedValues ? m.packedValueBytes / m.quantizedValues : 0),
            0,
          ),
          top1Agreement: agree / n,
          meanKL: klSum / n,
          maxKL: klMax,
          tokensPerSecond: n / seconds,
        });
      } catch (err) {
        kv.push({ scheme, available: false, error: err instanceof Error ? err.message : String(err) });
      } finally {
        cache?.dispose();
      }
    }

    // (4) KV eviction on the fp8 cache: the first half of the tokens is the prompt (one causal
    // prefill call per layer), then each decode step evicts down to the budget.
    const prompt = Math.max(1, Math.floor(n / 2));
    const evictScheme: KVScheme = 'fp8';
    const eviction: EvictionRow[] = [];
    if (o.kv.length && n > prompt) {
      const policies: [EvictionRow['method'], number][] = [
        ['none', 1],
        ['h2o', 0.5],
        ['h2o', 0.25],
        ['d2o', 0.5],
        ['d2o', 0.25],
      ];
      for (const [method, budget] of policies) {
        log(
          `(4) ${n} tokens, prompt ${prompt}, fp8 KV cache with ${method === 'none' ? 'no eviction' : `${method} at ${budget * 100}%`}...`,
        );
        // 'none': the same pipeline with a budget of every token (nothing is evicted), so the
        // rows differ only by the policy
        const cache = new EvictingCache(cfg.layers, cfg.heads, cfg.kvHeads, cfg.headDim, prompt, {
          scheme: evictScheme,
          device: 'cpu',
          residualLength: o.residual,
          // fp8 scale blocks of 4 tokens: a block is freed once no KV head keeps any of its
          // tokens, so finer blocks give scattered heavy hitters' memory back sooner
          groupSize: 4,
          eviction: method === 'none' ? { method: 'h2o', budget: n } : { method, budget },
        });
        try {
          const llama = newLlama(cfg, weights, cache);
          let agree = 0;
          let klSum = 0;
          let klMax = 0;
          for (let i = 0; i < n; i++) {
            const logits = await weights.stepPrefetched(llama, inputs[i]!);
            if (i < prompt) continue;
            if (argmax(logits) === refTokens[i]) agree++;
            const kl = klDivergence(refLogits[i]!, logits);
            klSum += kl;
            klMax = Math.max(klMax, kl);
          }
          const steps = n - prompt;
          const kept = cache.kept();
          eviction.push({
            method,
            budget,
            keptTokens: kept.reduce((a, x) => a + x, 0) / kept.length,
            bytesPerToken: cache.bytesPerToken(),
            top1Agreement: agree / steps,
            meanKL: klSum / steps,
            maxKL: klMax,
          });
        } finally {
          cache.dispose();
        }
      }
    }

    const parameters = (() => {
      using f = openSafetensors(join(FIXTURE_DIR, 'model.safetensors'));
      return f.tensors.reduce((sum, t) => sum + t.shape.reduce((a, d) => a * d, 1), 0);
    })();
    return {
      model: {
        name: 'stories260K',
        parameters,
        layers: cfg.layers,
        heads: cfg.heads,
        kvHeads: cfg.kvHeads,
        headDim: cfg.headDim,
        vocab: cfg.vocab,
      },
      backend: {
        name: b.name,
        reason: b.reason,
        cudaCompiled: b.cudaCompiled,
        device,
        forwardPass: 'TypeScript (examples/llama), main thread',
      },
      tokens: n,
      files: {
        f32Bytes: statSync(join(FIXTURE_DIR, 'model.f32.safetensors')).size,
        bf16Bytes: c.inputBytes,
        compressedBytes: c.outputBytes,
        bitsPerWeight: c.bitsPerWeight,
        entropyBound: c.entropyBound,
        fileBitsPerWeight: c.fileBitsPerWeight,
        compressSeconds: c.seconds,
      },
      verify: { ok: v.ok, tensors: v.tensors, checksums: v.checksums, seconds: v.seconds },
      decode: { bytesPerSecond: blockBytes / median(roundSeconds), blockBytes, rounds, streamedWaitSeconds: streamedWait },
      f32: { top1Agreement: f32Agree / n, meanKL: f32Kl / n, tokensPerSecond: n / f32Seconds },
      bf16: { name: 'plain BF16 weights', tokens: refTokens, seconds: bf16Seconds, tokensPerSecond: n / bf16Seconds },
      streamed: {
        name: 'streamed from compressed file',
        tokens: streamedTokens,
        seconds: streamedSeconds,
        tokensPerSecond: n / streamedSeconds,
        bitIdenticalSteps: identical,
        bitIdentical: identical === n,
        firstMismatch,
      },
      denseKvBytesPerToken: new DenseCache(cfg.layers, cfg.heads, cfg.kvHeads, cfg.headDim, 1).bytesPerToken(),
      kv,
      eviction: { prompt, decodeSteps: n - prompt, scheme: evictScheme, rows: eviction },
    };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
