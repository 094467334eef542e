// Guards the attention quality measured on real stories260K activations (bench/kv-quality.ts ->
// bench/results/kv-quality.md). Bounds = measured figures with ~25% margin on the error; they
// must never be loosened to let a change pass.
import { beforeAll, describe, expect, it } from 'vitest';

import { setDevice } from '../../lib/index.js';

import { QUALITY_SCHEMES, qualityAllQuantized, qualityStreaming } from '../../bench/kv-quality-lib.js';
import { collectStoriesKV, type LayerKV } from '../../bench/stories-kv.js';

// measured 2026-11-23 (T = 384, seed 1): [all-quantized relErr, cosine, streaming relErr, cosine]
const MEASURED: Record<string, [number, number, number, number]> = {
  'kivi 2-bit': [0.4664, 0.8931, 0.4284, 0.91559],
  'kivi 4-bit': [0.0993, 0.9944, 0.0781, 0.99629],
  'vidkv (1.5-bit K, 1.58-bit V)': [0.526, 0.84932, 0.4434, 0.90231],
  'zipcache (2/4-bit)': [0.119, 0.99081, 0.1155, 0.99213],
  'fp8 e4m3': [0.0568, 0.99826, 0.0524, 0.99861],
  'fp8 e5m2': [0.11, 0.99332, 0.1017, 0.99498],
};

// INFERZIP_TEST_TRIM=1 (CI's emulated-GPU runs, where one all-quantized pass over every layer
// takes ~10 s): only kivi 4-bit is measured on the default device, the other schemes on the CPU
// backend. Every CUDA-vs-CPU comparison (cuda.test.ts) still runs on the default device.
const trim = process.env.INFERZIP_TEST_TRIM === '1';
function onDevice<T>(cfg: (typeof QUALITY_SCHEMES)[number], f: () => T): T {
  if (!trim || cfg.name === 'kivi 4-bit') return f();
  setDevice('cpu');
  try {
    return f();
  } finally {
    setDevice('auto');
  }
}
// Deterministic, so each scheme's all-quantized pass runs once for both tests that use it.
const allQuantizedDone = new Map<string, ReturnType<typeof qualityAllQuantized>>();
function allQuantized(cfg: (typeof QUALITY_SCHEMES)[number]) {
  if (!allQuantizedDone.has(cfg.name))
    allQuantizedDone.set(
      cfg.name,
      onDevice(cfg, () => qualityAllQuantized(layers, cfg)),
    );
  return allQuantizedDone.get(cfg.name)!;
}

let layers: LayerKV[];
beforeAll(() => {
  layers = collectStoriesKV(384, 1).layers;
});

describe.each(QUALITY_SCHEMES)('quality on real activations: $name', (cfg) => {
  const [aErr, aCos, sErr, sCos] = MEASURED[cfg.name]!;
  it('every token quantized', () => {
    const q = allQuantized(cfg);
    expect(q.relErr).toBeLessThan(aErr * 1.25);
    expect(q.cosine).toBeGreaterThan(1 - (1 - aCos) * 1.5);
  });
  it('streaming with the residual window', () => {
    const q = onDevice(cfg, () => qualityStreaming(layers, cfg, 64));
    expect(q.relErr).toBeLessThan(sErr * 1.25);
    expect(q.cosine).toBeGreaterThan(1 - (1 - sCos) * 1.5);
  });
});

it('more bits, less error (kivi 4 < zipcache 2/4 < kivi 2; fp8 e4m3 < e5m2)', () => {
  const err = (name: string) => allQuantized(QUALITY_SCHEMES.find((s) => s.name === name)!).relErr;
  expect(err('kivi 4-bit')).toBeLessThan(err('zipcache (2/4-bit)'));
  expect(err('zipcache (2/4-bit)')).toBeLessThan(err('kivi 2-bit'));
  expect(err('fp8 e4m3')).toBeLessThan(err('fp8 e5m2'));
});
