// The addon's CRC-32 (used by every integrity check) against Node's zlib.crc32, on each
// implementation this CPU offers: checksums land in files, so they must stay zlib's.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { backend, InferzipError } from '../../lib/index.js';
import { crc32, crc32Hex } from '../../lib/checksum.js';

describe('crc32', () => {
  it('matches zlib on every length to 1100 bytes, unaligned, continued, and on 9 MB', () => {
    const buf = randomBytes(9 << 20);
    for (let n = 0; n <= 1100; n++) {
      for (const off of [0, 3]) {
        const view = buf.subarray(off, off + n);
        expect(crc32(view)).toBe(zlibCrc32(view));
        expect(crc32(view, 0xdeadbeef)).toBe(zlibCrc32(view, 0xdeadbeef));
      }
    }
    expect(crc32(buf)).toBe(zlibCrc32(buf));
    expect(crc32(buf.subarray(5000), crc32(buf.subarray(0, 5000)))).toBe(zlibCrc32(buf));
    expect(crc32Hex(Buffer.from('123456789'))).toBe('cbf43926');
    // any typed array is read as its bytes
    const f = new Float32Array([1.5, -2, 3e7]);
    expect(crc32(f)).toBe(zlibCrc32(new Uint8Array(f.buffer)));
  });

  it('reports which implementation runs, and each one INFERZIP_SIMD allows gives zlib’s value', () => {
    expect(['vpclmulqdq', 'pclmulqdq', 'portable']).toContain(backend().crc32);
    const script = `
      import('./lib/checksum.ts').then(async ({ crc32 }) => {
        const { backend } = await import('./lib/index.ts');
        const { crc32: z } = await import('node:zlib');
        const b = Buffer.alloc(300007);
        for (let i = 0; i < b.length; i++) b[i] = (i * 2654435761) >>> 24;
        const ok = [0, 1, 63, 64, 255, 256, 4096, b.length].every((n) => crc32(b.subarray(0, n), 7) === z(b.subarray(0, n), 7));
        console.log(JSON.stringify({ impl: backend().crc32, ok }));
      })`;
    const seen = new Set<string>();
    for (const simd of ['portable', 'avx2', '']) {
      const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], {
        env: { ...process.env, INFERZIP_SIMD: simd },
        encoding: 'utf8',
      });
      const r = JSON.parse(out.trim().split('\n').pop()!) as { impl: string; ok: boolean };
      expect(r.ok).toBe(true);
      if (simd === 'portable') expect(r.impl).toBe('portable');
      seen.add(r.impl);
    }
    expect(seen.has('portable')).toBe(true);
  });

  it('rejects what is not a typed array, and a bad starting value', () => {
    for (const bad of [() => crc32('abc' as never), () => crc32(new Uint8Array(1), -1), () => crc32(new Uint8Array(1), 2 ** 32)]) {
      expect(bad).toThrow(InferzipError);
      expect(bad).toThrow(/INVALID_ARGUMENT|must be/);
    }
  });
});
