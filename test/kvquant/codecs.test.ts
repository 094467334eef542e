// Spec check vectors, run through the shared __host__ __device__ codecs the kernels use.
import { describe, expect, it } from 'vitest';

import { kvCodecs, quantizeKVSync, dequantizeKVSync } from '../../lib/kvquant/index.js';
import { tensor } from '../../lib/tensor.js';

describe('kv codecs: spec vectors', () => {
  it('packs 2-bit codes little-endian: [0,1,2,3] x4 -> 0xE4E4E4E4', () => {
    const codes = Uint32Array.from({ length: 16 }, (_, i) => i % 4);
    const words = kvCodecs.packCodes(codes, 2);
    expect(words.length).toBe(1);
    expect(words[0]).toBe(0xe4e4e4e4);
    // 4-bit: element j at bit 4j
    expect(kvCodecs.packCodes(Uint32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 4)[0]).toBe(0x87654321);
  });

  it('rounds half to even: [-1, 1.5, 2, 0] at 2 bits -> min -1, scale 1, codes [0, 2, 3, 1]', () => {
    const r = kvCodecs.quantizeGroup(Float32Array.from([-1, 1.5, 2, 0]), 2);
    expect(r.min).toBe(-1);
    expect(r.scale).toBe(1);
    expect(Array.from(r.codes)).toEqual([0, 2, 3, 1]); // (1.5+1)/1 = 2.5 -> 2, not Math.round's 3
    expect(Array.from(r.values)).toEqual([-1, 1, 2, 0]);
  });

  it('constant groups: scale 0, codes 0, exact reconstruction, no NaN', () => {
    for (const c of [0, 3.25, -7.5]) {
      const r = kvCodecs.quantizeGroup(new Float32Array(8).fill(c), 2);
      expect(r.scale).toBe(0);
      expect(Array.from(r.codes)).toEqual(new Array(8).fill(0));
      expect(Array.from(r.values)).toEqual(new Array(8).fill(c));
    }
    // through a whole cache: constant (padding) K and V come back exactly
    const k = tensor('f32', [2, 64, 16], new Float32Array(2 * 64 * 16).fill(1.5));
    const v = tensor('f32', [2, 64, 16], new Float32Array(2 * 64 * 16).fill(-0.25));
    for (const scheme of ['kivi', 'zipcache'] as const) {
      const q = quantizeKVSync(k, v, { scheme });
      const d = dequantizeKVSync(q);
      expect(d.k.data.every((x) => x === 1.5)).toBe(true);
      expect(d.v.data.every((x) => x === -0.25)).toBe(true);
      q.dispose();
    }
  });

  it("ternary: [0.9, -0.1, -0.8, 0.2] -> s 0.5, q [1, 0, -1, 0], x' [0.5, 0, -0.5, 0]", () => {
    const r = kvCodecs.ternary(Float32Array.from([0.9, -0.1, -0.8, 0.2]));
    expect(r.scale).toBe(0.5);
    expect(Array.from(r.q)).toEqual([1, 0, -1, 0]);
    expect(Array.from(r.values)).toEqual([0.5, 0, -0.5, 0]);
    // five ternary digits per byte: 1.6 bits per value
    expect(kvCodecs.ternary(new Float32Array(10).fill(1)).packedBytes).toBe(2);
  });

  it('1-bit: same vector with scale 0.5 -> [0.5, -0.5, -0.5, 0.5]', () => {
    expect(Array.from(kvCodecs.signCodes(Float32Array.from([0.9, -0.1, -0.8, 0.2]), 0.5))).toEqual([0.5, -0.5, -0.5, 0.5]);
  });

  it('fp8 E4M3: +-448 exact, saturation, round to nearest even, subnormals', () => {
    const r = kvCodecs.fp8(Float32Array.from([448, -448, 1000, -Infinity, 1, 0.5, 1.0625, 1.1875, 2 ** -9, 0]), 'e4m3');
    expect(Array.from(r.bytes.slice(0, 2))).toEqual([0x7e, 0xfe]);
    expect(Array.from(r.values)).toEqual([448, -448, 448, -448, 1, 0.5, 1, 1.25, 2 ** -9, 0]);
    // 1.0625 is halfway between 1 and 1.125 -> even mantissa (1); 1.1875 halfway 1.125/1.25 -> 1.25
  });

  it('fp8 E5M2: max 57344, RNE', () => {
    const r = kvCodecs.fp8(Float32Array.from([57344, -60000, 1.125, 1.375, 2 ** -16]), 'e5m2');
    expect(Array.from(r.values)).toEqual([57344, -57344, 1, 1.5, 2 ** -16]);
    expect(r.bytes[0]).toBe(0x7b);
  });

  it('fp8 E4M3 representable values re-encode to themselves', () => {
    // exact representables re-encode to themselves
    const vals = Float32Array.from([0.015625, 0.5, 0.875, 3.5, 240, 448, -0.001953125]);
    expect(Array.from(kvCodecs.fp8(vals, 'e4m3').values)).toEqual(Array.from(vals));
  });
});
