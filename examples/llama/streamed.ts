/**
 * Runs the forward pass with weights streamed from a compressed (DFloat11) model: each
 * step decodes block i+1 while block i computes (CompressedModel.blocks({ prefetch })).
 */
import { CompressedModel, toFloat32 } from '../../lib/index.js';
import type { LlamaConfig } from './config.js';
import type { AttentionCache } from './kv.js';
import { Llama } from './model.js';
import { BLOCK_TENSORS, type BlockWeights, type WeightSource } from './weights.js';

/** Embedding and final norm from the compressed file (the embedding is its own unit). */
export async function headWeights(model: CompressedModel): Promise<Pick<WeightSource, 'embed' | 'finalNorm'>> {
  const embedUnit = await model.decompressUnit('model.embed_tokens');
  const embed = toFloat32(await embedUnit.get('weight').toTensor());
  const finalNorm = toFloat32(await model.readTensor('model.norm.weight'));
  return { embed, finalNorm };
}

/** Decoded block views -> f32 weights (norms are stored uncompressed). */
async function blockWeights(model: CompressedModel, layer: number, get: (suffix: string) => Promise<Float32Array>): Promise<BlockWeights> {
  const out = {} as BlockWeights;
  for (const [key, suffix] of Object.entries(BLOCK_TENSORS) as [keyof BlockWeights, string][]) {
    out[key] = suffix.includes('layernorm') ? toFloat32(await model.readTensor(`model.layers.${layer}.${suffix}`)) : await get(suffix);
  }
  return out;
}

export interface StreamStats {
  /** BF16 bytes decoded. */
  decodedBytes: number;
  /** Seconds spent waiting for decoded blocks (not hidden behind compute). */
  waitSeconds: number;
}

/** A Llama whose step() streams every block from `model`. */
export class StreamedLlama {
  readonly llama: Llama;
  readonly stats: StreamStats = { decodedBytes: 0, waitSeconds: 0 };

  private constructor(
    readonly model: CompressedModel,
    config: LlamaConfig,
    head: Pick<WeightSource, 'embed' | 'finalNorm'>,
    cache: AttentionCache,
  ) {
    const noBlocks = (): BlockWeights => {
      throw new Error('StreamedLlama decodes blocks itself');
    };
    this.llama = new Llama(config, { ...head, block: noBlocks }, cache);
  }

  static async create(model: CompressedModel, config: LlamaConfig, cache: AttentionCache): Promise<StreamedLlama> {
    return new StreamedLlama(model, config, await headWeights(model), cache);
  }

  async step(token: number): Promise<Float32Array> {
    this.llama.embed(token);
    let t0 = performance.now();
    let layer = 0;
    for await (const block of this.model.blocks({ prefetch: true })) {
      this.stats.waitSeconds += (performance.now() - t0) / 1000;
      const w = await blockWeights(this.model, layer, async (suffix) => {
        const view = block.get(suffix);
        this.stats.decodedBytes += view.elements * 2;
        return toFloat32(view.toTensorSync());
      });
      this.llama.runBlock(layer++, w);
      t0 = performance.now();
    }
    return this.llama.finish();
  }
}
