// `npm start`: a tour of what inferzip does on this machine. The end-to-end tiny-Llama
// demo (compressed weights, quantized KV cache, token merging) replaces this file.
import { DeviceTensor, backend, bf16ToF32, castFloat, openSafetensors, tensor } from '../lib/index.js';

const b = backend();
console.log(`inferzip backend: ${b.name} (${b.reason})`);
console.log(`  CUDA compiled in: ${b.cudaCompiled}; GPUs: ${b.devices.map((d) => `${d.name} (sm ${d.computeCapability})`).join(', ') || 'none'}; CPU threads: ${b.cpuThreads}`);

// f32 -> bf16 (round to nearest even), through device memory and back.
const x = tensor('f32', [4], new Float32Array([Math.PI, -1 / 3, 65504, 1e-40]));
const xb = castFloat(x, 'bf16');
{
  using d = await DeviceTensor.from(xb);
  const back = await d.download();
  console.log(`bf16 round trip on ${d.device}: [${Array.from(x.data).map((v) => v.toPrecision(6)).join(', ')}] -> [${Array.from(bf16ToF32(back.data as Uint16Array)).map((v) => v.toPrecision(6)).join(', ')}]`);
}

// The bundled model, read tensor by tensor.
using model = openSafetensors(new URL('../fixtures/stories260K/model.safetensors', import.meta.url).pathname);
const params = model.tensors.reduce((n, t) => n + t.shape.reduce((a, d) => a * d, 1), 0);
const emb = await model.read('model.embed_tokens.weight');
console.log(`bundled model: ${model.tensors.length} tensors, ${params} parameters; ${emb.dtype} embedding [${emb.shape.join(', ')}]`);
