import { describe, expect, it } from 'vitest';

import { DeviceTensor, InferzipError, tensor } from '../../lib/index.js';
import { native } from '../../lib/native.js';

async function codeOfAsync(fn: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InferzipError);
    return (e as InferzipError).code;
  }
  return undefined;
}
function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InferzipError);
    return (e as InferzipError).code;
  }
  return undefined;
}

describe('DeviceTensor', () => {
  it('uploads and downloads, sync and async', async () => {
    const host = tensor('f32', [2, 3], new Float32Array([1, 2, 3, 4, 5, 6]));
    const a = DeviceTensor.fromSync(host);
    expect(a.device).toBe('cpu');
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

  it('refuses absurd sizes instead of crashing, and reports out-of-memory as a typed error', () => {
    expect(codeOf(() => DeviceTensor.empty('f32', [2 ** 26, 2 ** 26]))).toBe('INVALID_ARGUMENT');
    // 200 GiB is under the addon's sanity cap but far beyond this machine's memory.
    const code = codeOf(() => {
      const t = DeviceTensor.empty('u8', [200 * 2 ** 30], { zero: true });
      t.dispose();
    });
    expect(['OUT_OF_MEMORY', undefined]).toContain(code); // overcommit may let the (lazy) allocation succeed
  });

  it.skipIf(native().backendInfo().cudaAvailable)('CUDA tensors without a GPU are NO_DEVICE', () => {
    expect(codeOf(() => DeviceTensor.empty('f32', [4], { device: 'cuda' }))).toBe('NO_DEVICE');
  });

  it('raw buffer copies are bounds-checked', () => {
    const a = new (native().NativeBuffer)('cpu', 8);
    const b = new (native().NativeBuffer)('cpu', 4);
    expect(() => a.upload(new Uint8Array(9), 0)).toThrow(/outside/);
    expect(() => a.download(new Uint8Array(4), 6)).toThrow(/outside/);
    expect(() => b.copyFrom(a, 0, 6, 4)).toThrow(/outside/);
    expect(() => a.upload('nope' as never, 0)).toThrow(/TypedArray/);
    a.dispose();
    b.dispose();
  });

  it('frees dropped tensors through the FinalizationRegistry without crashing', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    for (let i = 0; i < 50; i++) DeviceTensor.fromSync(tensor('f32', [1024]));
    if (gc) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
      gc();
    }
    // Still usable afterwards.
    const t = DeviceTensor.fromSync(tensor('f32', [2], new Float32Array([3, 4])));
    expect(Array.from(t.downloadSync().data)).toEqual([3, 4]);
    t.dispose();
  });
});
