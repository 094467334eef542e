/**
 * Errors that used to escape as plain Node errors (RangeError, AbortError DOMException, EISDIR,
 * the addon's plain Errors) are InferzipErrors with a code and the path or call they concern.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { InferzipError } from '../../lib/errors.js';
import { DeviceTensor } from '../../lib/device-tensor.js';
import { compressModel, decompressModel } from '../../lib/model/index.js';
import { writeSafetensors } from '../../lib/safetensors/index.js';
import { mergeTokens } from '../../lib/tokens/index.js';
import { tensor } from '../../lib/tensor.js';
import { MODEL, cleanupTempDirs, tempDir } from '../model/helpers.js';

afterAll(cleanupTempDirs);

async function errorOf(run: () => unknown): Promise<InferzipError> {
  try {
    await run();
  } catch (err) {
    expect(err, String(err)).toBeInstanceOf(InferzipError);
    return err as InferzipError;
  }
  throw new Error('expected an error');
}

describe('typed errors instead of plain Node errors', () => {
  it("tensor('f32', [1e10]) is OUT_OF_MEMORY, not a RangeError", async () => {
    const e = await errorOf(() => tensor('f32', [1e10]));
    expect(e.code).toBe('OUT_OF_MEMORY');
    expect(e.message).toContain('10000000000');
  });

  it('an aborted compressModel / decompressModel is ABORTED (the AbortError is the cause)', async () => {
    const dir = tempDir('abort');
    const ac = new AbortController();
    ac.abort();
    const e = await errorOf(() => compressModel(MODEL, join(dir, 'x.safetensors'), { signal: ac.signal }));
    expect(e.code).toBe('ABORTED');
    expect((e.cause as Error).name).toBe('AbortError');
    const packed = join(dir, 'p.safetensors');
    await compressModel(MODEL, packed);
    const ac2 = new AbortController();
    const p = decompressModel(packed, join(dir, 'out.safetensors'), { signal: ac2.signal, onProgress: () => ac2.abort() });
    expect((await errorOf(() => p)).code).toBe('ABORTED');
  });

  it('writing onto a directory or a FIFO is refused before anything is replaced', async () => {
    const dir = tempDir('special-target');
    const sub = join(dir, 'sub.safetensors');
    mkdirSync(sub);
    const e = await errorOf(() => writeSafetensors(sub, [{ name: 'a', dtype: 'U8', shape: [1], data: new Uint8Array(1) }]));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/directory/);
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const packed = join(dir, 'p.safetensors');
    await compressModel(MODEL, packed);
    const f = await errorOf(() => decompressModel(packed, fifo));
    expect(f.message).toMatch(/named pipe/);
    expect(statSync(fifo).isFIFO()).toBe(true);
  });

  it('NativeBuffer methods throw InferzipError (sync and async)', async () => {
    using t = DeviceTensor.empty('f32', [4], { device: 'cpu' });
    const e = await errorOf(() => t.buffer.download({ destination: new Uint8Array(64), offset: 0 }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/NativeBuffer.download/);
    const a = await errorOf(() => t.buffer.downloadAsync({ destination: new Uint8Array(64), offset: 0 }));
    expect(a.code).toBe('INVALID_ARGUMENT');
  });

  it('so do NativeBuffers the addon creates itself (a ToMe output on a device)', async () => {
    using x = DeviceTensor.fromSync(
      tensor(
        'f32',
        [8, 4],
        Float32Array.from({ length: 32 }, (_, i) => Math.sin(i)),
      ),
      { device: 'cpu' },
    );
    const merged = await mergeTokens(x, { r: 2 });
    using out = merged.tokens;
    using sizes = merged.sizes;
    expect(sizes.shape).toEqual([6]);
    const e = await errorOf(() => out.buffer.download({ destination: new Uint8Array(1024), offset: 0 }));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/NativeBuffer.download/);
    const a = await errorOf(() => out.buffer.uploadAsync({ source: new Uint8Array(1024), offset: 0 }));
    expect(a.code).toBe('INVALID_ARGUMENT');
  });
});

describe('tensors larger than one typed array', () => {
  it('reading a 4 GiB + 8 byte tensor (sparse file) is OUT_OF_MEMORY naming the file, not a RangeError', async () => {
    const { openSync, writeSync, ftruncateSync, closeSync } = await import('node:fs');
    const dir = tempDir('huge');
    const path = join(dir, 'huge.safetensors');
    const bytes = 2 ** 32 + 8;
    let header = JSON.stringify({ big: { dtype: 'U8', shape: [bytes], data_offsets: [0, bytes] } });
    while (header.length % 8) header += ' ';
    const fd = openSync(path, 'w');
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(header.length));
    writeSync(fd, prefix);
    writeSync(fd, header);
    ftruncateSync(fd, 8 + header.length + bytes); // sparse: no disk used
    closeSync(fd);
    const { SafetensorsFile } = await import('../../lib/safetensors/index.js');
    using f = SafetensorsFile.open(path);
    const e = await errorOf(() => f.readBytesSync('big'));
    expect(e.code).toBe('OUT_OF_MEMORY');
    expect(e.message).toContain(path);
    expect((await errorOf(() => f.readBytes('big'))).code).toBe('OUT_OF_MEMORY');
  });
});
