// More than one device: device strings ('cpu', 'cuda', 'cuda:N'), DeviceTensors that know their
// device, per-device memory stats and CompressedModel placements. The two-device cases need two
// CUDA devices and are skipped visibly otherwise; CI runs them on the emulated build with
// INFERZIP_CUDA_EMULATE_DEVICES=2, where any device pointer used on the wrong device aborts the
// process (cuda/emulate/emulator.cpp), so a passing run means every allocation, copy and launch
// went to its own device.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import {
  CompressedModel,
  DeviceTensor,
  QuantizedKVCache,
  backend,
  compress,
  compressModel,
  decompress,
  memoryStats,
  mergeTokens,
  parseDevice,
  setDevice,
  tensor,
} from '../../lib/index.js';
import { decodeDeviceUnit, uploadUnit } from '../../lib/model/codec.js';
import { unitCost } from '../../lib/model/placement.js';
import { native } from '../../lib/native.js';
import { openSafetensors } from '../../lib/safetensors/index.js';
import { codeOf, codeOfAsync, errorOf } from '../errors.js';
import { randTensor, sliceTokens } from '../kvquant/helpers.js';
import { MODEL, cleanupTempDirs, tempDir } from './helpers.js';

const info = native().backendInfo();
const cudaCount = info.cudaAvailable ? info.devices.length : 0;
const two = cudaCount >= 2;
const NEEDS_TWO = `needs 2 CUDA devices (${cudaCount} answered; INFERZIP_CUDA_EMULATE_DEVICES=2 on the emulated build)`;
// CI's two-device step sets this, so a lost device fails the run instead of skipping it.
const expected = Number(process.env.INFERZIP_EXPECT_CUDA_DEVICES ?? 0);

let packed: string;
beforeAll(async () => {
  packed = join(tempDir('multi'), 'stories.df11.safetensors');
  await compressModel(MODEL, packed);
});
afterAll(cleanupTempDirs);
afterEach(() => {
  setDevice('auto');
});

function original(name: string): Uint16Array {
  using f = openSafetensors(MODEL);
  return f.readSync(name).data as Uint16Array;
}

function sameBits(a: Uint16Array, b: Uint16Array): boolean {
  return (
    a.length === b.length &&
    Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0
  );
}

/** Bytes inferzip holds per device now. */
function heldBytes(): Record<string, number> {
  return Object.fromEntries(memoryStats().map((m) => [m.device, m.bytes]));
}

function delta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.keys(after).map((k) => [k, after[k]! - (before[k] ?? 0)]));
}

describe('device strings (every build)', () => {
  it.runIf(expected > 0)('INFERZIP_EXPECT_CUDA_DEVICES: the expected CUDA devices answer', () => {
    expect(cudaCount).toBeGreaterThanOrEqual(expected);
  });

  it('parses cpu, cuda and cuda:N; anything else is INVALID_ARGUMENT naming what was given and the devices', () => {
    expect(parseDevice('cpu')).toEqual({ kind: 'cpu', index: undefined });
    for (const badString of ['gpu', 'CUDA', 'cuda:', 'cuda:-1', 'cuda:01', 'cuda:1.5', 'cpu:0', ' cuda', 'cuda:x', '']) {
      const e = errorOf(() => parseDevice(badString));
      expect(e.code, badString).toBe('INVALID_ARGUMENT');
      expect(e.message).toContain(`'${badString}'`);
      expect(e.message).toMatch(cudaCount > 0 ? new RegExp(`${cudaCount} CUDA devices? answered`) : /no CUDA device answered/);
    }
    expect(codeOf(() => parseDevice(3))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => DeviceTensor.empty('f32', [2], { device: 'gpu:0' as never }))).toBe('INVALID_ARGUMENT');
    // An index past the devices that answered: INVALID_ARGUMENT with the count (NO_DEVICE without CUDA).
    const past = `cuda:${cudaCount}` as const;
    const e = errorOf(() => DeviceTensor.empty('f32', [2], { device: past }));
    if (cudaCount === 0) expect(e.code).toBe('NO_DEVICE');
    else {
      expect(e.code).toBe('INVALID_ARGUMENT');
      expect(e.message).toContain(`'${past}'`);
      expect(e.message).toContain(`${cudaCount} CUDA device`);
    }
  });

  it('backend() lists devices with their index and names the current device; memoryStats starts with the CPU', () => {
    const b = backend();
    expect(b.devices.map((d) => d.index)).toEqual(Array.from({ length: b.devices.length }, (_, i) => i));
    expect(b.devices.map((d) => d.device)).toEqual(b.devices.map((_, i) => `cuda:${i}`));
    expect(b.device).toBe(b.name === 'cuda' ? 'cuda:0' : 'cpu');
    const stats = memoryStats();
    expect(stats.map((m) => m.device)).toEqual(['cpu', ...b.devices.map((d) => d.device)]);
    const before = heldBytes().cpu!;
    const t = DeviceTensor.empty('u8', [4096], { device: 'cpu' });
    expect(t.device).toBe('cpu');
    expect(heldBytes().cpu! - before).toBe(4096);
    t.dispose();
    expect(heldBytes().cpu! - before).toBe(0);
  });

  it('placements on the CPU: a device string, a one-device spread, a map with a default; bad ones are typed errors', async () => {
    using a = await CompressedModel.open(packed, { placement: 'cpu' });
    expect([...a.placement.values()].every((d) => d === 'cpu')).toBe(true);
    expect(a.devices).toEqual(['cpu']);
    using b = await CompressedModel.open(packed, { placement: { devices: ['cpu'] } });
    expect(b.deviceOf(4)).toBe('cpu');
    using c = await CompressedModel.open(packed, { placement: { map: { 'model.layers.': 'cpu' }, default: 'cpu' } });
    expect(c.deviceOf('model.embed_tokens')).toBe('cpu');
    const block = await c.decompressBlock(2);
    expect(block.device).toBe('cpu');
    const q = block.get('self_attn.q_proj.weight');
    expect(q.device).toBe('cpu');
    expect(sameBits(q.toTensorSync().data, original(q.name))).toBe(true);

    const unmapped = await CompressedModel.open(packed, { placement: { map: { 'model.layers': 'cpu' } } }).catch((e: unknown) => e);
    expect(unmapped).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((unmapped as Error).message).toContain('model.embed_tokens');
    // 'model.layers.1' covers model.layers.1 only, not model.layers.10+ (whole dotted components).
    const partial = await CompressedModel.open(packed, {
      placement: { map: { 'model.layers.1': 'cpu', 'model.embed_tokens': 'cpu' } },
    }).catch((e: unknown) => e);
    expect((partial as Error).message).toMatch(/model\.layers\.0, model\.layers\.2, model\.layers\.3, model\.layers\.4/);
    for (const placement of [
      { devices: [] },
      { devices: ['cpu', 'cpu'] },
      { devices: ['gpu'] },
      { map: { 'model.layers': 'cuda:x' }, default: 'cpu' },
      { map: {}, default: 'nowhere' },
      { devices: ['cpu'], map: {} },
      {},
      null,
      ['cpu'],
    ]) {
      expect(await codeOfAsync(() => CompressedModel.open(packed, { placement: placement as never })), JSON.stringify(placement)).toBe(
        'INVALID_ARGUMENT',
      );
    }
    expect(await codeOfAsync(() => CompressedModel.open(packed, { device: 'cpu', placement: 'cpu' }))).toBe('INVALID_ARGUMENT');
  });
});

describe.skipIf(!two)(`two CUDA devices (${NEEDS_TWO})`, () => {
  it('DeviceTensors know their device, round-trip on each, and count against that device only', async () => {
    for (const device of ['cuda:0', 'cuda:1'] as const) {
      const host = tensor(
        'f32',
        [3, 5],
        Float32Array.from({ length: 15 }, (_, i) => i * 1.5 - 7),
      );
      const t = await DeviceTensor.from(host, { device });
      expect(t.device).toBe(device);
      expect(t.deviceId).toEqual({ kind: 'cuda', index: Number(device.slice(5)), label: device });
      expect(Array.from((await t.download()).data)).toEqual(Array.from(host.data));
      t.uploadSync(tensor('f32', [3, 5], new Float32Array(15).fill(2)));
      expect(Array.from(t.downloadSync().data)).toEqual(new Array(15).fill(2));
      const z = DeviceTensor.empty('u8', [1 << 20], { device, zero: true });
      expect(z.downloadSync().data.every((x) => x === 0)).toBe(true);
      // Measured around a synchronous dispose: no finalizer of earlier garbage can run in between.
      const held = heldBytes();
      t.dispose();
      z.dispose();
      const freed = delta(heldBytes(), held);
      expect(freed[device]).toBe(60 + (1 << 20));
      expect(freed[device === 'cuda:0' ? 'cuda:1' : 'cuda:0']).toBe(0);
      expect(freed.cpu).toBe(0);
    }
    const stats = memoryStats();
    expect(stats[2]!.device).toBe('cuda:1');
    expect(stats[2]!.totalBytes).toBe(backend().devices[1]!.memory);
    expect(stats[2]!.peakBytes).toBeGreaterThanOrEqual(60 + (1 << 20));
  });

  it("setDevice('cuda:1') makes 'cuda' and 'auto' mean cuda:1", () => {
    setDevice('cuda:1');
    expect(backend().device).toBe('cuda:1');
    using a = DeviceTensor.empty('f32', [4]);
    using b = DeviceTensor.empty('f32', [4], { device: 'cuda' });
    expect([a.device, b.device]).toEqual(['cuda:1', 'cuda:1']);
    setDevice('auto');
    using c = DeviceTensor.empty('f32', [4], { device: 'cuda' });
    expect(c.device).toBe('cuda:0');
    expect(codeOf(() => setDevice('cuda:2'))).toBe('INVALID_ARGUMENT');
    // INFERZIP_DEVICE=cuda:1 does the same for a whole process.
    const code = `import { DeviceTensor, backend } from '${new URL('../../lib/index.ts', import.meta.url).pathname}';
      console.log(JSON.stringify([backend().device, DeviceTensor.empty('u8', [1]).device]));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      env: { ...process.env, INFERZIP_DEVICE: 'cuda:1' },
      encoding: 'utf8',
    });
    expect(JSON.parse(out.trim().split('\n').pop()!)).toEqual(['cuda:1', 'cuda:1']);
  });

  it('mixing devices in one operation is DEVICE_MISMATCH (in lib and in core); copies between devices work', async () => {
    const x = tensor(
      'f32',
      [1, 12, 4],
      Float32Array.from({ length: 48 }, (_, i) => Math.sin(i)),
    );
    using x0 = DeviceTensor.fromSync(x, { device: 'cuda:0' });
    using m1 = DeviceTensor.fromSync(x, { device: 'cuda:1' });
    const e = await mergeTokens(x0, { r: 2, metric: m1 }).catch((err: unknown) => err);
    expect(e).toMatchObject({ code: 'DEVICE_MISMATCH' });
    expect((e as Error).message).toMatch(/x is on cuda:0 but metric is on cuda:1/);

    // A ToMe step on cuda:1 runs there and returns tensors on cuda:1.
    using x1 = DeviceTensor.fromSync(x, { device: 'cuda:1' });
    const step = await mergeTokens(x1, { r: 2 });
    expect(step.tokens.device).toBe('cuda:1');
    expect(step.sizes.device).toBe('cuda:1');
    const onCpu = await mergeTokens(x, { r: 2 });
    expect(Array.from(step.tokens.downloadSync().data)).toEqual(Array.from(onCpu.tokens.data));
    step.tokens.dispose();
    step.sizes.dispose();

    // Core refuses a unit on cuda:0 decoding into cuda:1 (lib passes it through untouched).
    const unit = await compress({ w: tensor('bf16', [4096], original('model.layers.0.mlp.up_proj.weight').subarray(0, 4096)) });
    using resident = await uploadUnit(unit.buffers, { kind: 'cuda', index: 0, label: 'cuda:0' });
    using out1 = DeviceTensor.empty('bf16', [4096], { device: 'cuda:1' });
    const mismatch = await decodeDeviceUnit(resident, out1.buffer).catch((err: unknown) => err);
    expect(mismatch).toMatchObject({ code: 'DEVICE_MISMATCH' });
    expect((mismatch as Error).message).toMatch(/cuda:0.*cuda:1/);
    using out0 = DeviceTensor.empty('bf16', [4096], { device: 'cuda:0' });
    await decodeDeviceUnit(resident, out0.buffer);
    // decompress() into a DeviceTensor on cuda:1 uploads the host unit to cuda:1 and decodes there.
    using direct = DeviceTensor.empty('bf16', [4096], { device: 'cuda:1' });
    await decompress(unit, { out: direct });
    expect(sameBits(direct.downloadSync().data as Uint16Array, original('model.layers.0.mlp.up_proj.weight').subarray(0, 4096))).toBe(true);
    // A copy from cuda:0 to cuda:1 goes through the host.
    out1.buffer.copyFrom({ source: out0.buffer, bytes: 8192 });
    expect(sameBits(out1.downloadSync().data as Uint16Array, original('model.layers.0.mlp.up_proj.weight').subarray(0, 4096))).toBe(true);
  });

  it('a KV cache on cuda:1 keeps its mirror there and gives the CPU bits', () => {
    const H = 2,
      d = 32,
      T = 80;
    const k = randTensor([H, T, d], 5);
    const v = randTensor([H, T, d], 6);
    const opts = { scheme: 'kivi', heads: H, headDim: d, groupSize: 16, residualLength: 32 } as const;
    using cpu = QuantizedKVCache.create({ ...opts, device: 'cpu' });
    const gpu = QuantizedKVCache.create({ ...opts, device: 'cuda:1' });
    expect([cpu.device, gpu.device]).toEqual(['cpu', 'cuda:1']);
    for (const c of [cpu, gpu]) c.appendSync(sliceTokens(k, 0, T), sliceTokens(v, 0, T));
    const a = cpu.dequantizeSync();
    const b = gpu.dequantizeSync();
    expect(Buffer.from(b.k.data.buffer).equals(Buffer.from(a.k.data.buffer))).toBe(true);
    expect(Buffer.from(b.v.data.buffer).equals(Buffer.from(a.v.data.buffer))).toBe(true);
    const held = heldBytes();
    gpu.dispose();
    const freed = delta(heldBytes(), held);
    expect(freed['cuda:1']).toBeGreaterThan(0); // the device mirror lived on cuda:1
    expect(freed['cuda:0']).toBe(0);
  });

  it('spread over two devices: contiguous balanced ranges, every block decodes bit-exact on its own device, memory per device', async () => {
    using ref = await CompressedModel.open(packed, { device: 'cpu' });
    const model = await CompressedModel.open(packed, { placement: { devices: ['cuda:0', 'cuda:1'] } });
    expect(model.devices).toEqual(['cuda:0', 'cuda:1']);
    // Spreading order: the embedding, the blocks, then other standalone units; contiguous ranges.
    const order = ['model.embed_tokens', ...model.blockUnits.map((u) => u.prefix)];
    const labels = order.map((p) => model.placement.get(p)!);
    expect(labels).toEqual([...labels].sort());
    expect(new Set(labels)).toEqual(new Set(['cuda:0', 'cuda:1']));
    // Balanced by compressed + decoded bytes: each side within one unit of half the total.
    const cost = (label: string) => model.units.filter((u) => model.placement.get(u.prefix) === label).reduce((s, u) => s + unitCost(u), 0);
    const total = cost('cuda:0') + cost('cuda:1');
    const largest = Math.max(...model.units.map(unitCost));
    expect(Math.abs(cost('cuda:0') - total / 2)).toBeLessThanOrEqual(largest);

    for (let i = 0; i < model.numBlocks; i++) {
      const block = await model.decompressBlock(i);
      expect(block.device).toBe(model.deviceOf(i));
      const cpuBlock = await ref.decompressBlock(i);
      for (const view of block.tensors.values()) {
        expect(view.device).toBe(block.device);
        const got = (await view.toTensor()).data;
        expect(sameBits(got, cpuBlock.get(view.name).toTensorSync().data), view.name).toBe(true);
        expect(sameBits(got, original(view.name)), view.name).toBe(true);
      }
      using copy = block.get('mlp.down_proj.weight').toDeviceTensor();
      expect(copy.device).toBe(block.device);
    }
    const embed = await model.decompressUnit('model.embed_tokens');
    expect(embed.device).toBe('cuda:0');
    expect(sameBits(embed.get('model.embed_tokens.weight').toTensorSync().data, original('model.embed_tokens.weight'))).toBe(true);

    // Per-device memory: what the model reports per device is what dispose gives back on each
    // (measured around the synchronous dispose, so no finalizer of other garbage runs between).
    const byDevice = model.deviceBytesByDevice;
    const held = heldBytes();
    model.dispose();
    const freed = delta(heldBytes(), held);
    for (const label of ['cuda:0', 'cuda:1']) {
      expect(byDevice[label]!.compressed).toBeGreaterThan(0);
      expect(byDevice[label]!.scratch).toBeGreaterThan(0);
      expect(freed[label], label).toBe(byDevice[label]!.total);
    }
    expect(freed.cpu).toBe(0);
    expect(model.deviceBytes.total).toBe(0);
  });

  it('an explicit map (longest prefix wins, cpu allowed) and prefetching across devices', async () => {
    using model = await CompressedModel.open(packed, {
      placement: {
        map: { 'model.layers': 'cuda:0', 'model.layers.1': 'cuda:1', 'model.layers.3.': 'cpu', 'model.embed_tokens': 'cuda:1' },
      },
    });
    expect([...model.placement.entries()]).toEqual([
      ['model.layers.0', 'cuda:0'],
      ['model.layers.1', 'cuda:1'],
      ['model.layers.2', 'cuda:0'],
      ['model.layers.3', 'cpu'],
      ['model.layers.4', 'cuda:0'],
      ['model.embed_tokens', 'cuda:1'],
    ]);
    expect(model.devices).toEqual(['cuda:0', 'cuda:1', 'cpu']);
    const seen: string[] = [];
    for await (const block of model.blocks({ prefetch: true })) {
      seen.push(block.device);
      await new Promise((r) => setTimeout(r, 2)); // the next block decodes meanwhile, on its own device
      for (const view of block.tensors.values()) expect(sameBits(view.toTensorSync().data, original(view.name)), view.name).toBe(true);
    }
    expect(seen).toEqual(['cuda:0', 'cuda:1', 'cuda:0', 'cpu', 'cuda:0']);
    const byDevice = model.deviceBytesByDevice;
    expect(Object.keys(byDevice)).toEqual(['cuda:0', 'cuda:1', 'cpu']);
    // Buffers are per device, the prefetch slot alternates by ordinal: cuda:0's blocks (0, 2, 4)
    // all use slot 0, cuda:1 (block 1) and cpu (block 3) slot 1, so each holds one block buffer.
    expect(byDevice['cuda:0']!.scratch).toBe(model.blockBufferBytes);
    expect(byDevice['cpu']!.scratch).toBe(model.blockBufferBytes);
    expect(byDevice['cuda:1']!.scratch).toBe(model.blockBufferBytes);
    await model.decompressUnit('model.embed_tokens');
    expect(model.deviceBytesByDevice['cuda:1']!.scratch).toBe(model.blockBufferBytes + 512 * 64 * 2);
    expect(model.deviceBytesByDevice['cuda:0']!.scratch).toBe(model.blockBufferBytes);
  });
});
