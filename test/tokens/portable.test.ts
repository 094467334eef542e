// The token passes' reference comparisons again with the portable (non-AVX2) loops: this
// file's process runs with INFERZIP_SIMD=portable. The suites are imported dynamically, after
// the variable is set, because some of them ask the addon about CUDA while being collected.
import { describe, expect, it } from 'vitest';

process.env.INFERZIP_SIMD = 'portable';
const { backend } = await import('../../lib/backend.js');
await import('./prune-reference.test.js');
await import('./temporal-reference.test.js');
await import('./tome.test.js');

describe('portable token loops', () => {
  it('are the ones running in this file', () => {
    expect(backend().simd).toBe('portable');
  });
});
