/**
 * A full disk: every file-writing entry point gives IO_ERROR naming the output, leaves no
 * temporary file behind and leaves an existing output untouched. Needs a small filesystem,
 * made with `mount -t tmpfs` (root); elsewhere the tests are skipped and say why.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InferzipError } from '../../lib/errors.js';
import { compressModel, decompressModel } from '../../lib/model/index.js';
import { writeSafetensors } from '../../lib/safetensors/index.js';
import { tensor } from '../../lib/tensor.js';
import { MODEL, cleanupTempDirs, tempDir } from '../model/helpers.js';

/** A 96 KiB tmpfs, or why there is none. */
function mountTiny(): { dir: string } | { why: string } {
  const dir = mkdtempSync(join(tmpdir(), 'inferzip-full-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96k', 'tmpfs', dir], { stdio: 'pipe' });
    return { dir };
  } catch (err) {
    rmdirSync(dir);
    return { why: `cannot mount a small tmpfs here (${(err as Error).message.split('\n')[0]}): needs root` };
  }
}

const tiny = mountTiny();
const full = 'dir' in tiny ? tiny.dir : '';
if ('why' in tiny) console.warn(`[enospc.test] skipped: ${tiny.why}`);

let packed: string;
beforeAll(async () => {
  if (!full) return;
  packed = join(tempDir('enospc'), 'stories.df11.safetensors');
  await compressModel(MODEL, packed);
});
afterAll(() => {
  cleanupTempDirs();
  if (!full) return;
  execFileSync('umount', [full]);
  rmdirSync(full);
});

async function ioErrorOf(run: () => Promise<unknown>): Promise<InferzipError> {
  try {
    await run();
  } catch (err) {
    expect(err).toBeInstanceOf(InferzipError);
    return err as InferzipError;
  }
  throw new Error('expected the write to fail on a full filesystem');
}

describe.skipIf(!full)('a full disk', () => {
  it('compressModel: IO_ERROR naming the output, no temporary left, the old output intact', async () => {
    const out = join(full, 'model.df11.safetensors');
    writeFileSync(out, 'previous output');
    const e = await ioErrorOf(() => compressModel(MODEL, out));
    expect(e.code).toBe('IO_ERROR');
    expect(e.message).toContain(full);
    expect(e.message).toMatch(/ENOSPC|no space/i);
    expect(readdirSync(full)).toEqual(['model.df11.safetensors']);
    expect(readFileSync(out, 'utf8')).toBe('previous output');
  });

  it('decompressModel: the same', async () => {
    const out = join(full, 'restored.safetensors');
    const e = await ioErrorOf(() => decompressModel(packed, out));
    expect(e.code).toBe('IO_ERROR');
    expect(e.message).toContain(full);
    expect(readdirSync(full).filter((f) => f !== 'model.df11.safetensors')).toEqual([]);
  });

  it('writeSafetensors: the same', async () => {
    const out = join(full, 'big.safetensors');
    const e = await ioErrorOf(() => writeSafetensors(out, { w: tensor('f32', [64, 1024]) }));
    expect(e.code).toBe('IO_ERROR');
    expect(e.message).toContain(full);
    expect(readdirSync(full).filter((f) => f !== 'model.df11.safetensors')).toEqual([]);
  });
});
