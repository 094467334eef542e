/**
 * Files and resources: named pipes and other non-regular files are refused before a byte is read
 * (they used to block forever), an output that is the same file as the input is refused by
 * device + inode, and a reader dropped without close() gives its descriptor back on collection.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, linkSync, mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { InferzipError } from '../../lib/errors.js';
import { CompressedModel, compressModel, decompressModel, inspectModel, verifyModel } from '../../lib/model/index.js';
import { SafetensorsFile, openSafetensors } from '../../lib/safetensors/index.js';
import { MODEL, MODEL_DIR, cleanupTempDirs, runCli, tempDir } from '../model/helpers.js';

let dir: string;
let packed: string;
let fifo: string;

beforeAll(async () => {
  dir = tempDir('files');
  packed = join(dir, 'stories.df11.safetensors');
  await compressModel(MODEL, packed);
  fifo = join(dir, 'pipe.safetensors');
  execFileSync('mkfifo', [fifo]);
});
afterAll(cleanupTempDirs);

async function errorOf(run: () => unknown): Promise<InferzipError> {
  try {
    await run();
  } catch (err) {
    expect(err).toBeInstanceOf(InferzipError);
    return err as InferzipError;
  }
  throw new Error('expected an InferzipError');
}

describe('non-regular files are refused before reading', () => {
  const entries: [string, (p: string) => unknown][] = [
    ['SafetensorsFile.open', (p) => SafetensorsFile.open(p)],
    ['openSafetensors', (p) => openSafetensors(p)],
    ['CompressedModel.open', (p) => CompressedModel.open(p, { device: 'cpu' })],
    ['inspectModel', (p) => inspectModel(p)],
    ['verifyModel', (p) => verifyModel(p)],
    ['decompressModel', (p) => decompressModel(p, join(dir, 'never.safetensors'))],
    ['compressModel', (p) => compressModel(p, join(dir, 'never2.safetensors'))],
  ];
  it.each(entries)('%s on a named pipe gives INVALID_ARGUMENT naming it', async (_label, run) => {
    const e = await errorOf(() => run(fifo));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/named pipe/);
    expect(e.message).toContain(fifo);
  });

  it('a config.json or shard index that is a pipe is refused too', async () => {
    const model = join(dir, 'piped-config');
    mkdirSync(model);
    copyFileSync(MODEL, join(model, 'model.safetensors'));
    execFileSync('mkfifo', [join(model, 'model.safetensors.index.json')]);
    const e = await errorOf(() => openSafetensors(model));
    expect(e.message).toMatch(/named pipe/);
  });

  it('a device file is refused', async () => {
    const e = await errorOf(() => SafetensorsFile.open('/dev/zero'));
    expect(e.message).toMatch(/a device/);
  });

  it('the CLI exits with an error for inspect and verify on a pipe', async () => {
    for (const cmd of ['inspect', 'verify']) {
      const r = await runCli([cmd, fifo]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/named pipe/);
    }
  });
});

describe('an output that is the same file as an input is refused', () => {
  it('decompressModel(x, x), through a hard link and through a symlink; the input is left intact', async () => {
    const copy = join(dir, 'self.safetensors');
    copyFileSync(packed, copy);
    const before = readFileSync(copy);
    const hard = join(dir, 'hard.safetensors');
    linkSync(copy, hard);
    const soft = join(dir, 'soft.safetensors');
    symlinkSync(copy, soft);
    for (const out of [copy, hard, soft, `${dir}/./self.safetensors`]) {
      const e = await errorOf(() => decompressModel(copy, out));
      expect(e.code).toBe('INVALID_ARGUMENT');
      expect(e.message).toMatch(/same file as the input/);
    }
    expect(Buffer.compare(readFileSync(copy), before)).toBe(0);
  });

  it('compressModel onto its own input through a hard link', async () => {
    const src = join(dir, 'src');
    mkdirSync(src);
    copyFileSync(MODEL, join(src, 'model.safetensors'));
    copyFileSync(join(MODEL_DIR, 'config.json'), join(src, 'config.json'));
    linkSync(join(src, 'model.safetensors'), join(dir, 'alias.safetensors'));
    const e = await errorOf(() => compressModel(join(src, 'model.safetensors'), join(dir, 'alias.safetensors')));
    expect(e.message).toMatch(/same file as the input/);
  });
});

describe('readers dropped without dispose()', () => {
  it('close their file descriptors when collected', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const before = fds();
    (() => {
      for (let i = 0; i < 64; i++) SafetensorsFile.open(packed);
    })();
    expect(fds()).toBeGreaterThanOrEqual(before + 64);
    for (let i = 0; i < 200 && fds() > before + 8; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(fds()).toBeLessThan(before + 8);
  });

  it('a dropped CompressedModel gives its descriptor back too', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const before = fds();
    // Held while they open (a GC between the awaits could otherwise collect the first ones),
    // then dropped all at once.
    const held: CompressedModel[] = [];
    for (let i = 0; i < 16; i++) held.push(await CompressedModel.open(packed, { device: 'cpu' }));
    expect(fds()).toBeGreaterThanOrEqual(before + 16);
    held.length = 0;
    for (let i = 0; i < 200 && fds() > before + 4; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(fds()).toBeLessThan(before + 4);
  });
});
