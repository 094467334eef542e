import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { native } from '../../lib/native.js';
import { CompressedModel, compressModel, inspectModel, verifyModel } from '../../lib/model/index.js';
import { openSafetensors, writeSafetensorsSync } from '../../lib/safetensors/index.js';
import { buildDFloat11Fixture, buildReferenceUnitFixture } from './df11-fixture.js';
import { LLAMA_ORDER, MODEL, REFERENCE_UNIT, cleanupTempDirs, tempDir } from './helpers.js';

const hasCuda = native().backendInfo().cudaAvailable;
let packed: string;

beforeAll(async () => {
  packed = join(tempDir('cm'), 'stories.df11.safetensors');
  await compressModel(MODEL, packed);
});
afterAll(cleanupTempDirs);

function original(name: string): Uint16Array {
  using f = openSafetensors(MODEL);
  return f.readSync(name).data as Uint16Array;
}

function expectBitsEqual(a: Uint16Array, b: Uint16Array, what: string): void {
  expect(a.length, what).toBe(b.length);
  expect(Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)), what).toBe(
    0,
  );
}

describe.each([
  ['cpu', false],
  ['cuda', !hasCuda],
] as const)('CompressedModel on %s', (device, skip) => {
  it.skipIf(skip)('decompressBlock views equal the original matrices bit for bit, for every block', async () => {
    using model = await CompressedModel.open(packed, { device });
    expect(model.device).toBe(device);
    expect(model.numBlocks).toBe(5);
    expect(model.deviceBytes.scratch).toBe(0);
    const compressed = model.deviceBytes.compressed;
    expect(compressed).toBeGreaterThan(0);
    expect(compressed).toBeLessThan(520_000 * 0.75);
    for (let i = 0; i < model.numBlocks; i++) {
      const block = await model.decompressBlock(i);
      expect(block.unit.prefix).toBe(`model.layers.${i}`);
      expect([...block.tensors.keys()]).toEqual(LLAMA_ORDER.map((m) => `model.layers.${i}.${m}.weight`));
      for (const view of block.tensors.values()) {
        const t = await view.toTensor();
        expect(t.dtype).toBe('bf16');
        expect(t.shape).toEqual(view.shape);
        expectBitsEqual(t.data, original(view.name), view.name);
      }
      expect(block.get('mlp.down_proj.weight').shape).toEqual([64, 172]);
    }
    // One reused buffer sized for the largest block.
    expect(model.blockBufferBytes).toBe(2 * Math.max(...model.blockUnits.map((u) => u.elements)));
    expect(model.deviceBytes.scratch).toBe(model.blockBufferBytes);
    expect(model.deviceBytes.total).toBe(compressed + model.blockBufferBytes);

    // The embedding decodes into a buffer of its own (blocks' views stay valid).
    const last = await model.decompressBlock(4);
    const embed = await model.decompressUnit('model.embed_tokens');
    expectBitsEqual(embed.get('model.embed_tokens.weight').toTensorSync().data, original('model.embed_tokens.weight'), 'embedding');
    expect(model.deviceBytes.scratch).toBe(model.blockBufferBytes + 512 * 64 * 2);
    expectBitsEqual(
      last.get('mlp.up_proj.weight').toTensorSync().data,
      original('model.layers.4.mlp.up_proj.weight'),
      'block 4 after the embedding',
    );
  });

  it.skipIf(skip)('the prefetching iterator yields every block in order, each intact while the next decodes', async () => {
    using model = await CompressedModel.open(packed, { device });
    const seen: number[] = [];
    for await (const block of model.blocks({ prefetch: true })) {
      seen.push(block.ordinal);
      // Block i+1 is being decoded into the other buffer right now; block i must stay intact.
      await new Promise((r) => setTimeout(r, 5));
      const q = block.get('self_attn.q_proj.weight');
      expectBitsEqual((await q.toTensor()).data, original(q.name), q.name);
      const down = block.get('mlp.down_proj.weight');
      expectBitsEqual(down.toTensorSync().data, original(down.name), down.name);
    }
    expect(seen).toEqual([0, 1, 2, 3, 4]);
    expect(model.deviceBytes.scratch).toBe(2 * model.blockBufferBytes);

    const plain: number[] = [];
    for await (const block of model.blocks({ prefetch: false })) plain.push(block.ordinal);
    expect(plain).toEqual([0, 1, 2, 3, 4]);

    // Leaving early waits for the prefetch in flight; the model stays usable.
    for await (const block of model.blocks()) if (block.ordinal === 1) break;
    const b4 = await model.decompressBlock(4);
    expectBitsEqual(
      b4.get('self_attn.v_proj.weight').toTensorSync().data,
      original('model.layers.4.self_attn.v_proj.weight'),
      'block 4 after break',
    );
  });

  it.skipIf(skip)('stale views refuse to read, copies survive, dispose is final', async () => {
    const model = await CompressedModel.open(packed, { device });
    const b0 = await model.decompressBlock(0);
    const v = b0.get('self_attn.k_proj.weight');
    const copy = v.toDeviceTensor();
    await model.decompressBlock(1);
    expect(() => v.toTensorSync()).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expectBitsEqual(copy.downloadSync().data, original('model.layers.0.self_attn.k_proj.weight'), 'copy');
    copy.dispose();
    expect(() => model.decompressBlock(5)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => model.decompressUnit('lm_head')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expectBitsEqual(
      (await model.readTensor('model.layers.3.input_layernorm.weight')).data as Uint16Array,
      original('model.layers.3.input_layernorm.weight'),
      'norm',
    );
    await expect(model.readTensor('model.layers.3.self_attn.q_proj.weight')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    model.dispose();
    model.dispose();
    expect(() => model.decompressBlock(0)).toThrow(expect.objectContaining({ code: 'DISPOSED' }));
  });
});

describe('published DFloat11 checkpoints', () => {
  it('opens a DFloat11 Llama directory: names and shapes from config.json, decodes every unit', async () => {
    const dir = await buildDFloat11Fixture(tempDir('df11dir'));
    using model = await CompressedModel.open(dir, { device: 'cpu' });
    expect(model.format).toBe('dfloat11');
    expect(model.numBlocks).toBe(5);
    expect(model.units.map((u) => u.prefix)).toEqual([
      'model.layers.0',
      'model.layers.1',
      'model.layers.2',
      'model.layers.3',
      'model.layers.4',
      'model.embed_tokens',
    ]);
    const shapes = model.blockUnits[0]!.members.map((m) => [m.name, m.shape]);
    expect(shapes).toEqual([
      ['model.layers.0.self_attn.q_proj.weight', [64, 64]],
      ['model.layers.0.self_attn.k_proj.weight', [32, 64]],
      ['model.layers.0.self_attn.v_proj.weight', [32, 64]],
      ['model.layers.0.self_attn.o_proj.weight', [64, 64]],
      ['model.layers.0.mlp.gate_proj.weight', [172, 64]],
      ['model.layers.0.mlp.up_proj.weight', [172, 64]],
      ['model.layers.0.mlp.down_proj.weight', [64, 172]],
    ]);
    for await (const block of model.blocks()) {
      for (const view of block.tensors.values()) expectBitsEqual((await view.toTensor()).data, original(view.name), view.name);
    }
    const embed = await model.decompressUnit('model.embed_tokens');
    expect(embed.get('model.embed_tokens.weight').shape).toEqual([512, 64]);
    expect(model.rawTensorNames).toHaveLength(11);
    expectBitsEqual((await model.readTensor('model.norm.weight')).data as Uint16Array, original('model.norm.weight'), 'norm');
    expectBitsEqual((await embed.get('model.embed_tokens.weight').toTensor()).data, original('model.embed_tokens.weight'), 'embedding');

    const report = await inspectModel(dir, { decode: true });
    expect(report.format).toBe('dfloat11');
    expect(report.units).toHaveLength(6);
    expect(report.raw.tensors).toBe(11);
    expect(report.totals.entropyBound).toBeGreaterThan(10.5);
    expect(report.totals.entropyBound).toBeLessThan(11);
    expect((await inspectModel(dir)).totals.entropyBound).toBeUndefined();
  });

  it("decodes the reference encoder's unit (non-canonical codes) in a non-Llama checkpoint", async () => {
    const dir = buildReferenceUnitFixture(tempDir('refdir'));
    using model = await CompressedModel.open(dir, { device: 'cpu' });
    expect(model.units).toHaveLength(1);
    const unit = model.units[0]!;
    expect(unit.prefix).toBe('unit');
    expect(unit.members.map((m) => [m.name, m.shape])).toEqual([
      ['unit.a.weight', [51_200]],
      ['unit.b.weight', [30_000]],
    ]);
    const block = await model.decompressBlock(0);
    using ref = openSafetensors(REFERENCE_UNIT);
    expectBitsEqual((await block.get('a.weight').toTensor()).data, ref.readSync('original.a').data as Uint16Array, 'original.a');
    expectBitsEqual((await block.get('b.weight').toTensor()).data, ref.readSync('original.b').data as Uint16Array, 'original.b');
  });

  it('a damaged unit in a DFloat11 directory is a typed error: verify reports it, decode rejects', async () => {
    const dir = await buildDFloat11Fixture(tempDir('df11bad'));
    expect(await verifyModel(dir)).toMatchObject({ ok: true, units: 6, tensors: 36, problems: [] });
    const shard = join(dir, 'model-00001-of-00002.safetensors');
    {
      using f = openSafetensors(shard);
      const entries = f.tensors.map((t) => ({
        name: t.name,
        dtype: t.dtype,
        shape: t.shape,
        data: new Uint8Array(f.readBytesSync(t.name)),
      }));
      // output_positions must end at n: make the last one overrun.
      const pos = entries.find((e) => e.name === 'model.layers.1.output_positions')!.data;
      new DataView(pos.buffer, pos.byteOffset).setUint32(pos.byteLength - 4, 0x7fffffff, true);
      writeSafetensorsSync(shard, entries);
    }
    const r = await verifyModel(dir);
    expect(r.ok).toBe(false);
    expect(r.problems.map((p) => p.name)).toEqual(['model.layers.1']);
    using model = await CompressedModel.open(dir, { device: 'cpu' });
    await expect(model.decompressBlock(1)).rejects.toMatchObject({ name: 'InferzipError', code: 'CORRUPT_DATA' });
    // The model stays usable after a failed decode.
    const b2 = await model.decompressBlock(2);
    expectBitsEqual(b2.get('self_attn.o_proj.weight').toTensorSync().data, original('model.layers.2.self_attn.o_proj.weight'), 'block 2');
  });

  it('hostile config.json and unit layouts give typed errors', async () => {
    const dir = await buildDFloat11Fixture(tempDir('df11hostile'));
    const configPath = join(dir, 'config.json');
    const good = JSON.parse(readFileSync(configPath, 'utf8')) as { dfloat11_config: Record<string, unknown> };
    const withConfig = (df11: Record<string, unknown>): void =>
      writeFileSync(configPath, JSON.stringify({ ...good, dfloat11_config: { ...good.dfloat11_config, ...df11 } }));
    const cases: [Record<string, unknown>, string][] = [
      [{ pattern_dict: { '(a+)+$': [] } }, 'UNSUPPORTED'], // catastrophic backtracking
      [{ pattern_dict: { 'model\\.layers\\.(\\d+': ['x'] } }, 'UNSUPPORTED'], // groups (and unbalanced)
      [{ pattern_dict: { 'a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b': ['x'] } }, 'CORRUPT_DATA'], // matches nothing, at once
      [{ pattern_dict: { 'model\\.layers\\.\\d+': ['self_attn.q_proj'] } }, 'CORRUPT_DATA'], // 1 matrix, 6 split positions
      [{ pattern_dict: ['x'] }, 'CORRUPT_DATA'],
      [{ threads_per_block: [256] }, 'UNSUPPORTED'],
    ];
    for (const [df11, code] of cases) {
      withConfig(df11);
      await expect(CompressedModel.open(dir, { device: 'cpu' }), JSON.stringify(df11)).rejects.toMatchObject({
        name: 'InferzipError',
        code,
      });
    }
    writeFileSync(configPath, '{ not json');
    await expect(CompressedModel.open(dir, { device: 'cpu' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('rejects directories that are not DFloat11 checkpoints with typed errors', async () => {
    const { MODEL_DIR } = await import('./helpers.js');
    await expect(CompressedModel.open(MODEL_DIR, { device: 'cpu' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(CompressedModel.open(MODEL, { device: 'cpu' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(CompressedModel.open('/nonexistent/dir', { device: 'cpu' })).rejects.toMatchObject({ code: 'IO_ERROR' });
  });
});
