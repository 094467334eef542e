import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { openSafetensors } from '../../lib/safetensors/index.js';
import { buildDFloat11Fixture } from '../model/df11-fixture.js';
import { MODEL, cleanupTempDirs, listDir, makeShardedCopy, runCli, sameBytes, tempDir } from '../model/helpers.js';

afterAll(cleanupTempDirs);

describe('inferzip CLI', () => {
  it('compress -> decompress gives the bundled model back byte for byte; verify and inspect agree', async () => {
    const dir = tempDir('cli');
    const packed = join(dir, 'stories.df11.safetensors');
    const c = await runCli(['compress', MODEL, '-o', packed, '--threads', '2']);
    expect(c.stderr).toBe('');
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/bits\/weight/);
    const restored = join(dir, 'model.safetensors');
    const d = await runCli(['decompress', packed, '-o', restored]);
    expect(d.code).toBe(0);
    expect(sameBytes(MODEL, restored)).toBe(true);

    const v = await runCli(['verify', packed, '--json']);
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ ok: true, units: 6, tensors: 47, problems: [] });

    const i = await runCli(['inspect', packed, '--json']);
    expect(i.code).toBe(0);
    const report = JSON.parse(i.stdout) as {
      format: string;
      units: { prefix: string; bitsPerWeight: number; entropyBound: number; bytes: { total: number } }[];
      totals: { bitsPerWeight: number; entropyBound: number; fileBitsPerWeight: number; compressedWeights: number };
    };
    expect(report.format).toBe('inferzip');
    expect(report.units).toHaveLength(6);
    for (const u of report.units) {
      expect(u.bitsPerWeight).toBeGreaterThan(u.entropyBound - 1e-9);
      expect(u.bytes.total).toBeGreaterThan(0);
    }
    expect(report.totals.compressedWeights).toBe(259_328);
    expect(report.totals.fileBitsPerWeight).toBeGreaterThan(report.totals.bitsPerWeight * 0.9);

    const human = await runCli(['inspect', packed]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/model\.layers\.4/);
    expect(human.stdout).toMatch(/entropy bound/);
  });

  it('compress --json prints the result object', async () => {
    const dir = tempDir('cli');
    const packed = join(dir, 'j.df11.safetensors');
    const c = await runCli(['compress', MODEL, '-o', packed, '--json']);
    expect(c.code).toBe(0);
    const r = JSON.parse(c.stdout) as { ok: boolean; units: number; outputBytes: number; bitsPerWeight: number; entropyBound: number };
    expect(r).toMatchObject({ ok: true, units: 6 });
    expect(r.outputBytes).toBe(readFileSync(packed).byteLength);
    expect(r.bitsPerWeight).toBeGreaterThan(r.entropyBound);
  });

  it('verify exits 1 when a byte of a unit is flipped', async () => {
    const dir = tempDir('cli');
    const packed = join(dir, 'f.df11.safetensors');
    expect((await runCli(['compress', MODEL, '-o', packed, '-q'])).code).toBe(0);
    let at: number;
    {
      using f = openSafetensors(packed);
      const e = f.entry('model.layers.1.sign_mantissa');
      at = (f as unknown as { dataStart: number }).dataStart + e.dataOffsets[0] + 7;
    }
    const bytes = readFileSync(packed);
    bytes[at]! ^= 0x40;
    writeFileSync(packed, bytes);
    const v = await runCli(['verify', packed]);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/FAILED/);
    expect(v.stdout).toMatch(/model\.layers\.1\./);
    const d = await runCli(['decompress', packed, '-o', join(dir, 'out.safetensors')]);
    expect(d.code).toBe(1);
    expect(d.stderr).toMatch(/CORRUPT_DATA/);
    expect(listDir(dir)).toEqual(['f.df11.safetensors']);
  });

  it('round-trips a sharded model directory', async () => {
    const src = makeShardedCopy(tempDir('cli-shards'));
    const dir = tempDir('cli');
    const packed = join(dir, 's.df11.safetensors');
    expect((await runCli(['compress', src, '-o', packed])).code).toBe(0);
    const out = join(dir, 'restored');
    expect((await runCli(['decompress', packed, '-o', out])).code).toBe(0);
    for (const f of listDir(src)) expect(sameBytes(join(src, f), join(out, f))).toBe(true);
  });

  it('usage errors exit 2, help exits 0, failures exit 1', async () => {
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes/);
    for (const args of [
      [],
      ['frobnicate'],
      ['compress', MODEL],
      ['compress'],
      ['verify'],
      ['verify', 'a', 'b'],
      ['inspect', MODEL, '--bogus'],
      ['compress', MODEL, '-o', '/tmp/x', '--threads', 'zero'],
    ]) {
      const r = await runCli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/inferzip: /);
    }
    const missing = await runCli(['verify', '/nonexistent/file.safetensors', '--json']);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout)).toMatchObject({ ok: false, error: { code: 'IO_ERROR' } });
    const notCompressed = await runCli(['decompress', MODEL, '-o', join(tempDir('cli'), 'x')]);
    expect(notCompressed.code).toBe(1);
  });

  it('inspect --decode and verify work on a published-layout DFloat11 directory', async () => {
    const dir = await buildDFloat11Fixture(tempDir('cli-df11'));
    const i = await runCli(['inspect', dir, '--decode', '--json']);
    expect(i.code).toBe(0);
    const r = JSON.parse(i.stdout) as {
      format: string;
      units: { prefix: string; tensors: { name: string; shape: number[] }[] }[];
      totals: { entropyBound: number };
    };
    expect(r.format).toBe('dfloat11');
    expect(r.units[0]!.tensors[6]).toEqual({ name: 'model.layers.0.mlp.down_proj.weight', shape: [64, 172] });
    expect(r.totals.entropyBound).toBeGreaterThan(10.5);
    const v = await runCli(['verify', dir]);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^OK /);
  });

  it('bench measures the codec on the bundled model', async () => {
    const r = await runCli(['bench', '--runs', '1', '--json']);
    expect(r.code).toBe(0);
    const b = JSON.parse(r.stdout) as { units: number; weights: number; encodeMBps: number; decodeGBps: number; bitsPerWeight: number };
    expect(b.units).toBe(6);
    expect(b.weights).toBe(259_328);
    expect(b.encodeMBps).toBeGreaterThan(0);
    expect(b.decodeGBps).toBeGreaterThan(0);
  });
});
