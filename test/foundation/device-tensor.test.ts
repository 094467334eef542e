import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

import { DeviceTensor, backend, tensor } from '../../lib/index.js';
import { nativeCall } from '../../lib/errors.js';
import { native } from '../../lib/native.js';
import { codeOf, codeOfAsync, errorOf } from '../errors.js';

const INDEX = new URL('../../lib/index.ts', import.meta.url).pathname;

describe('DeviceTensor', () => {
  it('uploads and downloads, sync and async', async () => {
    const host = tensor('f32', [2, 3], new Float32Array([1, 2, 3, 4, 5, 6]));
    const a = DeviceTensor.fromSync(host);
    expect(a.device).toBe(backend().device); // the default device: 'cuda:0' where a (real or emulated) GPU answers
    expect(a.byteLength).toBe(24);
    expect(Array.from(a.downloadSync().data)).toEqual([1, 2, 3, 4, 5, 6]);
    const b = await DeviceTensor.from(tensor('bf16', [4], new Uint16Array([1, 2, 0x8000, 0xffff])), { device: 'cpu' });
    expect(Array.from((await b.download()).data)).toEqual([1, 2, 0x8000, 0xffff]);
    await b.upload(tensor('bf16', [4], new Uint16Array([9, 9, 9, 9])));
    expect(Array.from(b.downloadSync().data)).toEqual([9, 9, 9, 9]);
    a.dispose();
    b.dispose();
  });

  it('zero-fills on request and handles empty tensors', () => {
    const z = DeviceTensor.empty('i32', [3], { zero: true });
    expect(Array.from(z.downloadSync().data)).toEqual([0, 0, 0]);
    const e = DeviceTensor.fromSync(tensor('f32', [0, 4]));
    expect(e.size).toBe(0);
    expect(e.downloadSync().data).toHaveLength(0);
    z.dispose();
    e.dispose();
  });

  it('is DISPOSED after dispose(), and dispose twice is harmless', async () => {
    const t = DeviceTensor.fromSync(tensor('u8', [4]));
    t.dispose();
    t.dispose();
    expect(t.disposed).toBe(true);
    expect(codeOf(() => t.downloadSync())).toBe('DISPOSED');
    expect(await codeOfAsync(() => t.download())).toBe('DISPOSED');
    expect(codeOf(() => t.uploadSync(tensor('u8', [4])))).toBe('DISPOSED');
    expect(codeOf(() => t.buffer)).toBe('DISPOSED');
  });

  it('supports `using` declarations', () => {
    let escaped: DeviceTensor | undefined;
    {
      using t = DeviceTensor.fromSync(tensor('f32', [1]));
      escaped = t;
      expect(t.disposed).toBe(false);
    }
    expect(escaped.disposed).toBe(true);
  });

  it('rejects wrong dtypes and shapes with typed errors', () => {
    const t = DeviceTensor.fromSync(tensor('f32', [2, 2]));
    expect(codeOf(() => t.uploadSync(tensor('f32', [4]) as never))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => t.uploadSync(tensor('i32', [2, 2]) as never))).toBe('DTYPE_MISMATCH');
    expect(codeOf(() => t.uploadSync({ dtype: 'f32', shape: [2, 2], data: new Float32Array(3) } as never))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => DeviceTensor.empty('f32', [-2]))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => DeviceTensor.empty('f32', [2], { device: 'tpu' as never }))).toBe('INVALID_ARGUMENT');
    t.dispose();
  });

  it('refuses absurd sizes with a clear INVALID_ARGUMENT instead of trying', () => {
    const e = errorOf(() => DeviceTensor.empty('f32', [2 ** 26, 2 ** 26]));
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.message).toMatch(/f32\[67108864, 67108864\] needs 18014398509481984 bytes/);
    // The addon checks again on its own (never trust the caller).
    expect(codeOf(() => nativeCall(() => new (native().NativeBuffer)({ device: 'cpu', bytes: 2 ** 53 })))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => nativeCall(() => new (native().NativeBuffer)({ device: 'cpu', bytes: -1 })))).toBe('INVALID_ARGUMENT');
  });

  // A real failed allocation, made deterministic by capping the child's address space
  // (overcommit would otherwise let a lazy allocation "succeed" here).
  it.skipIf(process.platform !== 'linux')('reports a failed host allocation as OUT_OF_MEMORY', () => {
    const script = `
      import { DeviceTensor } from '${INDEX}';
      try { DeviceTensor.empty('u8', [64 * 2 ** 30]); console.log('allocated'); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
    const out = execFileSync(
      'bash',
      ['-c', 'ulimit -v 33554432 && exec "$0" --import tsx --input-type=module -e "$1"', process.execPath, script],
      {
        encoding: 'utf8',
        env: { ...process.env, INFERZIP_DEVICE: 'cpu' },
      },
    );
    const res = JSON.parse(out.trim().split('\n').pop()!) as { code: string; message: string };
    expect(res.code).toBe('OUT_OF_MEMORY');
    expect(res.message).toMatch(/68719476736 bytes/);
  });

  it.skipIf(native().backendInfo().cudaAvailable)('CUDA tensors without a GPU are NO_DEVICE', () => {
    expect(codeOf(() => DeviceTensor.empty('f32', [4], { device: 'cuda' }))).toBe('NO_DEVICE');
  });

  it('raw buffer copies are bounds-checked', () => {
    const a = new (native().NativeBuffer)({ device: 'cpu', bytes: 8 });
    const b = new (native().NativeBuffer)({ device: 'cpu', bytes: 4 });
    expect(() => a.upload({ source: new Uint8Array(9), offset: 0 })).toThrow(/outside/);
    expect(() => a.download({ destination: new Uint8Array(4), offset: 6 })).toThrow(/outside/);
    expect(() => b.copyFrom({ source: a, dstOffset: 0, srcOffset: 6, bytes: 4 })).toThrow(/outside/);
    expect(() => a.upload({ source: 'nope' as never, offset: 0 })).toThrow(/TypedArray/);
    a.dispose();
    b.dispose();
  });

  it('keeps memory alive for an async copy even if the tensor is disposed meanwhile', async () => {
    const src = Float32Array.from({ length: 1 << 16 }, (_, i) => i);
    const t = DeviceTensor.fromSync(tensor('f32', [src.length], src));
    const pending = t.download();
    t.dispose(); // the native job holds its own reference to the memory
    const back = await pending;
    expect(back.data[12345]).toBe(12345);
    expect(t.disposed).toBe(true);
    expect(await codeOfAsync(() => t.upload(tensor('f32', [src.length])))).toBe('DISPOSED');
  });

  // Run with --expose-gc in a child so the safety net really runs (vitest's workers have no gc).
  it('frees dropped tensors through the FinalizationRegistry (real GC)', () => {
    const script = `
      import { DeviceTensor, tensor } from '${INDEX}';
      const buffers = [];
      (() => { for (let i = 0; i < 20; i++) buffers.push(DeviceTensor.fromSync(tensor('f32', [1024])).buffer); })();
      for (let round = 0; round < 50 && !buffers.every((b) => b.disposed); round++) {
        globalThis.gc();
        await new Promise((r) => setTimeout(r, 20));
      }
      const freed = buffers.filter((b) => b.disposed).length;
      const t = DeviceTensor.fromSync(tensor('f32', [2], new Float32Array([3, 4])));
      console.log(JSON.stringify({ freed, after: Array.from(t.downloadSync().data) }));`;
    const out = execFileSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    const res = JSON.parse(out.trim().split('\n').pop()!) as { freed: number; after: number[] };
    expect(res.freed).toBe(20); // each dropped tensor's memory was released by the registry
    expect(res.after).toEqual([3, 4]);
  });
});
