/**
 * Large headers (and the manifests inside) are parsed on a worker thread by the async entry
 * points, with the same results and the same typed errors as the inline parser.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { CompressedModel, compressModel, decompressModel, inspectModel, verifyModel } from '../../lib/model/index.js';
import { OFF_THREAD_BYTES, offThreadStats } from '../../lib/model/off-thread.js';
import { SafetensorsFile, openSafetensors, writeSafetensorsSync } from '../../lib/safetensors/index.js';
import { MODEL, cleanupTempDirs, sameBytes, tempDir } from '../model/helpers.js';

afterAll(cleanupTempDirs);

describe('off-thread header parsing', () => {
  it('a model with a 6 MB header opens, verifies, inspects and decompresses through the worker', { timeout: 120_000 }, async () => {
    const dir = tempDir('offthread');
    const src = join(dir, 'model.safetensors');
    {
      using f = openSafetensors(MODEL);
      const blob = randomBytes(4_500_000).toString('base64'); // incompressible: the manifest stays large
      writeSafetensorsSync(
        src,
        f.tensors.map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, data: f.readBytesSync(e.name) })),
        { metadata: { format: 'pt', blob } },
      );
    }
    const packed = join(dir, 'packed.safetensors');
    await compressModel(src, packed);
    {
      using f = SafetensorsFile.open(packed);
      expect(f.headerBytes.byteLength).toBeGreaterThanOrEqual(OFF_THREAD_BYTES);
    }
    const before = offThreadStats.parses;
    {
      using model = await CompressedModel.open(packed, { device: 'cpu' });
      expect(model.numBlocks).toBe(5);
      await model.decompressBlock(0);
    }
    expect((await verifyModel(packed)).ok).toBe(true);
    expect((await inspectModel(packed)).units.length).toBe(6);
    const out = join(dir, 'restored.safetensors');
    await decompressModel(packed, out);
    expect(sameBytes(src, out)).toBe(true);
    expect(offThreadStats.parses - before).toBe(4);
  });

  it('a large malformed header gives the same CORRUPT_DATA from the worker', async () => {
    const dir = tempDir('offthread-bad');
    const bad = join(dir, 'bad.safetensors');
    const body = Buffer.alloc(OFF_THREAD_BYTES + 8, 0x20);
    body.write('{"a": [', 0);
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(body.length));
    writeFileSync(bad, Buffer.concat([prefix, body]));
    const before = offThreadStats.parses;
    await expect(CompressedModel.open(bad, { device: 'cpu' })).rejects.toMatchObject({ code: 'CORRUPT_DATA' });
    const v = await verifyModel(bad);
    expect(v.ok).toBe(false);
    expect(offThreadStats.parses - before).toBe(2);
  });
});
