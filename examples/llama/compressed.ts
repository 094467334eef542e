/**
 * Weights streamed from an inferzip-compressed file: every transformer block stays
 * DFloat11-compressed and is decoded just before it runs (CompressedModel.decompressBlock),
 * or one block ahead while the previous one runs (CompressedModel.blocks({ prefetch })).
 * The tied embedding (a standalone unit) is decoded once: it is needed for every token,
 * at both ends of the model.
 */
import { performance } from 'node:perf_hooks';

import { toFloat32, type CompressedModel, type DecodedBlock } from '../../lib/index.js';
import type { Llama } from './model.js';
import { BLOCK_TENSORS, type BlockWeights, type WeightSource } from './weights.js';

/** Time and bytes spent decoding blocks (for throughput figures). */
export interface DecodeStats {
  blocks: number;
  /** BF16 bytes produced by the decoder. */
  bytes: number;
  /** Seconds the forward pass waited for decoded blocks, including their copy to host f32. */
  waitSeconds: number;
}

/** The norms are stored uncompressed (1-D tensors); everything else comes from a decoded block. */
const RAW_NORMS = new Set<keyof BlockWeights>(['attnNorm', 'mlpNorm']);

export class CompressedWeights implements WeightSource {
  readonly stats: DecodeStats = { blocks: 0, bytes: 0, waitSeconds: 0 };

  private constructor(
    readonly model: CompressedModel,
    readonly embed: Float32Array,
    readonly finalNorm: Float32Array,
    /** Per layer: the raw (uncompressed) norm weights, read once. */
    readonly norms: { attnNorm: Float32Array; mlpNorm: Float32Array }[],
  ) {}

  static async open(model: CompressedModel): Promise<CompressedWeights> {
    const embedUnit = await model.decompressUnit('model.embed_tokens');
    const embed = toFloat32(await embedUnit.get('model.embed_tokens.weight').toTensor());
    const finalNorm = toFloat32(await model.readTensor('model.norm.weight'));
    const norms = [];
    for (let i = 0; i < model.numBlocks; i++) {
      norms.push({
        attnNorm: toFloat32(await model.readTensor(`model.layers.${i}.${BLOCK_TENSORS.attnNorm}`)),
        mlpNorm: toFloat32(await model.readTensor(`model.layers.${i}.${BLOCK_TENSORS.mlpNorm}`)),
      });
    }
    return new CompressedWeights(model, embed, finalNorm, norms);
  }

  /** Decodes block i now (no prefetch) and converts its matrices to f32. */
  async block(i: number): Promise<BlockWeights> {
    const t0 = performance.now();
    const decoded = await this.model.decompressBlock(i);
    const w = this.toWeights(decoded);
    this.stats.waitSeconds += (performance.now() - t0) / 1000;
    return w;
  }

  /** The f32 weights of a decoded block (the views are copied out before the buffer is reused). */
  toWeights(decoded: DecodedBlock): BlockWeights {
    const i = decoded.ordinal;
    const out = { ...this.norms[i]! } as BlockWeights;
    for (const [key, name] of Object.entries(BLOCK_TENSORS) as [keyof BlockWeights, string][]) {
      if (RAW_NORMS.has(key)) continue;
      out[key] = toFloat32(decoded.get(name).toTensorSync());
    }
    this.stats.blocks++;
    this.stats.bytes += decoded.unit.elements * 2;
    return out;
  }

  /**
   * One forward step with the prefetching iterator: block i+1 decodes (off the main
   * thread) while block i runs. Same result as `llama.step(token)`.
   */
  async stepPrefetched(llama: Llama, token: number): Promise<Float32Array> {
    llama.embed(token);
    const it = this.model.blocks({ prefetch: true });
    let t0 = performance.now();
    for await (const decoded of it) {
      const w = this.toWeights(decoded);
      this.stats.waitSeconds += (performance.now() - t0) / 1000;
      llama.runBlock(decoded.ordinal, w);
      t0 = performance.now();
    }
    return llama.finish();
  }
}
