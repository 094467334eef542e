/**
 * compressModel applies the reader's limits to its own output before publishing it: a valid
 * input whose header is near the 100 MB cap (incompressible metadata) would give an output header
 * over the cap, a file no reader opens; it must fail with a typed error and leave nothing.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { InferzipError } from '../../lib/errors.js';
import { compressModel } from '../../lib/model/index.js';
import { MAX_HEADER_BYTES, SafetensorsFile, writeSafetensorsSync } from '../../lib/safetensors/index.js';
import { cleanupTempDirs, tempDir } from '../model/helpers.js';

afterAll(cleanupTempDirs);

describe('compressModel output limits', () => {
  it('an input header of ~95 MB (valid) gives UNSUPPORTED, not an unreadable file reported as success', { timeout: 180_000 }, async () => {
    const dir = tempDir('limits');
    const src = join(dir, 'big-header.safetensors');
    // random printable ASCII: deflate cannot shrink it below ~82%, base64 then adds 33%
    const raw = randomBytes(95_000_000);
    for (let i = 0; i < raw.length; i++) raw[i] = 0x20 + (raw[i]! % 95);
    for (let i = 0; i < raw.length; i++) if (raw[i] === 0x22 || raw[i] === 0x5c) raw[i] = 0x41; // no JSON escapes
    writeSafetensorsSync(
      src,
      [{ name: 'model.layers.0.mlp.up_proj.weight', dtype: 'BF16', shape: [64, 64], data: new Uint16Array(4096).fill(0x3c00) }],
      { metadata: { blob: raw.toString('latin1') } },
    );
    {
      using f = SafetensorsFile.open(src);
      expect(f.headerBytes.byteLength).toBeLessThan(MAX_HEADER_BYTES);
    }
    const out = join(dir, 'out.safetensors');
    const err = await compressModel(src, out).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferzipError);
    expect((err as InferzipError).code).toBe('UNSUPPORTED');
    expect(readdirSync(dir)).toEqual(['big-header.safetensors']);
  });
});
