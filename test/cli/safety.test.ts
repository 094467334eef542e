import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { run } from '../../lib/cli/main.js';
import { COMMANDS } from '../../lib/cli/help.js';
import { progressBar, progressLines } from '../../lib/cli/progress-bar.js';
import { tensor } from '../../lib/tensor.js';
import { writeSafetensorsSync } from '../../lib/safetensors/index.js';
import type { ModelProgress } from '../../lib/model/index.js';
import { MODEL, MODEL_DIR, cleanupTempDirs, sameBytes, tempDir } from '../model/helpers.js';

afterAll(cleanupTempDirs);

/** Runs the CLI in-process; stderr is a pipe unless `tty` (then 100 columns). */
async function cli(args: string[], tty = false): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const err = { write: (s: string) => ((stderr += s), true), isTTY: tty, columns: 100 } as unknown as NodeJS.WriteStream;
  const code = await run(args, {
    stdout: { write: (s: string) => ((stdout += s), true) } as unknown as NodeJS.WritableStream,
    stderr: err,
  });
  return { code, stdout, stderr };
}

function f32Model(dir: string): string {
  const path = join(dir, 'f32.safetensors');
  writeSafetensorsSync(path, {
    'model.layers.0.self_attn.q_proj.weight': tensor('f32', [64, 64], new Float32Array(4096).fill(0.5)),
    'model.norm.weight': tensor('f32', [64], new Float32Array(64)),
  });
  return path;
}

describe('CLI: outputs are never replaced without --force', () => {
  it('compress refuses an existing output, leaves it untouched, and replaces it with --force', async () => {
    const dir = tempDir('cli-safety');
    const out = join(dir, 'out.df11.safetensors');
    writeFileSync(out, 'precious');
    const r = await cli(['compress', MODEL, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`'${out}' already exists`);
    expect(r.stderr).toContain('--force');
    expect(readFileSync(out, 'utf8')).toBe('precious');
    expect(readdirSync(dir)).toEqual(['out.df11.safetensors']); // no temp file left behind
    const forced = await cli(['compress', MODEL, '-o', out, '--force']);
    expect(forced.code).toBe(0);
    expect(readFileSync(out).byteLength).toBeGreaterThan(1000);
  });

  it('a DFloat11 directory output is refused when it already holds the model or config.json', async () => {
    const out = join(tempDir('cli-safety'), 'df11') + '/';
    expect((await cli(['compress', MODEL, '-o', out])).code).toBe(0);
    const before = readFileSync(join(out, 'model.safetensors'));
    const again = await cli(['compress', MODEL, '-o', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/model\.safetensors', '.*config\.json' already exist;/);
    expect(readFileSync(join(out, 'model.safetensors')).equals(before)).toBe(true);
    // a run that fails on its input creates no output directory
    const fresh = join(tempDir('cli-safety'), 'new') + '/';
    writeFileSync(join(fresh, '..', 'x'), '');
    expect((await cli(['compress', join(fresh, '..', 'x'), '-o', fresh])).code).toBe(1);
    expect(existsSync(fresh)).toBe(false);
  });

  it('decompress refuses an existing output file and replaces it with -f', async () => {
    const dir = tempDir('cli-safety');
    const packed = join(dir, 'p.df11.safetensors');
    expect((await cli(['compress', MODEL, '-o', packed])).code).toBe(0);
    const out = join(dir, 'model.safetensors');
    writeFileSync(out, 'precious');
    const r = await cli(['decompress', packed, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\[INVALID_ARGUMENT\].*already exists/);
    expect(readFileSync(out, 'utf8')).toBe('precious');
    expect((await cli(['decompress', packed, '-o', out, '-f'])).code).toBe(0);
    expect(sameBytes(MODEL, out)).toBe(true);
  });

  it('a missing output directory is named, not a temp file', async () => {
    const missing = join(tempDir('cli-safety'), 'no', 'such');
    const r = await cli(['compress', MODEL, '-o', join(missing, 'o.safetensors')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the output directory '${missing}' does not exist`);
    expect(r.stderr).not.toMatch(/\.tmp/);
  });
});

describe('CLI: inputs that are not what the command needs', () => {
  it('decompress and verify on a plain safetensors file: NOT_COMPRESSED naming the path', async () => {
    for (const cmd of [
      ['decompress', MODEL, '-o', join(tempDir('cli-safety'), 'x.safetensors')],
      ['verify', MODEL],
    ]) {
      const r = await cli([...cmd, '--json']);
      expect(r.code).toBe(1);
      const e = JSON.parse(r.stdout) as { ok: boolean; error: { code: string; message: string } };
      expect(e.error.code).toBe('NOT_COMPRESSED');
      expect(e.error.message).toContain(`'${MODEL}' is not an inferzip compressed model`);
    }
  });

  it('decompress on a directory: NOT_COMPRESSED naming the directory', async () => {
    const r = await cli(['decompress', MODEL_DIR, '-o', join(tempDir('cli-safety'), 'x.safetensors')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`[NOT_COMPRESSED]: '${MODEL_DIR}' is a directory`);
  });

  it('a model with nothing to compress exits 1 and keeps nothing, unless --allow-uncompressed', async () => {
    const dir = tempDir('cli-safety');
    const input = f32Model(dir);
    const out = join(dir, 'f32.df11.safetensors');
    const r = await cli(['compress', input, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nothing to compress \(no BF16 weights\).*--allow-uncompressed/);
    expect(existsSync(out)).toBe(false);
    const allowed = await cli(['compress', input, '-o', out, '--allow-uncompressed']);
    expect(allowed.code).toBe(0);
    expect(existsSync(out)).toBe(true);
    // and the file it wrote still gives the original back
    const back = join(dir, 'back.safetensors');
    expect((await cli(['decompress', out, '-o', back])).code).toBe(0);
    expect(sameBytes(input, back)).toBe(true);
  });

  it('inspect describes a plain safetensors file and what compress would do', async () => {
    const r = await cli(['inspect', MODEL]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('plain safetensors, not compressed');
    expect(r.stdout).toMatch(/inferzip compress would make 6 DFloat11 units of 259328 BF16 weights/);
    const j = await cli(['inspect', MODEL, '--json']);
    expect(JSON.parse(j.stdout)).toMatchObject({ format: 'safetensors', plan: { units: 6, compressibleWeights: 259_328 } });
    const f32 = await cli(['inspect', f32Model(tempDir('cli-safety'))]);
    expect(f32.stdout).toMatch(/nothing here to compress/);
  });
});

describe('CLI: help', () => {
  it('`inferzip <command> --help` prints that command’s own help', async () => {
    const texts = new Set<string>();
    for (const cmd of COMMANDS) {
      const r = await cli([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: inferzip ${cmd} `));
      texts.add(r.stdout);
    }
    expect(texts.size).toBe(COMMANDS.length);
    expect((await cli(['compress', '--help'])).stdout).toContain('--force');
    expect((await cli(['--help'])).stdout).toMatch(/Run 'inferzip <command> --help'/);
  });
});

describe('CLI: progress', () => {
  const p = (unitsDone: number, bytesDone: number): ModelProgress => ({
    phase: 'compress',
    unitsDone,
    unitsTotal: 12,
    bytesDone,
    bytesTotal: 123_456_789,
  });

  it('the terminal bar keeps one width while the numbers grow', () => {
    let out = '';
    const stream = { write: (s: string) => ((out += s), true), columns: 100 } as unknown as NodeJS.WriteStream;
    const bar = progressBar(stream, 'compress');
    bar.update(p(0, 0)); // "0.0 MB", "0/12 units": the shortest numbers
    const first = out;
    out = '';
    bar.update(p(12, 123_456_789)); // throttled (within 100 ms): not drawn
    expect(out).toBe('');
    bar.done(); // draws the last state: "123.5 MB", "12/12 units"
    expect(out).toMatch(/\[#+\] 100%/);
    expect(out.endsWith('\n')).toBe(true);
    expect(out.length - 1).toBe(first.length);
  });

  it('--progress on a pipe writes one plain line per finished unit, no carriage returns', async () => {
    let t = 0;
    let out = '';
    const lines = progressLines({ write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream, 'compress', () => t);
    for (let u = 0; u <= 12; u++) {
      lines.update(p(u, u * 1e6));
      lines.update(p(u, u * 1e6 + 10)); // same unit: no new line
      t += 100;
    }
    lines.done();
    const got = out.trimEnd().split('\n');
    // one line as each unit count is first seen (0..12), then done() adds the final state
    expect(got).toHaveLength(14);
    for (let u = 0; u <= 12; u++) expect(got[u]).toMatch(new RegExp(`^compress: unit ${u}/12 `));
    expect(out).not.toContain('\r');

    const r = await cli(['compress', MODEL, '-o', join(tempDir('cli-safety'), 'p.safetensors'), '--progress']);
    expect(r.code).toBe(0);
    expect(
      r.stderr
        .trimEnd()
        .split('\n')
        .filter((l) => /^compress: unit \d+\/6 /.test(l)).length,
    ).toBeGreaterThanOrEqual(6);
    const quiet = await cli(['compress', MODEL, '-o', join(tempDir('cli-safety'), 'q.safetensors')]);
    expect(quiet.stderr).toBe(''); // a pipe without --progress stays silent
  });
});
