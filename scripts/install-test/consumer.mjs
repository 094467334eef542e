// ESM consumer: the import condition, a whole-model round trip through the public API.
import { readFileSync } from 'node:fs';

import { InferzipError, backend, compressModel, decompressModel, verifyModel } from 'inferzip';

const b = backend();
console.log(`esm: backend ${b.name} (${b.simd}), cuda compiled: ${b.cudaCompiled}`);
const r = await compressModel('model.safetensors', 'esm.df11.safetensors');
const v = await verifyModel('esm.df11.safetensors');
if (!v.ok) throw new Error(`verify failed: ${JSON.stringify(v.problems)}`);
await decompressModel('esm.df11.safetensors', 'esm.restored.safetensors');
if (!readFileSync('model.safetensors').equals(readFileSync('esm.restored.safetensors'))) throw new Error('round trip differs');
try {
  await verifyModel('no-such-file.safetensors');
  throw new Error('expected an error');
} catch (err) {
  if (!(err instanceof InferzipError)) throw err;
}
console.log(`esm: ${r.units} units, ${r.bitsPerWeight.toFixed(2)} bits/weight, verified, restored byte for byte`);
