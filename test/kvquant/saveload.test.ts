// save() / QuantizedKVCache.load() round trip through safetensors, and hostile files.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { InferzipError } from '../../lib/errors.js';
import { QuantizedKVCache, type KVScheme } from '../../lib/kvquant/index.js';
import { openSafetensors, writeSafetensors } from '../../lib/safetensors/index.js';
import { outlierKeys, randTensor, sliceTokens } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'iz-kv-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.each(['kivi', 'vidkv', 'zipcache', 'fp8'] as KVScheme[])('save/load %s', (scheme) => {
  it('restores codes, scales, residual window and saliency state; appends continue identically', async () => {
    const H = 2, d = 16, T = 70;
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
  async function rewrite(path: string, edit: (meta: Record<string, string>, tensors: Record<string, { dtype: string; shape: number[]; data: ArrayBufferView }>) => void): Promise<string> {
    const r = openSafetensors(path);
    const tensors: Record<string, { dtype: string; shape: number[]; data: ArrayBufferView }> = {};
    for (const e of r.tensors) tensors[e.name] = { dtype: e.dtype, shape: [...e.shape], data: await r.readBytes(e.name) };
    const meta = { ...r.metadata };
    r.close();
    edit(meta, tensors);
    const out = join(dir, `bad-${Math.random().toString(36).slice(2)}.safetensors`);
    await writeSafetensors(out, Object.entries(tensors).map(([name, t]) => ({ name, dtype: t.dtype as 'U8', shape: t.shape, data: t.data })), { metadata: meta });
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

  it('wrong format, bad JSON, inconsistent counts, corrupt index, truncated planes, missing file', async () => {
    const path = await saved();
    expect(await loadCode(await rewrite(path, (m) => (m.format = 'other')))).toBe('CORRUPT_DATA');
    expect(await loadCode(await rewrite(path, (m) => (m.state = '{not json')))).toBe('CORRUPT_DATA');
    const edit = (f: (st: { options: Record<string, unknown>; state: Record<string, unknown> }) => void) =>
      rewrite(path, (m) => {
        const st = JSON.parse(m.state!);
        f(st);
        m.state = JSON.stringify(st);
      });
    expect(await loadCode(await edit((st) => (st.state.tokens = 1e6)))).toBe('CORRUPT_DATA');
    expect(await loadCode(await edit((st) => (st.state.quantizedKeys = 33)))).toBe('CORRUPT_DATA');
    expect(await loadCode(await edit((st) => ((st.state.units as number[])[0] = 9999)))).toBe('CORRUPT_DATA');
    expect(await loadCode(await edit((st) => (st.options.headDim = 12)))).toBe('CORRUPT_DATA');
    expect(await loadCode(await edit((st) => ((st.state.channelOrder as number[])[0] = 5)))).toBe('CORRUPT_DATA');
    expect(await loadCode(await edit((st) => ((st.state.strides as number[])[2] = 1e15)))).toBe('CORRUPT_DATA');
    // flip mask bits in the pool index: the unit counts no longer match
    expect(
      await loadCode(
        await rewrite(path, (_m, t) => {
          const idx = t['plane.index']!.data as Uint8Array;
          idx[4] = idx[4]! ^ 1; // one token changes precision: offsets would shift
        }),
      ),
    ).toBe('CORRUPT_DATA');
    expect(
      await loadCode(
        await rewrite(path, (_m, t) => {
          const p = t['plane.keyCodes']!;
          p.data = (p.data as Uint8Array).subarray(0, 8);
          p.shape = [8];
        }),
      ),
    ).toBe('CORRUPT_DATA');
    expect(await loadCode(join(dir, 'missing.safetensors'))).toBe('IO_ERROR');
    writeFileSync(join(dir, 'junk.safetensors'), Buffer.from('junk junk junk'));
    expect(['CORRUPT_DATA', 'IO_ERROR']).toContain(await loadCode(join(dir, 'junk.safetensors')));
    expect(readFileSync(path).byteLength).toBeGreaterThan(0);
  });
});
