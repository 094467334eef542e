import { copyFileSync, existsSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { InferzipError } from '../../lib/errors.js';
import { compressModel, decompressModel, inspectModel, verifyModel, type ModelProgress } from '../../lib/model/index.js';
import { openSafetensors, writeSafetensorsSync } from '../../lib/safetensors/index.js';
import { LLAMA_ORDER, MODEL, MODEL_DIR, cleanupTempDirs, listDir, makeShardedCopy, sameBytes, tempDir } from './helpers.js';

afterAll(cleanupTempDirs);

describe('compressModel / decompressModel on the bundled model', () => {
  it('round-trips byte for byte and reports the figures', async () => {
    const dir = tempDir();
    const packed = join(dir, 'stories.df11.safetensors');
    const progress: ModelProgress[] = [];
    const r = await compressModel(MODEL, packed, { onProgress: (p) => progress.push(p) });
    // 5 transformer blocks + the 512x64 embedding; the 11 RMSNorm vectors stay verbatim.
    expect(r.units).toBe(6);
    expect(r.verbatimTensors).toBe(11);
    expect(r.rawTensors).toEqual([]);
    expect(r.bf16Weights).toBe(260_032);
    expect(r.compressedWeights).toBe(260_032 - 11 * 64);
    expect(r.inputBytes).toBe(readFileSync(MODEL).byteLength);
    expect(r.outputBytes).toBe(readFileSync(packed).byteLength);
    // Lossless bound on these weights is ~10.77; the payload must be within 0.5 of it.
    expect(r.entropyBound).toBeGreaterThan(10.5);
    expect(r.entropyBound).toBeLessThan(11);
    expect(r.bitsPerWeight).toBeGreaterThanOrEqual(r.entropyBound);
    expect(r.bitsPerWeight).toBeLessThan(r.entropyBound + 0.5);
    expect(r.outputBytes).toBeLessThan(r.inputBytes * 0.75);
    // Progress: monotone, ends complete.
    const last = progress.at(-1)!;
    expect(last.unitsDone).toBe(6);
    expect(last.bytesDone).toBe(last.bytesTotal);
    for (let i = 1; i < progress.length; i++) expect(progress[i]!.bytesDone).toBeGreaterThanOrEqual(progress[i - 1]!.bytesDone);

    const restored = join(dir, 'restored.safetensors');
    const d = await decompressModel(packed, restored);
    expect(d.files).toEqual([restored]);
    expect(sameBytes(MODEL, restored)).toBe(true);

    // The output is a DFloat11-layout safetensors file: unit buffers by module prefix.
    using out = openSafetensors(packed);
    for (const b of ['encoded_exponent', 'sign_mantissa', 'luts', 'output_positions', 'gaps', 'split_positions']) {
      expect(out.has(`model.layers.0.${b}`)).toBe(true);
      expect(out.has(`model.embed_tokens.${b}`)).toBe(true);
    }
    expect(out.entry('model.layers.0.split_positions').shape).toEqual([6]);
    expect(out.has('model.norm.weight')).toBe(true);
    expect(out.has('model.layers.0.self_attn.q_proj.weight')).toBe(false);
  });

  it('accepts the model directory and writes into an existing directory on decompress', async () => {
    const dir = tempDir();
    const packed = join(dir, 'm.df11.safetensors');
    await compressModel(MODEL_DIR, packed);
    const d = await decompressModel(packed, dir);
    expect(d.files).toEqual([join(dir, 'model.safetensors')]);
    expect(sameBytes(MODEL, d.files[0]!)).toBe(true);
  });

  it('a directory output is a DFloat11 model directory that DFloat11 readers open', async () => {
    const out = join(tempDir(), 'stories-df11');
    const r = await compressModel(MODEL_DIR, `${out}/`);
    expect(r.output).toBe(join(out, 'model.safetensors'));
    expect(r.config).toBe(join(out, 'config.json'));
    expect(listDir(out)).toEqual(['config.json', 'model.safetensors']);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.hidden_size).toBe(64); // the original config is kept
    expect(config.dfloat11_config).toEqual({
      version: '0.5.0',
      threads_per_block: [512],
      bytes_per_thread: 8,
      pattern_dict: {
        'model\\.layers\\.\\d+': LLAMA_ORDER,
        'model\\.embed_tokens': [],
      },
    });
    // Opened as a DFloat11 directory (names and shapes from config.json), it decodes the same.
    const report = await inspectModel(out, { decode: true });
    expect(report.format).toBe('dfloat11');
    expect(report.units[0]!.tensors[4]).toEqual({ name: 'model.layers.0.mlp.gate_proj.weight', shape: [172, 64] });
    expect((await verifyModel(out)).ok).toBe(true);
    // And the file inside still rebuilds the original exactly.
    const back = join(out, 'back.safetensors');
    await decompressModel(r.output, back);
    expect(sameBytes(MODEL, back)).toBe(true);
  });

  it('round-trips a sharded model: every shard and the index, byte for byte', async () => {
    const src = makeShardedCopy(tempDir('shards'));
    const dir = tempDir();
    const packed = join(dir, 'sharded.df11.safetensors');
    const r = await compressModel(src, packed);
    expect(r.units).toBe(6);
    const out = join(dir, 'restored');
    const d = await decompressModel(packed, out);
    expect(listDir(out)).toEqual(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
    for (const f of listDir(out)) expect(sameBytes(join(src, f), join(out, f))).toBe(true);
    expect(d.files).toHaveLength(3);
    expect((await verifyModel(packed)).ok).toBe(true);
  });

  it('keeps bytes between tensors, odd headers and uncodable tensors exactly', async () => {
    const dir = tempDir();
    using src = openSafetensors(MODEL);
    // A block whose v_proj holds Inf and NaN: that matrix must be stored raw, the rest coded.
    const v = new Uint16Array(src.readSync('model.layers.0.self_attn.v_proj.weight').data as Uint16Array);
    v[5] = 0x7f80; // +Inf
    v[9] = 0xffc1; // NaN with payload
    const names = [
      'model.layers.0.self_attn.q_proj.weight',
      'model.layers.0.self_attn.v_proj.weight',
      'model.layers.0.input_layernorm.weight',
    ];
    const plain = join(dir, 'plain.safetensors');
    writeSafetensorsSync(
      plain,
      names.map((name) => ({
        name,
        dtype: 'BF16' as const,
        shape: src.entry(name).shape,
        data: name.includes('v_proj') ? v : src.readBytesSync(name),
      })),
      { metadata: { note: 'é ✓' } },
    );
    // Rewrite it by hand with 5 junk bytes between tensors and 3 trailing bytes.
    const buf = readFileSync(plain);
    const hlen = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + hlen).toString('utf8')) as Record<string, { data_offsets: [number, number] }>;
    const data = buf.subarray(8 + hlen);
    const pieces: Buffer[] = [];
    let pos = 0;
    for (const name of names) {
      const [b, e] = header[name]!.data_offsets;
      pieces.push(Buffer.from([1, 2, 3, 4, 5]));
      pos += 5;
      pieces.push(data.subarray(b, e));
      header[name]!.data_offsets = [pos, pos + e - b];
      pos += e - b;
    }
    pieces.push(Buffer.from([9, 9, 9]));
    const json = Buffer.from(`${JSON.stringify(header)}   `);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.byteLength));
    const odd = join(dir, 'odd.safetensors');
    writeFileSync(odd, Buffer.concat([len, json, ...pieces]));

    const packed = join(dir, 'odd.df11.safetensors');
    const r = await compressModel(odd, packed);
    expect(r.rawTensors).toEqual(['model.layers.0.self_attn.v_proj.weight']);
    expect(r.units).toBe(1);
    const back = join(dir, 'back.safetensors');
    await decompressModel(packed, back);
    expect(sameBytes(odd, back)).toBe(true);
    expect((await verifyModel(packed)).ok).toBe(true);
  });
});

describe('verifyModel and inspectModel', () => {
  it('verify passes on a good file and names the damaged tensor after a flipped byte', async () => {
    const dir = tempDir();
    const packed = join(dir, 'v.df11.safetensors');
    await compressModel(MODEL, packed);
    const good = await verifyModel(packed);
    expect(good).toMatchObject({ ok: true, units: 6, files: 1, tensors: 47, problems: [] });

    using f = openSafetensors(packed);
    const sm = f.entry('model.layers.2.sign_mantissa');
    const start = (f as unknown as { dataStart: number }).dataStart;
    const bad = join(dir, 'bad.df11.safetensors');
    copyFileSync(packed, bad);
    const bytes = readFileSync(bad);
    bytes[start + sm.dataOffsets[0] + 100]! ^= 0x01;
    writeFileSync(bad, bytes);
    const r = await verifyModel(bad);
    expect(r.ok).toBe(false);
    // Named twice: the unit's stored bytes, and the tensor that decodes differently.
    expect(r.problems.some((p) => p.kind === 'unit' && p.name === 'model.layers.2')).toBe(true);
    expect(r.problems.some((p) => p.kind === 'tensor' && p.name.startsWith('model.layers.2.'))).toBe(true);
    await expect(decompressModel(bad, join(dir, 'never.safetensors'))).rejects.toMatchObject({ code: 'CORRUPT_DATA' });
    expect(existsSync(join(dir, 'never.safetensors'))).toBe(false);
  });

  it('inspect reports units, sizes, bits/weight and the entropy bound', async () => {
    const dir = tempDir();
    const packed = join(dir, 'i.df11.safetensors');
    const c = await compressModel(MODEL, packed);
    const r = await inspectModel(packed);
    expect(r.format).toBe('inferzip');
    expect(r.units.map((u) => u.prefix)).toEqual([
      'model.layers.0',
      'model.layers.1',
      'model.layers.2',
      'model.layers.3',
      'model.layers.4',
      'model.embed_tokens',
    ]);
    const b0 = r.units[0]!;
    expect(b0.tensors.map((t) => t.name.split('.').slice(-2, -1)[0])).toEqual([
      'q_proj',
      'k_proj',
      'v_proj',
      'o_proj',
      'gate_proj',
      'up_proj',
      'down_proj',
    ]);
    expect(b0.tensors[0]!.shape).toEqual([64, 64]);
    expect(b0.elements).toBe(64 * 64 * 2 + 32 * 64 * 2 + 172 * 64 * 3);
    expect(b0.bytes.sign_mantissa).toBe(b0.elements);
    expect(b0.bitsPerWeight).toBeCloseTo((b0.bytes.total * 8) / b0.elements, 10);
    expect(b0.entropyBound).toBeGreaterThan(10);
    expect(r.totals.compressedWeights).toBe(c.compressedWeights);
    expect(r.totals.unitBytes).toBe(c.unitBytes);
    expect(r.totals.entropyBound).toBeCloseTo(c.entropyBound, 5);
    expect(r.fileBytes).toBe(c.outputBytes);
    expect(r.totals.fileBitsPerWeight).toBeCloseTo(c.fileBitsPerWeight, 10);
    expect(r.original!.bytes).toBe(c.inputBytes);
    expect(r.raw.tensors).toBe(11);
  });
});

describe('failures leave nothing behind and give typed errors', () => {
  it('cancelling midway leaves no output and no temp file', async () => {
    const dir = tempDir();
    const packed = join(dir, 'partial.df11.safetensors');
    const ac = new AbortController();
    const err = await compressModel(MODEL, packed, {
      signal: ac.signal,
      onProgress: (p) => {
        if (p.unitsDone === 2) ac.abort(new InferzipError('INVALID_ARGUMENT', 'stop here'));
      },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferzipError);
    expect((err as Error).message).toMatch(/stop here/);
    expect(listDir(dir)).toEqual([]);
  });

  it('an input that fails midway (file truncated under it) leaves no output', async () => {
    const src = tempDir('src');
    const copy = join(src, 'model.safetensors');
    copyFileSync(MODEL, copy);
    const dir = tempDir();
    const err = await compressModel(copy, join(dir, 'x.df11.safetensors'), {
      onProgress: (p) => {
        if (p.unitsDone === 1) truncateSync(copy, 300_000);
      },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'InferzipError', code: 'CORRUPT_DATA' });
    expect(listDir(dir)).toEqual([]);
  });

  it('corrupt or truncated compressed files give typed errors', async () => {
    const dir = tempDir();
    const packed = join(dir, 'c.df11.safetensors');
    await compressModel(MODEL, packed);
    const bytes = readFileSync(packed);
    const truncated = join(dir, 'truncated.safetensors');
    writeFileSync(truncated, bytes.subarray(0, bytes.byteLength - 1000));
    await expect(decompressModel(truncated, join(dir, 'o1'))).rejects.toMatchObject({ name: 'InferzipError', code: 'CORRUPT_DATA' });
    expect((await verifyModel(truncated)).ok).toBe(false);
    const tiny = join(dir, 'tiny.safetensors');
    writeFileSync(tiny, bytes.subarray(0, 5));
    await expect(decompressModel(tiny, join(dir, 'o2'))).rejects.toMatchObject({ code: 'CORRUPT_DATA' });
    // A plain (uncompressed) model is not a compressed one.
    await expect(decompressModel(MODEL, join(dir, 'o3'))).rejects.toMatchObject({ code: 'NOT_COMPRESSED' });
    await expect(decompressModel(join(dir, 'missing.safetensors'), join(dir, 'o4'))).rejects.toMatchObject({ code: 'IO_ERROR' });
    await expect(compressModel(join(dir, 'missing'), join(dir, 'o5'))).rejects.toMatchObject({ code: 'IO_ERROR' });
    await expect(compressModel(MODEL, MODEL)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(listDir(dir).sort()).toEqual(['c.df11.safetensors', 'tiny.safetensors', 'truncated.safetensors']);
  });

  it('a tampered manifest is CORRUPT_DATA, not a crash', async () => {
    const dir = tempDir();
    const packed = join(dir, 'm.df11.safetensors');
    await compressModel(MODEL, packed);
    using f = openSafetensors(packed);
    const entries = f.tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, data: f.readBytesSync(t.name) }));
    const cases: Record<string, string>[] = [
      { ...f.metadata, 'inferzip.manifest': 'not base64 deflate!' },
      { ...f.metadata, 'inferzip.format': 'inferzip-df11-model/99' },
    ];
    for (const [i, metadata] of cases.entries()) {
      const p = join(dir, `t${i}.safetensors`);
      writeSafetensorsSync(p, entries, { metadata });
      await expect(decompressModel(p, join(dir, `o${i}`))).rejects.toMatchObject({ code: 'CORRUPT_DATA' });
      expect((await verifyModel(p)).ok).toBe(false);
    }
  });
});

describe('random damage', () => {
  it('any flipped byte of a compressed file is caught by verify (never a crash or a false OK)', async () => {
    const dir = tempDir();
    const packed = join(dir, 'fuzz.df11.safetensors');
    await compressModel(MODEL, packed);
    const clean = readFileSync(packed);
    const hlen = Number(clean.readBigUInt64LE(0));
    const damaged = join(dir, 'damaged.safetensors');
    // Deterministic positions: the length prefix, the header (JSON and metadata), every unit buffer kind.
    let seed = 7;
    const next = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % clean.byteLength;
    const positions = [0, 3, 8, 9, 100, hlen + 7, ...Array.from({ length: 150 }, next)];
    let caught = 0;
    for (const at of positions) {
      const bytes = Buffer.from(clean);
      bytes[at]! ^= 1 << (at % 8);
      writeFileSync(damaged, bytes);
      const header = bytes.subarray(8, 8 + hlen).toString('latin1');
      let r;
      try {
        r = await verifyModel(damaged);
      } catch (err) {
        // Only typed errors may escape (e.g. the length prefix now points past the file).
        expect(err, `flip at ${at}`).toBeInstanceOf(InferzipError);
        caught++;
        continue;
      }
      // A flip that turns one header padding space into another whitespace-free char is
      // still a flip: the only bytes allowed to change without notice are none.
      if (r.ok)
        expect.fail(
          `flip at byte ${at} (${at < 8 + hlen ? `header: ${JSON.stringify(header.slice(Math.max(0, at - 8 - 20), at - 8 + 20))}` : 'data'}) went unnoticed`,
        );
      caught++;
      // Rebuilding either refuses with a typed error or gives the exact original.
      if (at % 4 === 0) {
        const out = join(dir, 'rebuilt.safetensors');
        const err = await decompressModel(damaged, out).then(
          () => undefined,
          (e: unknown) => e,
        );
        if (err === undefined) expect(sameBytes(MODEL, out), `flip at ${at}`).toBe(true);
        else expect(err, `flip at ${at}`).toBeInstanceOf(InferzipError);
        rmSync(out, { force: true });
      }
    }
    expect(caught).toBe(positions.length);
  });
});
