// Strict TypeScript consumer (ESM): the shipped .d.ts must type-check without skipLibCheck.
import { CompressedModel, InferzipError, QuantizedKVCache, backend, tensor, type BackendInfo, type Tensor } from 'inferzip';

const info: BackendInfo = backend();
const t: Tensor<'f32'> = tensor('f32', [2], new Float32Array(2));
export async function firstBlock(path: string): Promise<number> {
  using model = await CompressedModel.open(path, { device: 'cpu' });
  for await (const block of model.blocks()) return block.tensors.size;
  return 0;
}
export const kv = (): QuantizedKVCache => QuantizedKVCache.create({ scheme: 'fp8', heads: 1, headDim: 8 });
export const isTyped = (e: unknown): e is InferzipError => e instanceof InferzipError;
export { info, t };
