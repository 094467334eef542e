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

/** Widens BF16 bit patterns to f32 exactly (a BF16 value is the top half of an f32). */
function widenBf16(src: Uint16Array, dst: Int32Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = src[i]! << 16;
}

export class CompressedWeights implements WeightSource {
  readonly stats: DecodeStats = { blocks: 0, bytes: 0, waitSeconds: 0 };
  /**
   * One host copy of a decoded block (BF16 bits, then f32), reused for every block: the
   * forward pass consumes a block before it asks for the next, so no per-step allocations.
   */
  readonly #bits: Uint16Array;
  readonly #f32: Float32Array;

  private constructor(
    readonly model: CompressedModel,
    readonly embed: Float32Array,
    readonly finalNorm: Float32Array,
    /** Per layer: the raw (uncompressed) norm weights, read once. */
    readonly norms: { attnNorm: Float32Array; mlpNorm: Float32Array }[],
  ) {
    this.#bits = new Uint16Array(model.blockBufferBytes / 2);
    this.#f32 = new Float32Array(model.blockBufferBytes / 2);
  }

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

  /**
   * The f32 weights of a decoded block: the whole block is copied out of the decode buffer in
   * one download and widened into a reused scratch. The matrices returned are views into that
   * scratch, valid until the next toWeights / block() call.
   */
  toWeights(decoded: DecodedBlock): BlockWeights {
    const i = decoded.ordinal;
    const elements = decoded.unit.elements;
    const bits = this.#bits.subarray(0, elements);
    const first = decoded.tensors.values().next().value;
    if (!first) throw new Error(`block ${i} holds no matrices`);
    first.buffer.download({ destination: bits, offset: 0 });
    widenBf16(bits, new Int32Array(this.#f32.buffer, 0, elements));
    const out = { ...this.norms[i]! } as BlockWeights;
    for (const [key, name] of Object.entries(BLOCK_TENSORS) as [keyof BlockWeights, string][]) {
      if (RAW_NORMS.has(key)) continue;
      const view = decoded.get(name);
      out[key] = this.#f32.subarray(view.offset, view.offset + view.elements);
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
