// `npm start`: a tour of what inferzip does on this machine. The end-to-end tiny-Llama
// demo replaces this once weight compression and KV quantization land.
import { backend, openSafetensors } from '../lib/index.js';

const b = backend();
console.log(`inferzip backend: ${b.name} (${b.reason}); CUDA compiled in: ${b.cudaCompiled}; CPU threads: ${b.cpuThreads}`);
using model = openSafetensors(new URL('../fixtures/stories260K/model.safetensors', import.meta.url).pathname);
const params = model.tensors.reduce((n, t) => n + t.shape.reduce((a, d) => a * d, 1), 0);
console.log(`bundled model: ${model.tensors.length} tensors, ${params} parameters`);
