/** Shared helpers for the df11 tests: seeded random BF16 weights and unit tampering. */
import { f32ToBf16, tensor, type Tensor } from '../../lib/tensor.js';
import type { CompressedUnit, UnitBuffers } from '../../lib/df11/index.js';
import { makeUnit } from '../../lib/df11/codec.js';

/** Mulberry32: small deterministic PRNG (one implementation for every test folder). */
import { rng } from '../tokens/random.js';

export { rng };

/** BF16 N(0, std) weights. */
export function gaussianBf16(shape: number[], std: number, seed: number): Tensor<'bf16'> {
  const n = shape.reduce((a, b) => a * b, 1);
  const r = rng(seed);
  const f = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12);
    const v = r();
    const m = Math.sqrt(-2 * Math.log(u)) * std;
    f[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) f[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return tensor('bf16', shape, f32ToBf16(f));
}

/** A copy of a unit with some buffers replaced (for hostile-input tests). */
export function tamper(unit: CompressedUnit, patch: Partial<Record<keyof UnitBuffers, Uint8Array | BigInt64Array>>): CompressedUnit {
  const buffers = { ...unit.buffers, ...patch } as UnitBuffers;
  return makeUnit(
    buffers,
    [{ name: 'x', shape: [buffers.signMantissa.byteLength], offset: 0, length: buffers.signMantissa.byteLength, raw: false }],
    {},
  );
}

export function concatU16(parts: Uint16Array[]): Uint16Array {
  const out = new Uint16Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function firstMismatch(a: Uint16Array, b: Uint16Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}
