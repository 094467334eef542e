/**
 * CompressedModel checks what it loads: a damaged unit or raw tensor gives CORRUPT_DATA on the
 * inference path (not wrong weights), `verify: false` opts out, and manifests whose block numbers
 * or unit kinds disagree with the tensor names are refused (and reported by verifyModel).
 */
import { join } from 'node:path';
import { deflateRawSync, inflateRawSync } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InferzipError } from '../../lib/errors.js';
import { MANIFEST_KEY } from '../../lib/model/manifest.js';
import { CompressedModel, compressModel, verifyModel } from '../../lib/model/index.js';
import { MODEL, cleanupTempDirs, tempDir } from '../model/helpers.js';
import { SafetensorsFile, writeSafetensorsSync } from '../../lib/safetensors/index.js';
import { flipByte, rewriteManifest, tensorByteOffset } from './helpers.js';

let dir: string;
let packed: string;

beforeAll(async () => {
  dir = tempDir('integrity');
  packed = join(dir, 'stories.df11.safetensors');
  await compressModel(MODEL, packed);
});
afterAll(cleanupTempDirs);

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof InferzipError ? err.code : `plain ${String(err)}`;
  }
}

describe('CompressedModel integrity on the inference path', () => {
  it('refuses a unit whose sign/mantissa bytes were damaged (the decoder cannot notice those)', async () => {
    const bad = join(dir, 'sm.safetensors');
    flipByte(packed, bad, tensorByteOffset(packed, 'model.layers.2.sign_mantissa', 100), 0x10);
    await expect(CompressedModel.open(bad, { device: 'cpu' })).rejects.toMatchObject({
      code: 'CORRUPT_DATA',
      message: expect.stringContaining("unit 'model.layers.2'"),
    });
    // verify: false trusts the file: the damage reaches the weights, which is what the opt-out means
    using model = await CompressedModel.open(bad, { device: 'cpu', verify: false });
    using good = await CompressedModel.open(packed, { device: 'cpu' });
    const a = await (await model.decompressBlock(2)).get('self_attn.q_proj.weight').toTensor();
    const b = await (await good.decompressBlock(2)).get('self_attn.q_proj.weight').toTensor();
    expect(Buffer.compare(Buffer.from(a.data.buffer), Buffer.from(b.data.buffer))).not.toBe(0);
  });

  it('refuses a raw tensor whose bytes were damaged when it is read', async () => {
    const bad = join(dir, 'raw.safetensors');
    flipByte(packed, bad, tensorByteOffset(packed, 'model.norm.weight', 3), 0x04);
    using model = await CompressedModel.open(bad, { device: 'cpu' });
    await expect(model.readTensor('model.norm.weight')).rejects.toMatchObject({
      code: 'CORRUPT_DATA',
      message: expect.stringContaining('model.norm.weight'),
    });
    using off = await CompressedModel.open(bad, { device: 'cpu', verify: false });
    await expect(off.readTensor('model.norm.weight')).resolves.toBeDefined();
  });

  it('refuses matrices whose manifest entries were swapped (unit crc32 still matches; decoded crc32 does not)', async () => {
    const bad = join(dir, 'members.safetensors');
    rewriteManifest(packed, bad, (m) => {
      const u = (m.units as { prefix: string; members: string[] }[]).find((x) => x.prefix === 'model.layers.0')!;
      const q = u.members.indexOf('model.layers.0.self_attn.q_proj.weight');
      const o = u.members.indexOf('model.layers.0.self_attn.o_proj.weight');
      [u.members[q], u.members[o]] = [u.members[o]!, u.members[q]!];
    });
    using model = await CompressedModel.open(bad, { device: 'cpu' });
    await expect(model.decompressBlock(0)).rejects.toMatchObject({
      code: 'CORRUPT_DATA',
      message: expect.stringContaining('fails its crc32'),
    });
    // the other blocks are intact and decode
    await expect(model.decompressBlock(1)).resolves.toBeDefined();
  });

  it('refuses a raw tensor renamed in the header (same bytes, same crc32, wrong name) — found by the mutation fuzzer', async () => {
    const bad = join(dir, 'renamed.safetensors');
    {
      using f = SafetensorsFile.open(packed);
      writeSafetensorsSync(
        bad,
        f.tensors.map((e) => ({
          name: e.name === 'model.layers.2.post_attention_layernorm.weight' ? 'model.layers.2.po*t_attention_layernorm.weight' : e.name,
          dtype: e.dtype,
          shape: e.shape,
          data: f.readBytesSync(e.name),
        })),
        { metadata: { ...f.metadata } },
      );
    }
    await expect(CompressedModel.open(bad, { device: 'cpu' })).rejects.toMatchObject({
      code: 'CORRUPT_DATA',
      message: expect.stringMatching(/po\*t_attention|missing from the file/),
    });
  });

  it('rejects a non-boolean verify option', async () => {
    await expect(CompressedModel.open(packed, { device: 'cpu', verify: 'no' as unknown as boolean })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});

describe('manifest cross-checks', () => {
  type Unit = { prefix: string; kind: string; block?: number };
  const edits: [string, (m: Record<string, unknown>) => void, RegExp][] = [
    [
      'swapped block numbers',
      (m) => {
        const units = m.units as Unit[];
        const a = units.find((u) => u.prefix === 'model.layers.1')!;
        const b = units.find((u) => u.prefix === 'model.layers.3')!;
        [a.block, b.block] = [b.block, a.block];
      },
      /numbered 3 in the manifest, its name says 1/,
    ],
    [
      'a block marked as a standalone matrix',
      (m) => {
        const u = (m.units as Unit[]).find((x) => x.prefix === 'model.layers.4')!;
        u.kind = 'matrix';
        delete u.block;
      },
      /'model.layers.4' is marked as a standalone matrix/,
    ],
  ];
  it.each(edits)('%s: verifyModel reports it and CompressedModel.open refuses it', async (label, edit, message) => {
    const bad = join(dir, `${label.replace(/\W+/g, '-')}.safetensors`);
    rewriteManifest(packed, bad, edit);
    const r = await verifyModel(bad);
    expect(r.ok).toBe(false);
    expect(r.problems.map((p) => p.message).join('\n')).toMatch(message);
    expect(await codeOf(CompressedModel.open(bad, { device: 'cpu' }))).toBe('CORRUPT_DATA');
  });

  it('an unedited file passes both', async () => {
    expect((await verifyModel(packed)).ok).toBe(true);
    using model = await CompressedModel.open(packed, { device: 'cpu' });
    expect(model.blockUnits.map((u) => u.block)).toEqual([0, 1, 2, 3, 4]);
  });

  it('a manifest that still inflates to valid JSON but renames a tensor everywhere fails its crc32', async () => {
    // Found by the mutation fuzzer: one base64 byte changed a deflate back-reference, so k_proj
    // read g_proj in the unit lists, the crc32 map and the original header alike; CompressedModel
    // then served the right bytes under the wrong names. The manifest's own crc32 catches it.
    const bad = join(dir, 'renamed.safetensors');
    {
      using f = SafetensorsFile.open(packed);
      const json = inflateRawSync(Buffer.from(f.metadata[MANIFEST_KEY]!, 'base64')).toString('utf8');
      const renamed = json.replaceAll('k_proj', 'g_proj');
      expect(renamed).not.toBe(json);
      writeSafetensorsSync(
        bad,
        f.tensors.map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, data: f.readBytesSync(e.name) })),
        { metadata: { ...f.metadata, [MANIFEST_KEY]: deflateRawSync(Buffer.from(renamed, 'utf8')).toString('base64') } },
      );
    }
    await expect(CompressedModel.open(bad, { device: 'cpu' })).rejects.toMatchObject({
      code: 'CORRUPT_DATA',
      message: expect.stringMatching(/does not match its crc32/),
    });
    const v = await verifyModel(bad);
    expect(v.ok).toBe(false);
    expect(v.problems[0]!.message).toMatch(/does not match its crc32/);
  });
});
