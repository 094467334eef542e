/** The Llama hyper-parameters the forward pass needs (from a Hugging Face config.json). */
import { readFileSync } from 'node:fs';

export interface LlamaConfig {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  maxPositions: number;
  rmsEps: number;
  ropeTheta: number;
}

export function readConfig(path: string): LlamaConfig {
  const c = JSON.parse(readFileSync(path, 'utf8')) as Record<string, number>;
  const hidden = c.hidden_size!;
  const heads = c.num_attention_heads!;
  return {
    hidden,
    intermediate: c.intermediate_size!,
    layers: c.num_hidden_layers!,
    heads,
    kvHeads: c.num_key_value_heads ?? heads,
    headDim: hidden / heads,
    vocab: c.vocab_size!,
    maxPositions: c.max_position_embeddings ?? 2048,
    rmsEps: c.rms_norm_eps ?? 1e-5,
    ropeTheta: c.rope_theta ?? 10000,
  };
}
