import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

import { InferzipError, backend, setDevice, setThreads } from '../../lib/index.js';
import { native } from '../../lib/native.js';

const hasCuda = native().backendInfo().cudaAvailable;

/** Runs a snippet in a fresh Node process (backend choice is made once per process). */
function runChild(code: string, env: Record<string, string>): { ok: boolean; out: string } {
  try {
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      env: { ...process.env, ...env },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { ok: true, out };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

const SNIPPET = `
import { backend } from '${new URL('../../lib/index.ts', import.meta.url).pathname}';
try { console.log(JSON.stringify(backend())); }
catch (e) { console.log(JSON.stringify({ error: e.code, message: e.message })); }`;

describe('backend', () => {
  it('loads and reports a backend, the CUDA build flag and a reason', () => {
    const b = backend();
    expect(['cpu', 'cuda']).toContain(b.name);
    expect(typeof b.cudaCompiled).toBe('boolean');
    expect(b.reason.length).toBeGreaterThan(0);
    expect(b.cpuThreads).toBeGreaterThanOrEqual(1);
    if (!hasCuda) {
      expect(b.name).toBe('cpu');
      expect(b.devices).toEqual([]);
      expect(b.reason).toMatch(/^CPU: /);
    }
  });

  it.skipIf(hasCuda)('falls back to the CPU without a GPU', () => {
    const b = backend();
    expect(b.name).toBe('cpu');
    expect(b.devices).toEqual([]);
    if (b.cudaCompiled) expect(b.reason).toMatch(/driver|GPU/);
    else expect(b.reason).toMatch(/no CUDA backend/);
  });

  // CI sets INFERZIP_EXPECT_CUDA_COMPILED=1 for the build made with nvcc present: that addon
  // must hold the CUDA backend, load on this GPU-less machine and say why it uses the CPU.
  const expectCuda = process.env.INFERZIP_EXPECT_CUDA_COMPILED === '1';
  it.runIf(expectCuda && !hasCuda)('loads with CUDA compiled in and no GPU, and says why it uses the CPU', () => {
    const b = backend();
    expect(b.cudaCompiled).toBe(true);
    expect(b.name).toBe('cpu');
    expect(b.reason).toMatch(/^CPU: .*(driver|GPU)/);
  });

  // The emulated device (INFERZIP_CUDA=emulate builds) answers like a GPU; it reports as many
  // devices as INFERZIP_CUDA_EMULATE_DEVICES says (0: none, like a machine without a GPU).
  const emulated = /emulator/.test(native().backendInfo().devices[0]?.name ?? '');
  it.runIf(emulated)('the emulated CUDA device answers like a GPU, with INFERZIP_CUDA_EMULATE_DEVICES devices', () => {
    const b = backend();
    expect(b.name).toBe('cuda');
    expect(b.devices[0]!.name).toBe('inferzip CUDA emulator');
    const two = JSON.parse(runChild(SNIPPET, { INFERZIP_CUDA_EMULATE_DEVICES: '2' }).out.trim().split('\n').pop()!);
    expect(two.name).toBe('cuda');
    expect(two.devices.map((d: { name: string }) => d.name)).toEqual(['inferzip CUDA emulator', 'inferzip CUDA emulator']);
    const none = JSON.parse(runChild(SNIPPET, { INFERZIP_CUDA_EMULATE_DEVICES: '0' }).out.trim().split('\n').pop()!);
    expect(none.name).toBe('cpu');
    expect(none.reason).toMatch(/no GPU/);
  });

  it('INFERZIP_DEVICE=cpu forces the CPU', () => {
    const r = runChild(SNIPPET, { INFERZIP_DEVICE: 'cpu' });
    expect(r.ok).toBe(true);
    expect(JSON.parse(r.out.trim().split('\n').pop()!).name).toBe('cpu');
  });

  it.skipIf(hasCuda)('INFERZIP_DEVICE=cuda without a device is a NO_DEVICE error', () => {
    const r = runChild(SNIPPET, { INFERZIP_DEVICE: 'cuda' });
    const res = JSON.parse(r.out.trim().split('\n').pop()!);
    expect(res.error).toBe('NO_DEVICE');
    expect(res.message).toMatch(/INFERZIP_DEVICE=cuda/);
  });

  it('an unknown INFERZIP_DEVICE is INVALID_ARGUMENT', () => {
    const r = runChild(SNIPPET, { INFERZIP_DEVICE: 'tpu' });
    expect(JSON.parse(r.out.trim().split('\n').pop()!).error).toBe('INVALID_ARGUMENT');
  });

  it('setDevice validates and switches', () => {
    expect(setDevice('cpu')).toBe('cpu');
    expect(backend().name).toBe('cpu');
    expect(() => setDevice('gpu' as never)).toThrow(InferzipError);
    if (!hasCuda) {
      try {
        setDevice('cuda');
        expect.unreachable();
      } catch (e) {
        expect((e as InferzipError).code).toBe('NO_DEVICE');
      }
    }
    setDevice('auto');
  });

  it('setThreads validates its argument', () => {
    const before = backend().cpuThreads;
    expect(setThreads(1)).toBe(1);
    expect(setThreads(0)).toBeGreaterThanOrEqual(1);
    expect(() => setThreads(-1)).toThrow(/threads/);
    expect(() => setThreads(1.5)).toThrow(InferzipError);
    expect(backend().cpuThreads).toBe(before);
  });
});
