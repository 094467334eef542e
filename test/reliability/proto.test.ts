/**
 * Names that come from files are keys of null-prototype maps: a tensor named `__proto__` (or
 * `constructor`, `toString`) survives compress -> decompress byte for byte, and verify passes.
 */
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { CompressedModel, compressModel, decompressModel, verifyModel } from '../../lib/model/index.js';
import { openSafetensors, writeSafetensorsSync } from '../../lib/safetensors/index.js';
import { cleanupTempDirs, sameBytes, tempDir } from '../model/helpers.js';

afterAll(cleanupTempDirs);

describe('tensor names that are Object.prototype keys', () => {
  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty'])('a tensor named %s round-trips', async (name) => {
    const dir = tempDir('proto');
    const src = join(dir, 'model.safetensors');
    const bf16 = new Uint16Array(64 * 64).map((_, i) => 0x3c00 + (i % 97));
    writeSafetensorsSync(src, [
      { name, dtype: 'F32', shape: [3], data: new Float32Array([1, 2, 3]) },
      { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'BF16', shape: [64, 64], data: bf16 },
    ]);
    {
      using r = openSafetensors(src);
      expect(r.tensors.map((t) => t.name)).toContain(name);
    }
    const packed = join(dir, 'packed.safetensors');
    await compressModel(src, packed);
    expect((await verifyModel(packed)).ok).toBe(true);
    const out = join(dir, 'restored.safetensors');
    await decompressModel(packed, out);
    expect(sameBytes(src, out)).toBe(true);
    using model = await CompressedModel.open(packed, { device: 'cpu' });
    expect(model.rawTensorNames).toContain(name);
    expect(Array.from((await model.readTensor(name)).data as Float32Array)).toEqual([1, 2, 3]);
  });
});
