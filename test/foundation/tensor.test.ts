import ndarray from 'ndarray';
import { describe, expect, it } from 'vitest';

import {
  bf16BitsToF32,
  bf16ToF32,
  castFloat,
  f16BitsToF32,
  f16ToF32,
  f32ToBf16,
  f32ToBf16Bits,
  f32ToF16,
  f32ToF16Bits,
  fromNdarray,
  tensor,
  toNdarray,
} from '../../lib/index.js';
import { codeOf } from '../errors.js';

/** f32 value with the given bit pattern. */
function f32(bits: number): number {
  const u = new Uint32Array([bits >>> 0]);
  return new Float32Array(u.buffer)[0]!;
}

describe('f32 -> bf16 (round to nearest, ties to even)', () => {
  const cases: [string, number, number][] = [
    ['exact', f32(0x3f800000), 0x3f80],
    ['below half rounds down', f32(0x3f807fff), 0x3f80],
    ['above half rounds up', f32(0x3f808001), 0x3f81],
    ['tie to even stays (even lsb)', f32(0x3f808000), 0x3f80],
    ['tie to even goes up (odd lsb)', f32(0x3f818000), 0x3f82],
    ['negative tie to even', f32(0xbf818000), 0xbf82],
    ['+0', 0, 0x0000],
    ['-0', -0, 0x8000],
    ['+Inf', Infinity, 0x7f80],
    ['-Inf', -Infinity, 0xff80],
    ['overflow rounds to Inf', f32(0x7f7fffff), 0x7f80],
    ['largest finite that stays finite', f32(0x7f7f7fff), 0x7f7f],
    ['smallest subnormal rounds to 0 (tie, even)', f32(0x00008000), 0x0000],
    ['subnormal rounds up', f32(0x00018000), 0x0002],
    ['subnormal exact', f32(0x00010000), 0x0001],
    ['subnormal carries into normal', f32(0x007fffff), 0x0080],
  ];
  for (const [name, x, bits] of cases) {
    it(name, () => {
      expect(f32ToBf16Bits(x)).toBe(bits);
      expect(f32ToBf16(new Float32Array([x]))[0]).toBe(bits);
    });
  }

  it('NaN stays NaN and keeps its sign', () => {
    for (const bits of [0x7fc00000, 0x7f800001, 0xffc00000, 0xff800001, 0x7fffffff]) {
      const b = f32ToBf16Bits(f32(bits));
      expect(Number.isNaN(bf16BitsToF32(b))).toBe(true);
      expect(b & 0x8000).toBe((bits >>> 16) & 0x8000);
      expect(f32ToBf16(new Float32Array([f32(bits)]))[0]).toBe(b);
    }
  });

  it('every bf16 pattern round-trips bf16 -> f32 -> bf16 exactly', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToBf16(bf16ToF32(all));
    for (let i = 0; i < 65536; i++) {
      const isNaN = (i & 0x7f80) === 0x7f80 && (i & 0x7f) !== 0;
      if (isNaN) expect(back[i]! & 0xffc0).toBe((i | 0x40) & 0xffc0);
      else if (back[i] !== i) expect.fail(`pattern 0x${i.toString(16)} came back as 0x${back[i]!.toString(16)}`);
    }
  });
});

describe('f32 -> f16 (round to nearest, ties to even)', () => {
  const cases: [string, number, number][] = [
    ['one', 1, 0x3c00],
    ['max finite', 65504, 0x7bff],
    ['rounds to max finite', 65519, 0x7bff],
    ['tie at max rounds to Inf', 65520, 0x7c00],
    ['overflow', 1e6, 0x7c00],
    ['-Inf', -Infinity, 0xfc00],
    ['-0', -0, 0x8000],
    ['smallest subnormal', 2 ** -24, 0x0001],
    ['half the smallest subnormal ties to 0', 2 ** -25, 0x0000],
    ['just above half rounds up', 2 ** -25 * 1.0000001, 0x0001],
    ['1.5 x smallest subnormal ties to even (2)', 1.5 * 2 ** -24, 0x0002],
    ['largest subnormal', 1023 * 2 ** -24, 0x03ff],
    ['smallest normal', 2 ** -14, 0x0400],
    ['tie to even down', 1 + 2 ** -11, 0x3c00],
    ['tie to even up', 1 + 3 * 2 ** -11, 0x3c02],
    ['underflow to 0', 1e-10, 0x0000],
    ['negative underflow keeps the sign', -1e-10, 0x8000],
    ['+Inf', Infinity, 0x7c00],
    ['+0', 0, 0x0000],
    ['below half rounds down', 1 + 2 ** -11 - 2 ** -20, 0x3c00],
    ['above half rounds up', 1 + 2 ** -11 + 2 ** -20, 0x3c01],
    ['negative tie to even up', -(1 + 3 * 2 ** -11), 0xbc02],
    ['largest subnormal + half ulp ties up into the smallest normal', 1023.5 * 2 ** -24, 0x0400],
    ['subnormal tie to even stays (2.5 ulp -> 2)', 2.5 * 2 ** -24, 0x0002],
    ['negative smallest subnormal', -(2 ** -24), 0x8001],
    ['f32 subnormal underflows to 0', f32(0x00000001), 0x0000],
  ];
  for (const [name, x, bits] of cases) {
    it(name, () => {
      expect(f32ToF16Bits(x)).toBe(bits);
    });
  }

  it('NaN stays NaN and keeps its sign, even when the payload sits in low bits only', () => {
    for (const bits of [0x7fc00000, 0x7f800001, 0xffc00000, 0xff800001, 0x7f801fff]) {
      const h = f32ToF16Bits(f32(bits));
      expect(Number.isNaN(f16BitsToF32(h))).toBe(true);
      expect(h & 0x8000).toBe((bits >>> 16) & 0x8000);
      expect(f32ToF16(new Float32Array([f32(bits)]))[0]).toBe(h);
    }
  });

  it('every f16 pattern round-trips f16 -> f32 -> f16 exactly', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const back = f32ToF16(f16ToF32(all));
    for (let i = 0; i < 65536; i++) {
      const isNaN = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
      if (isNaN) expect(Number.isNaN(f16BitsToF32(back[i]!))).toBe(true);
      else if (back[i] !== i) expect.fail(`f16 0x${i.toString(16)} came back as 0x${back[i]!.toString(16)}`);
    }
  });
});

/**
 * Independent reference: the nearest representable value among the two neighbours that
 * bracket x (found by bit search over the target format's ordered finite codes), ties to the
 * even code. Overflow follows IEEE: values at or past max + half an ulp become Inf.
 */
function referenceRound(
  x: number,
  decode: (bits: number) => number,
  maxFinite: number,
  signBit: number,
  infBits: number,
  ulpAtMax: number,
): number {
  if (Number.isNaN(x)) return -1;
  const sign = x < 0 || Object.is(x, -0) ? signBit : 0;
  const a = Math.abs(x);
  if (a >= maxFinite + ulpAtMax / 2) return sign | infBits;
  // binary search the largest code whose value is <= a
  let lo = 0;
  let hi = infBits - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (decode(mid) <= a) lo = mid;
    else hi = mid - 1;
  }
  if (decode(lo) === a || lo === infBits - 1) return sign | lo;
  const down = a - decode(lo);
  const up = decode(lo + 1) - a;
  if (down < up) return sign | lo;
  if (up < down) return sign | (lo + 1);
  return sign | (lo % 2 === 0 ? lo : lo + 1);
}

describe('rounding matches an independent reference on random and boundary inputs', () => {
  // Random f32 bit patterns across every exponent, plus values next to each format's
  // rounding boundaries (midpoints between neighbouring codes and one f32 ulp either side).
  function inputs(decode: (bits: number) => number, codes: number): Float32Array {
    const xs: number[] = [];
    let seed = 0x9e3779b9;
    const next = () => (seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0);
    for (let i = 0; i < 100_000; i++) xs.push(f32(next()));
    const nudge = (v: number, d: number) => {
      const b = new Float32Array([v]);
      const u = new Uint32Array(b.buffer);
      u[0] = u[0]! + d;
      return b[0]!;
    };
    for (let c = 0; c + 1 < codes; c += 7) {
      const mid = Math.fround((decode(c) + decode(c + 1)) / 2);
      xs.push(mid, nudge(mid, 1), nudge(mid, -1), -mid);
    }
    return new Float32Array(xs);
  }

  it('f32 -> bf16', () => {
    const xs = inputs(bf16BitsToF32, 0x7f80);
    const bulk = f32ToBf16(xs);
    const maxFinite = bf16BitsToF32(0x7f7f);
    const ulp = maxFinite - bf16BitsToF32(0x7f7e);
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i]!;
      const got = f32ToBf16Bits(x);
      expect(bulk[i]).toBe(got);
      if (Number.isNaN(x)) continue; // checked separately
      const want = referenceRound(x, bf16BitsToF32, maxFinite, 0x8000, 0x7f80, ulp);
      if (got !== want)
        expect.fail(
          `f32 ${x} (0x${new Uint32Array(new Float32Array([x]).buffer)[0]!.toString(16)}): got 0x${got.toString(16)}, want 0x${want.toString(16)}`,
        );
    }
  });

  it('f32 -> f16', () => {
    const xs = inputs(f16BitsToF32, 0x7c00);
    const bulk = f32ToF16(xs);
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i]!;
      const got = f32ToF16Bits(x);
      expect(bulk[i]).toBe(got);
      if (Number.isNaN(x)) continue;
      const want = referenceRound(x, f16BitsToF32, 65504, 0x8000, 0x7c00, 32);
      if (got !== want) expect.fail(`f32 ${x}: got 0x${got.toString(16)}, want 0x${want.toString(16)}`);
    }
  });
});

describe('tensor()', () => {
  it('checks dtype, array type and shape', () => {
    expect(tensor('f32', [2, 3]).data).toHaveLength(6);
    expect(codeOf(() => tensor('f32', [2, 3], new Float32Array(5)))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => tensor('f32', [2], new Uint16Array(2) as never))).toBe('DTYPE_MISMATCH');
    expect(codeOf(() => tensor('f64' as never, [2]))).toBe('DTYPE_MISMATCH');
    expect(codeOf(() => tensor('f32', [-1]))).toBe('SHAPE_MISMATCH');
    expect(codeOf(() => tensor('f32', [1.5]))).toBe('SHAPE_MISMATCH');
    expect(tensor('i64', [0]).data).toBeInstanceOf(BigInt64Array);
    expect(tensor('bf16', []).data).toHaveLength(1);
  });

  it('castFloat converts between float dtypes', () => {
    const t = tensor('f32', [3], new Float32Array([1, -2.5, 1 + 2 ** -9]));
    const b = castFloat(t, 'bf16');
    expect(Array.from(b.data)).toEqual([0x3f80, 0xc020, 0x3f80]);
    expect(Array.from(castFloat(b, 'f32').data)).toEqual([1, -2.5, 1]);
    expect(Array.from(castFloat(t, 'f16').data)).toEqual([0x3c00, 0xc100, 0x3c02]); // f16 keeps 1 + 2^-9 exactly
  });
});

describe('ndarray interop', () => {
  it('accepts strided (transposed) ndarrays and copies them row-major', () => {
    const nd = ndarray(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]).transpose(1, 0);
    const t = fromNdarray(nd);
    expect(t.dtype).toBe('f32');
    expect(t.shape).toEqual([3, 2]);
    expect(Array.from(t.data as Float32Array)).toEqual([1, 4, 2, 5, 3, 6]);
  });

  it('reads Uint16Array ndarrays as bf16 unless told otherwise', () => {
    const nd = ndarray(new Uint16Array([0x3c00]), [1]);
    expect(fromNdarray(nd).dtype).toBe('bf16');
    expect(fromNdarray(nd, 'f16').dtype).toBe('f16');
  });

  it('toNdarray views the data without copying', () => {
    const t = tensor('f32', [2, 2], new Float32Array([1, 2, 3, 4]));
    const nd = toNdarray(t);
    expect(nd.get(1, 0)).toBe(3);
    nd.set(0, 1, 9);
    expect(t.data[1]).toBe(9);
  });

  it('copies sliced and stepped views (offset, negative strides) of 3-D ndarrays', () => {
    const base = ndarray(
      Int32Array.from({ length: 24 }, (_, i) => i),
      [2, 3, 4],
    );
    const view = base.hi(2, 3, 3).lo(1, 1, 0).step(1, -1, 2); // [1, 2, 2], reversed rows, every other column
    const t = fromNdarray(view);
    expect(t.dtype).toBe('i32');
    expect(t.shape).toEqual([1, 2, 2]);
    const want: number[] = [];
    for (let j = 0; j < 2; j++) for (let k = 0; k < 2; k++) want.push(view.get(0, j, k));
    expect(Array.from(t.data as Int32Array)).toEqual(want);
    expect(want).toEqual([20, 22, 16, 18]);
  });

  it('passes tensors through and round-trips i64 data', () => {
    const t = tensor('i64', [2], new BigInt64Array([1n, -(2n ** 62n)]));
    expect(fromNdarray(t)).toBe(t);
    const back = fromNdarray(toNdarray(t) as never);
    expect(back.dtype).toBe('i64');
    expect(Array.from(back.data as BigInt64Array)).toEqual([1n, -(2n ** 62n)]);
  });

  it('rejects ndarrays over arrays it cannot type', () => {
    expect(codeOf(() => fromNdarray(ndarray([1, 2, 3]) as never))).toBe('DTYPE_MISMATCH');
  });
});
