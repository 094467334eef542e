// The portable (non-AVX2) rebuild loop of the CPU decoder must give the same words: this
// file's process runs with INFERZIP_SIMD=portable, set before the addon is first used.
process.env.INFERZIP_SIMD = 'portable';

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { backend } from '../../lib/backend.js';

import { compressSync, decompressSync, simulateKernelDecode, unitFromSafetensorsEntries } from '../../lib/df11/index.js';
import { readSafetensorsBuffer } from '../../lib/safetensors/index.js';
import { tensor } from '../../lib/tensor.js';
import { concatU16, firstMismatch, gaussianBf16 } from './helpers.js';

const fixture = (p: string) => fileURLToPath(new URL(`../../fixtures/${p}`, import.meta.url));

describe('df11 decoder, portable loops', () => {
  it('run with SIMD off', () => {
    expect(backend().simd).toBe('portable');
  });

  it('round-trips every codable BF16 pattern, shuffled over many blocks, on 1 and 2 threads', () => {
    const codable: number[] = [];
    for (let w = 0; w < 65536; w++) if (((w >> 7) & 0xff) < 240) codable.push(w);
    const big = new Uint16Array(codable.length * 4);
    for (let i = 0; i < big.length; i++) big[i] = codable[(i * 7919) % codable.length]!;
    const unit = compressSync({ big: tensor('bf16', [big.length], big) });
    for (const threads of [1, 2]) expect(firstMismatch(decompressSync(unit, { threads }).big!.data, big)).toBe(-1);
    expect(firstMismatch(simulateKernelDecode(unit), big)).toBe(-1);
  });

  it('decodes the reference encoder unit (non-canonical codes, three levels)', () => {
    const file = readSafetensorsBuffer(new Uint8Array(readFileSync(fixture('dfloat11-unit.safetensors'))));
    const expected = concatU16([file.readSync('original.a').data as Uint16Array, file.readSync('original.b').data as Uint16Array]);
    const unit = unitFromSafetensorsEntries(file, 'unit');
    const out = new Uint16Array(unit.totalElements);
    decompressSync(unit, { out, threads: 1 });
    expect(firstMismatch(out, expected)).toBe(-1);
  });

  it('round-trips Gaussian weights at odd sizes', () => {
    for (const n of [1, 4097, 123457]) {
      const w = gaussianBf16([n], 0.02, n);
      const unit = compressSync({ w });
      expect(firstMismatch(decompressSync(unit, { threads: 1 }).w!.data, w.data)).toBe(-1);
    }
  });
});
