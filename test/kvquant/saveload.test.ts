// save() / QuantizedKVCache.load() round trip through safetensors, and hostile files.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

import { afterAll, describe, expect, it } from 'vitest';

import { InferzipError } from '../../lib/errors.js';
import { QuantizedKVCache, type KVScheme } from '../../lib/kvquant/index.js';
import { openSafetensors, writeSafetensors } from '../../lib/safetensors/index.js';
import { outlierKeys, randTensor, sliceTokens } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'iz-kv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(['kivi', 'vidkv', 'zipcache', 'fp8'] as KVScheme[])('save/load %s', (scheme) => {
  it('restores codes, scales, residual window and saliency state; appends continue identically', async () => {
    const H = 2,
      d = 16,
      T = 70;
    const k = outlierKeys([H, T, d], 3);
    const v = randTensor([H, T, d], 4);
    const opts = { scheme, heads: H, headDim: d, groupSize: 8, residualLength: 16 } as const;
    using a = QuantizedKVCache.create(opts);
    await a.append(sliceTokens(k, 0, 50), sliceTokens(v, 0, 50));
    const path = join(dir, `${scheme}.safetensors`);
    await a.save(path);
    using b = await QuantizedKVCache.load(path);
    expect(b.options).toEqual(a.options);
    expect({ ...b.memory, capacityBytes: 0 }).toEqual({ ...a.memory, capacityBytes: 0 });
    const q = randTensor([4, 2, d], 5);
    expect(Array.from(b.attentionSync(q).data)).toEqual(Array.from(a.attentionSync(q).data));
    // both continue the same way (window flushes use the restored saliency state)
    for (let t = 50; t < T; t++) {
      a.appendSync(sliceTokens(k, t, t + 1), sliceTokens(v, t, t + 1));
      b.appendSync(sliceTokens(k, t, t + 1), sliceTokens(v, t, t + 1));
    }
    expect(Array.from(b.dequantizeSync().k.data)).toEqual(Array.from(a.dequantizeSync().k.data));
    expect(Array.from(b.attentionSync(q).data)).toEqual(Array.from(a.attentionSync(q).data));
  });
});

describe('load rejects bad files with typed errors', () => {
  async function saved(): Promise<string> {
    using c = QuantizedKVCache.create({ scheme: 'zipcache', heads: 2, headDim: 16, groupSize: 8, residualLength: 8 });
    c.appendSync(randTensor([2, 40, 16], 1), randTensor([2, 40, 16], 2));
    const path = join(dir, 'src.safetensors');
    await c.save(path);
    return path;
  }
  async function rewrite(
    path: string,
    edit: (meta: Record<string, string>, tensors: Record<string, { dtype: string; shape: number[]; data: ArrayBufferView }>) => void,
  ): Promise<string> {
    const r = openSafetensors(path);
    const tensors: Record<string, { dtype: string; shape: number[]; data: ArrayBufferView }> = {};
    for (const e of r.tensors) tensors[e.name] = { dtype: e.dtype, shape: [...e.shape], data: await r.readBytes(e.name) };
    const meta = { ...r.metadata };
    r.close();
    edit(meta, tensors);
    const out = join(dir, `bad-${Math.random().toString(36).slice(2)}.safetensors`);
    await writeSafetensors(
      out,
      Object.entries(tensors).map(([name, t]) => ({ name, dtype: t.dtype as 'U8', shape: t.shape, data: t.data })),
      { metadata: meta },
    );
    return out;
  }
  async function loadCode(path: string): Promise<string> {
    try {
      await QuantizedKVCache.load(path);
    } catch (err) {
      expect(err).toBeInstanceOf(InferzipError);
      return (err as InferzipError).code;
    }
    throw new Error(`expected load of ${path} to fail`);
  }

  it('wrong format, bad JSON, failed checksums, and forged files whose checksums were recomputed', async () => {
    const path = await saved();
    expect(await loadCode(await rewrite(path, (m) => (m.format = 'other')))).toBe('CORRUPT_DATA');
    expect(await loadCode(await rewrite(path, (m) => (m.cache = '{not json')))).toBe('CORRUPT_DATA');
    // damage that the per-section and metadata crc32s catch
    expect(await loadCode(await rewrite(path, (m) => (m.cache = m.cache!.replace('"bits":4', '"bits":2'))))).toBe('CORRUPT_DATA');
    expect(
      await loadCode(
        await rewrite(path, (_m, t) => {
          const codes = t['kv.plane.keyCodes']!.data as Uint8Array;
          codes[3] = codes[3]! ^ 0x10;
        }),
      ),
    ).toBe('CORRUPT_DATA');
    // A hostile file recomputes every checksum: core's cross-checks must still refuse it.
    const forge = (edit: (sections: Record<string, Uint8Array>, options: Record<string, unknown>) => void) =>
      rewrite(path, (m, t) => {
        const saved = JSON.parse(m.cache!) as { options: Record<string, unknown>; checksums: Record<string, string> };
        const sections: Record<string, Uint8Array> = {};
        for (const [name, e] of Object.entries(t)) sections[name.slice(3)] = new Uint8Array((e.data as Uint8Array).slice());
        edit(sections, saved.options);
        for (const name of Object.keys(t)) delete t[name];
        saved.checksums = {};
        for (const [name, data] of Object.entries(sections)) {
          t[`kv.${name}`] = { dtype: 'U8', shape: [data.byteLength], data };
          saved.checksums[name] = crc32(data).toString(16).padStart(8, '0');
        }
        m.cache = JSON.stringify(saved);
        m.cacheChecksum = crc32(m.cache).toString(16).padStart(8, '0');
      });
    const u64 = (b: Uint8Array, at: number, v: bigint) => new DataView(b.buffer, b.byteOffset).setBigUint64(at, v, true);
    // the forge itself keeps a valid file loadable
    expect((await QuantizedKVCache.load(await forge(() => {}))).tokens).toBe(40);
    expect(await loadCode(await forge((s) => u64(s.state!, 8, 1_000_000n)))).toBe('CORRUPT_DATA'); // tokens
    expect(await loadCode(await forge((s) => u64(s.state!, 16, 33n)))).toBe('CORRUPT_DATA'); // quantized keys
    expect(await loadCode(await forge((s) => u64(s.units!, 8, 9999n)))).toBe('CORRUPT_DATA');
    expect(await loadCode(await forge((_s, o) => (o.headDim = 12)))).toBe('CORRUPT_DATA');
    expect(await loadCode(await forge((_s, o) => (o.headDim = 32)))).toBe('CORRUPT_DATA');
    expect(await loadCode(await forge((s) => (s.channel_order![8] = 5)))).toBe('CORRUPT_DATA');
    expect(await loadCode(await forge((s) => u64(s.plane_strides!, 16, 10n ** 15n)))).toBe('CORRUPT_DATA');
    expect(await loadCode(await forge((s) => (s['extra'] = new Uint8Array(4))))).toBe('CORRUPT_DATA');
    // flip mask bits in the pool index: the unit counts no longer match
    expect(await loadCode(await forge((s) => (s['plane.index']![4] = s['plane.index']![4]! ^ 1)))).toBe('CORRUPT_DATA');
    expect(await loadCode(await forge((s) => (s['plane.keyCodes'] = s['plane.keyCodes']!.subarray(0, 8))))).toBe('CORRUPT_DATA');
    expect(await loadCode(join(dir, 'missing.safetensors'))).toBe('IO_ERROR');
    writeFileSync(join(dir, 'junk.safetensors'), Buffer.from('junk junk junk'));
    expect(['CORRUPT_DATA', 'IO_ERROR']).toContain(await loadCode(join(dir, 'junk.safetensors')));
    expect(readFileSync(path).byteLength).toBeGreaterThan(0);
  });
});
