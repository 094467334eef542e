// A tiny Llama-shaped BF16 model (two blocks, an embedding, an f32 norm) written with the
// package's own API, so the CLI and the consumers have a real model without any repo file.
import { f32ToBf16, tensor, writeSafetensors } from 'inferzip';

const randn = (n, seed) => {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 0.5) / 2 ** 32;
  return Float32Array.from({ length: n }, () => 0.02 * Math.sqrt(-2 * Math.log(next())) * Math.cos(2 * Math.PI * next()));
};
const bf16 = (shape, seed) => tensor('bf16', shape, f32ToBf16(randn(shape[0] * shape[1], seed)));

const model = { 'model.embed_tokens.weight': bf16([256, 64], 1), 'model.norm.weight': tensor('f32', [64], new Float32Array(64).fill(1)) };
for (let i = 0; i < 2; i++) {
  for (const [j, name] of ['q_proj', 'k_proj', 'v_proj', 'o_proj'].entries())
    model[`model.layers.${i}.self_attn.${name}.weight`] = bf16([64, 64], 100 * i + j + 2);
  model[`model.layers.${i}.input_layernorm.weight`] = tensor('f32', [64], new Float32Array(64).fill(1));
}
await writeSafetensors(process.argv[2] ?? 'model.safetensors', model);
