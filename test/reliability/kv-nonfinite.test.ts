/**
 * A saved KV cache whose codes or scales decode to NaN or Infinity is refused on load (core),
 * even when the file's checksums were recomputed to match: crc32s prove the bytes are what was
 * saved, not that they are valid.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

import { afterAll, describe, expect, it } from 'vitest';

import { InferzipError } from '../../lib/errors.js';
import { QuantizedKVCache, type KVCacheOptions } from '../../lib/kvquant/index.js';
import { openSafetensors, writeSafetensors } from '../../lib/safetensors/index.js';
import { tensor } from '../../lib/tensor.js';

const dir = mkdtempSync(join(tmpdir(), 'iz-kv-nonfinite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const hex = (b: Uint8Array | string): string => crc32(b).toString(16).padStart(8, '0');

async function saved(options: KVCacheOptions, tag: string): Promise<string> {
  using c = QuantizedKVCache.create(options);
  const n = 2 * 40 * 16;
  c.appendSync(
    tensor(
      'f32',
      [2, 40, 16],
      Float32Array.from({ length: n }, (_, i) => Math.sin(i)),
    ),
    tensor(
      'f32',
      [2, 40, 16],
      Float32Array.from({ length: n }, (_, i) => Math.cos(i)),
    ),
  );
  const p = join(dir, `${tag}.safetensors`);
  await c.save(p);
  return p;
}

/** Rewrites one plane with `edit` and recomputes every checksum (a forged, self-consistent file). */
async function forge(path: string, plane: string, edit: (b: Uint8Array) => void): Promise<string> {
  const r = openSafetensors(path);
  const entries = await Promise.all(
    r.tensors.map(async (e) => ({ name: e.name, dtype: e.dtype, shape: [...e.shape], data: new Uint8Array(await r.readBytes(e.name)) })),
  );
  const meta = { ...r.metadata };
  r.close();
  const target = entries.find((e) => e.name === `kv.plane.${plane}`)!;
  edit(target.data);
  const cache = JSON.parse(meta.cache!) as { checksums: Record<string, string> };
  cache.checksums[`plane.${plane}`] = hex(target.data);
  meta.cache = JSON.stringify(cache);
  meta.cacheChecksum = hex(meta.cache);
  const out = join(dir, `forged-${plane}-${Math.random().toString(36).slice(2)}.safetensors`);
  await writeSafetensors(out, entries as never, { metadata: meta });
  return out;
}

async function loadError(path: string): Promise<InferzipError> {
  try {
    (await QuantizedKVCache.load(path, { device: 'cpu' })).dispose();
  } catch (err) {
    expect(err).toBeInstanceOf(InferzipError);
    return err as InferzipError;
  }
  throw new Error('expected load to fail');
}

describe('saved KV caches with non-finite codes or scales', () => {
  it('kivi: an Infinity f16 scale inside a key block is CORRUPT_DATA', async () => {
    const p = await saved({ heads: 2, headDim: 16, groupSize: 8, residualLength: 8, scheme: 'kivi' }, 'kivi-kblk');
    const e = await loadError(
      // a kivi-2 key block of group 8, head_dim 16: 8*16*2/8 = 32 code bytes, then 16 (scale, min)
      // f16 pairs (64 bytes); byte 94 is the first block's last min
      await forge(p, 'keyBlocks', (b) => new DataView(b.buffer, b.byteOffset).setUint16(94, 0x7c00, true)),
    );
    expect(e.message, e.message).toMatch(/key block/);
  });

  const base = { heads: 2, headDim: 16, groupSize: 8, residualLength: 8 } as const;

  it('fp8 e4m3: a NaN code (0x7f) and a NaN scale are CORRUPT_DATA; the unforged file loads', async () => {
    const p = await saved({ ...base, scheme: 'fp8' }, 'fp8');
    (await QuantizedKVCache.load(p, { device: 'cpu' })).dispose();
    const code = await loadError(await forge(p, 'keyCodes', (b) => (b[5] = 0x7f)));
    expect(code.code).toBe('CORRUPT_DATA');
    expect(code.message, code.message).toMatch(/fp8 code/);
    const scale = await loadError(await forge(p, 'valueParams', (b) => new DataView(b.buffer, b.byteOffset).setFloat32(0, NaN, true)));
    expect(scale.message).toMatch(/NaN or Infinity/);
  });

  it('fp8 e5m2: an Infinity code (0x7c) is CORRUPT_DATA', async () => {
    const p = await saved({ ...base, scheme: 'fp8', fp8Format: 'e5m2' }, 'fp8-e5m2');
    const e = await loadError(await forge(p, 'valueCodes', (b) => (b[3] = 0x7c)));
    expect(e.message, e.message).toMatch(/fp8 code/);
  });

  it('kivi / zipcache: an f16 scale of Infinity is CORRUPT_DATA', async () => {
    for (const scheme of ['kivi', 'zipcache'] as const) {
      const p = await saved({ ...base, scheme }, scheme);
      const e = await loadError(await forge(p, 'valueParams', (b) => new DataView(b.buffer, b.byteOffset).setUint16(0, 0x7c00, true)));
      expect(e.code).toBe('CORRUPT_DATA');
      expect(e.message, e.message).toMatch(/f16 scale/);
    }
  });

  it('vidkv: Infinity in any f16 field inside key blocks, value blocks or salient tokens is CORRUPT_DATA', async () => {
    // head_dim 16, group 8, anomalousFraction 0.5: a key block is 8 anomalous channels' 2-bit
    // codes (16 bytes), their (scale, min) f16 pairs (bytes 16-47), 1-bit spectrum signs
    // (48-55), then a (real, imag) f16 scale pair per token (56-87); a value block is 16 scale
    // codes and an f16 reference (bytes 16-17); a salient token is 32 bits of codes and an f16
    // (scale, min) pair (bytes 4-7 of its 8).
    const p = await saved({ ...base, scheme: 'vidkv', anomalousFraction: 0.5 }, 'vidkv');
    (await QuantizedKVCache.load(p, { device: 'cpu' })).dispose();
    const inf = (at: number) => (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).setUint16(at, 0x7c00, true);
    const cases: [string, number, RegExp][] = [
      ['keyBlocks', 16, /key block \(anomalous channels\)/],
      ['keyBlocks', 88 + 56 + 2, /key block \(spectrum scales\)/],
      ['valueBlocks', 18 + 16, /value block/],
      ['salientValues', 4, /salient value token/],
    ];
    for (const [plane, at, message] of cases) {
      const e = await loadError(await forge(p, plane, inf(at)));
      expect(e.code).toBe('CORRUPT_DATA');
      expect(e.message, e.message).toMatch(message);
    }
  });
});
