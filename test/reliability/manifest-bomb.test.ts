/**
 * Metadata amplification: a small file whose manifest inflates far beyond what its tensor count
 * can need is refused with CORRUPT_DATA by every entry point, without inflating it all.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';

import { afterAll, describe, expect, it } from 'vitest';

import { CompressedModel, compressModel, decompressModel, inspectModel, verifyModel } from '../../lib/model/index.js';
import { MANIFEST_KEY, manifestInflateLimit } from '../../lib/model/manifest.js';
import { SafetensorsFile, writeSafetensorsSync } from '../../lib/safetensors/index.js';
import { MODEL, cleanupTempDirs, tempDir } from '../model/helpers.js';

afterAll(cleanupTempDirs);

describe('manifest inflate cap', () => {
  it('a 200 MB manifest packed into a small file is CORRUPT_DATA everywhere', async () => {
    const dir = tempDir('bomb');
    const packed = join(dir, 'ok.safetensors');
    await compressModel(MODEL, packed);
    const bomb = join(dir, 'bomb.safetensors');
    {
      using f = SafetensorsFile.open(packed);
      // valid JSON whose padding is 200 MB of spaces (deflates ~1000:1)
      const json = `{"version":1,"pad":"${' '.repeat(200_000_000)}"}`;
      const packedManifest = deflateRawSync(Buffer.from(json), { level: 9 }).toString('base64');
      expect(packedManifest.length).toBeLessThan(1_000_000);
      expect(manifestInflateLimit(packedManifest.length, f.tensors.length)).toBeLessThan(200_000_000);
      writeSafetensorsSync(
        bomb,
        f.tensors.map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, data: f.readBytesSync(e.name) })),
        { metadata: { ...f.metadata, [MANIFEST_KEY]: packedManifest } },
      );
    }
    const message = /inflates to more than/;
    await expect(CompressedModel.open(bomb, { device: 'cpu' })).rejects.toMatchObject({
      code: 'CORRUPT_DATA',
      message: expect.stringMatching(message),
    });
    await expect(decompressModel(bomb, join(dir, 'out.safetensors'))).rejects.toMatchObject({ code: 'CORRUPT_DATA' });
    const v = await verifyModel(bomb);
    expect(v.ok).toBe(false);
    expect(v.problems[0]!.message).toMatch(message);
    await expect(Promise.resolve().then(() => inspectModel(bomb))).rejects.toMatchObject({ code: 'CORRUPT_DATA' });
  });

  it('real manifests stay far below the cap', async () => {
    const dir = tempDir('bomb-ok');
    const packed = join(dir, 'ok.safetensors');
    await compressModel(MODEL, packed);
    using f = SafetensorsFile.open(packed);
    const text = f.metadata[MANIFEST_KEY]!;
    expect(manifestInflateLimit(Buffer.from(text, 'base64').byteLength, f.tensors.length)).toBeGreaterThan(1 << 20);
    expect((await verifyModel(packed)).ok).toBe(true);
  });

  it('a model whose header carries 5 MB of repetitive metadata compresses and restores byte for byte', async () => {
    // Such metadata deflates ~1000:1, so the old 1 MiB + 64x allowance refused the output.
    const dir = tempDir('bomb-meta');
    const src = join(dir, 'meta.safetensors');
    {
      using f = SafetensorsFile.open(MODEL);
      writeSafetensorsSync(
        src,
        f.tensors.map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, data: f.readBytesSync(e.name) })),
        { metadata: { notes: 'lorem ipsum '.repeat(420_000) } },
      );
    }
    const packed = join(dir, 'meta.df11.safetensors');
    await compressModel(src, packed);
    expect((await verifyModel(packed)).ok).toBe(true);
    const back = join(dir, 'back.safetensors');
    await decompressModel(packed, back);
    expect(readFileSync(back).equals(readFileSync(src))).toBe(true);
  });
});
