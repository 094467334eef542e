/**
 * Temp files of atomic writes: removed when the process is interrupted, swept when a dead
 * process left them, and a sharded decompress that fails while publishing takes back what it
 * published (a reader never sees shards without their index, or a partial set).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { InferzipError } from '../../lib/errors.js';
import { compressModel, decompressModel } from '../../lib/model/index.js';
import { writeSafetensors } from '../../lib/safetensors/index.js';
import { ROOT, cleanupTempDirs, makeShardedCopy, tempDir } from '../model/helpers.js';

afterAll(cleanupTempDirs);

const temps = (dir: string): string[] => readdirSync(dir).filter((n) => n.endsWith('.tmp'));

function deadPid(): number {
  for (let pid = 4_000_000; ; pid--) {
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return pid;
    }
  }
}

describe('temp files', () => {
  it.each(['SIGINT', 'SIGTERM'] as const)(
    'are removed when a write is interrupted by %s, and the process still dies by the signal',
    async (signal) => {
      const dir = tempDir('tmp-signal');
      const script = join(dir, 'writer.ts');
      writeFileSync(
        script,
        `import { writeSafetensors } from ${JSON.stringify(join(ROOT, 'lib', 'safetensors', 'index.ts'))};
       void writeSafetensors(${JSON.stringify(join(dir, 'out.safetensors'))}, [
         { name: 'a', dtype: 'U8', shape: [4], data: new Uint8Array(4) },
         { name: 'b', dtype: 'U8', shape: [4], data: () => { console.log('ready'); return new Promise(() => setInterval(() => {}, 1000)); } },
       ]);`,
      );
      const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
      expect(temps(dir)).toHaveLength(1);
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, sig) => resolve(sig)));
      child.kill(signal);
      expect(await exited).toBe(signal);
      expect(temps(dir)).toEqual([]);
      expect(existsSync(join(dir, 'out.safetensors'))).toBe(false);
    },
  );

  it('of dead processes are swept when the same output is written next; live ones and other outputs are kept', async () => {
    const dir = tempDir('tmp-sweep');
    const out = join(dir, 'out.safetensors');
    const stale = `.out.safetensors.${deadPid()}.0123abcd.tmp`;
    const mine = `.out.safetensors.${process.pid}.89abcdef.tmp`;
    const other = `.other.safetensors.${deadPid()}.0123abcd.tmp`;
    for (const n of [stale, mine, other]) writeFileSync(join(dir, n), 'partial');
    await writeSafetensors(out, [{ name: 'a', dtype: 'U8', shape: [1], data: new Uint8Array(1) }]);
    expect(temps(dir).sort()).toEqual([mine, other].sort());
  });

  it('are removed when a loader fails', async () => {
    const dir = tempDir('tmp-error');
    await expect(
      writeSafetensors(join(dir, 'x.safetensors'), [
        {
          name: 'a',
          dtype: 'U8',
          shape: [1],
          data: () => {
            throw new Error('boom');
          },
        },
      ]),
    ).rejects.toBeInstanceOf(InferzipError);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('sharded decompress publishes all or nothing', () => {
  it('a failure while publishing the second shard removes the first and never publishes the index', async () => {
    const src = makeShardedCopy(tempDir('shard-src'));
    const packed = join(tempDir('shard-packed'), 'packed.safetensors');
    await compressModel(src, packed);
    const out = tempDir('shard-out');
    // the second shard's name is taken by a non-empty directory: its rename fails
    mkdirSync(join(out, 'model-00002-of-00002.safetensors'));
    writeFileSync(join(out, 'model-00002-of-00002.safetensors', 'keep'), 'x');
    const err = await decompressModel(packed, out).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferzipError);
    expect((err as InferzipError).message).toContain(out);
    expect(readdirSync(out)).toEqual(['model-00002-of-00002.safetensors']);
  });
});
