import ndarray from 'ndarray';
import { describe, expect, it } from 'vitest';

import {
  InferzipError,
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

/** f32 value with the given bit pattern. */
function f32(bits: number): number {
  const u = new Uint32Array([bits >>> 0]);
  return new Float32Array(u.buffer)[0]!;
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
  ];
  for (const [name, x, bits] of cases) {
    it(name, () => {
      expect(f32ToF16Bits(x)).toBe(bits);
    });
  }

  it('NaN stays NaN', () => {
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
    expect(f32ToF16Bits(f32(0xffc00000)) & 0x8000).toBe(0x8000);
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

  it('rejects ndarrays over arrays it cannot type', () => {
    expect(codeOf(() => fromNdarray(ndarray([1, 2, 3]) as never))).toBe('DTYPE_MISMATCH');
  });
});
