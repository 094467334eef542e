/**
 * Weights streamed from a DFloat11-compressed file: every transformer block stays
 * compressed (on the CPU or the GPU) and is decoded just before it runs, on every forward
 * step. The prefetching iterator decodes block i+1 off the main thread while block i runs.
 * Norms are stored uncompressed; the embedding (also the tied output head) is decoded once.
 */
import { toFloat32, type CompressedModel, type DecodedBlock } from '../../lib/index.js';
import type { LlamaConfig } from './config.js';
import { BLOCK_TENSORS, type BlockWeights, type WeightSource } from './weights.js';

type Matrix = Exclude<keyof BlockWeights, 'attnNorm' | 'mlpNorm'>;
const MATRICES = Object.keys(BLOCK_TENSORS).filter((k) => k !== 'attnNorm' && k !== 'mlpNorm') as Matrix[];

/** Widens BF16 bit patterns to f32 exactly (bf16 is the top half of an f32). */
function widenBf16(src: Uint16Array, dst: Uint32Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = src[i]! << 16;
}

export class CompressedWeights implements WeightSource {
  /** f32 copy of the decoded block (one scratch: a block is consumed before the next is widened). */
  readonly #bits: Uint16Array;
  readonly #f32: Float32Array;
  /** Seconds spent waiting for decodes and widening them (the streaming overhead). */
  waitSeconds = 0;
  blocksDecoded = 0;

  private constructor(
    readonly model: CompressedModel,
    readonly embed: Float32Array,
    readonly finalNorm: Float32Array,
    readonly norms: { attnNorm: Float32Array; mlpNorm: Float32Array }[],
  ) {
    const elements = model.blockBufferBytes / 2;
    this.#bits = new Uint16Array(elements);
    this.#f32 = new Float32Array(elements);
  }

  /** Reads the uncompressed norms and decodes the embedding once. */
  static async open(model: CompressedModel, config: LlamaConfig): Promise<CompressedWeights> {
    if (model.numBlocks !== config.layers) throw new Error(`the compressed model has ${model.numBlocks} blocks, the config says ${config.layers} layers`);
    const raw = async (name: string) => toFloat32(await model.readTensor(name));
    const norms = [];
    for (let i = 0; i < config.layers; i++) {
      norms.push({
        attnNorm: await raw(`model.layers.${i}.${BLOCK_TENSORS.attnNorm}`),
        mlpNorm: await raw(`model.layers.${i}.${BLOCK_TENSORS.mlpNorm}`),
      });
    }
    const embedUnit = await model.decompressUnit('model.embed_tokens');
    const embed = toFloat32(embedUnit.get('model.embed_tokens.weight').toTensorSync());
    return new CompressedWeights(model, embed, await raw('model.norm.weight'), norms);
  }

  /** f32 weights of a decoded block (views into the scratch: valid until the next call). */
  widen(block: DecodedBlock): BlockWeights {
    const layer = block.unit.block ?? block.ordinal;
    const bits = this.#bits.subarray(0, block.unit.elements);
    block.get(`model.layers.${layer}.${BLOCK_TENSORS.wq}`).buffer.download(bits, 0);
    widenBf16(bits, new Uint32Array(this.#f32.buffer, 0, bits.length));
    const out = { ...this.norms[layer]! } as BlockWeights;
    for (const key of MATRICES) {
      const view = block.get(`model.layers.${layer}.${BLOCK_TENSORS[key]}`);
      out[key] = this.#f32.subarray(view.offset, view.offset + view.elements);
    }
    this.blocksDecoded++;
    return out;
  }

  /** Block i without prefetching (decompressBlock). */
  async block(i: number): Promise<BlockWeights> {
    const t0 = performance.now();
    const w = this.widen(await this.model.decompressBlock(i));
    this.waitSeconds += (performance.now() - t0) / 1000;
    return w;
  }

  /** Every block in order through the prefetching iterator (block i+1 decodes while i runs). */
  async *blocks(): AsyncGenerator<BlockWeights, void, undefined> {
    const it = this.model.blocks({ prefetch: true });
    try {
      for (;;) {
        const t0 = performance.now();
        const r = await it.next();
        if (r.done) return;
        const w = this.widen(r.value);
        this.waitSeconds += (performance.now() - t0) / 1000;
        yield w;
      }
    } finally {
      await it.return();
    }
  }
}
