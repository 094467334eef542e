// Makes fixtures/stories260K-activations.safetensors: the real post-RoPE queries, keys
// and values of every layer during a greedy run from BOS with the F32 weights, for
// KV-quantization quality studies on real (not random) activations.
//   node --import tsx scripts/dump-activations.ts [tokens=256]
import { join } from 'node:path';

import { tensor, writeSafetensors, type Tensor } from '../lib/index.js';
import { readConfig } from '../examples/llama/config.js';
import { DenseCache } from '../examples/llama/kv.js';
import { Llama, generate, type BlockTrace } from '../examples/llama/model.js';
import { loadAllWeights } from '../examples/llama/weights.js';

const n = Number(process.argv[2] ?? 256);
const root = new URL('..', import.meta.url).pathname;
const dir = join(root, 'fixtures/stories260K');
const cfg = readConfig(join(dir, 'config.json'));
const { heads, kvHeads, headDim, layers } = cfg;

const q = Array.from({ length: layers }, () => new Float32Array(heads * n * headDim));
const k = Array.from({ length: layers }, () => new Float32Array(kvHeads * n * headDim));
const v = Array.from({ length: layers }, () => new Float32Array(kvHeads * n * headDim));
// Trace rows arrive as [heads * headDim] per position; store them head-major [heads, tokens, headDim].
function put(dst: Float32Array, src: Float32Array, h: number, pos: number): void {
  for (let hh = 0; hh < h; hh++) dst.set(src.subarray(hh * headDim, (hh + 1) * headDim), (hh * n + pos) * headDim);
}
const trace = (t: BlockTrace) => {
  put(q[t.layer]!, t.q, heads, t.pos);
  put(k[t.layer]!, t.k, kvHeads, t.pos);
  put(v[t.layer]!, t.v, kvHeads, t.pos);
};

const model = new Llama(
  cfg,
  loadAllWeights(join(dir, 'model.f32.safetensors'), layers),
  new DenseCache(layers, heads, kvHeads, headDim, n),
  trace,
);
const inputs: number[] = [];
const generated = await generate(model, 1, n, (tok) => inputs.push(tok));

const out: Record<string, Tensor> = { tokens: tensor('i32', [n], Int32Array.from(inputs)) };
for (let l = 0; l < layers; l++) {
  out[`layer.${l}.q`] = tensor('f32', [heads, n, headDim], q[l]!);
  out[`layer.${l}.k`] = tensor('f32', [kvHeads, n, headDim], k[l]!);
  out[`layer.${l}.v`] = tensor('f32', [kvHeads, n, headDim], v[l]!);
}
const path = join(root, 'fixtures/stories260K-activations.safetensors');
await writeSafetensors(path, out, {
  metadata: {
    description: `post-RoPE q/k/v [heads, tokens, head_dim] of stories260K (F32 weights), greedy from BOS, ${n} positions; 'tokens' are the input token at each position`,
    generated: generated.slice(0, 16).join(' '),
  },
});
console.log(`wrote ${path}: ${layers} layers x ${n} tokens`);
