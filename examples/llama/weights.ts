/**
 * Where the forward pass gets its weights: all in memory (F32 or BF16 file), or one
 * transformer block at a time from a callback (e.g. decoded from a compressed file just
 * before the block runs).
 */
import { openSafetensors, toFloat32, type Tensor } from '../../lib/index.js';

/** One transformer block's weights as f32, row-major [out, in] like nn.Linear. */
export interface BlockWeights {
  attnNorm: Float32Array;
  wq: Float32Array;
  wk: Float32Array;
  wv: Float32Array;
  wo: Float32Array;
  mlpNorm: Float32Array;
  wGate: Float32Array;
  wUp: Float32Array;
  wDown: Float32Array;
}

export interface WeightSource {
  /** Token embedding [vocab, hidden] (also the output head: tied embeddings). */
  embed: Float32Array;
  finalNorm: Float32Array;
  /** Weights of block i; called once per block per forward step. */
  block(i: number): BlockWeights | Promise<BlockWeights>;
}

export const BLOCK_TENSORS: Record<keyof BlockWeights, string> = {
  attnNorm: 'input_layernorm.weight',
  wq: 'self_attn.q_proj.weight',
  wk: 'self_attn.k_proj.weight',
  wv: 'self_attn.v_proj.weight',
  wo: 'self_attn.o_proj.weight',
  mlpNorm: 'post_attention_layernorm.weight',
  wGate: 'mlp.gate_proj.weight',
  wUp: 'mlp.up_proj.weight',
  wDown: 'mlp.down_proj.weight',
};

/** Builds a block from a name -> tensor lookup (names relative to `model.layers.<i>.`). */
export function blockFromTensors(get: (name: string) => Tensor): BlockWeights {
  const out = {} as BlockWeights;
  for (const [key, name] of Object.entries(BLOCK_TENSORS) as [keyof BlockWeights, string][]) out[key] = toFloat32(get(name));
  return out;
}

/** Every weight of a safetensors model (F32 or BF16) held in memory as f32. */
export function loadAllWeights(path: string, layers: number): WeightSource {
  using file = openSafetensors(path);
  const read = (name: string) => toFloat32(file.readSync(name));
  const blocks: BlockWeights[] = [];
  for (let i = 0; i < layers; i++) blocks.push(blockFromTensors((n) => file.readSync(`model.layers.${i}.${n}`)));
  return { embed: read('model.embed_tokens.weight'), finalNorm: read('model.norm.weight'), block: (i) => blocks[i]! };
}
