// Bit-level comparison helpers for native-vs-reference token tests.
import { expect } from 'vitest';

import type { Tensor } from '../../lib/tensor.js';

/** The raw bits of a typed array's elements (so +0/-0 and every rounding count). */
export function bitsOf(a: ArrayBufferView): number[] {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  return Array.from(bytes);
}

/** Same dtype, shape and bit-identical data. */
export function expectSameTensor(got: Tensor, want: Tensor): void {
  expect(got.dtype).toBe(want.dtype);
  expect(got.shape).toEqual(want.shape);
  expect(bitsOf(got.data)).toEqual(bitsOf(want.data));
}

/** Bit-identical typed arrays of the same length. */
export function expectSameArray(got: ArrayBufferView, want: ArrayBufferView): void {
  expect(got.constructor.name).toBe(want.constructor.name);
  expect(bitsOf(got)).toEqual(bitsOf(want));
}
