import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import {
  compressSync,
  decompressSync,
  simulateKernelDecode,
  unitFromSafetensorsEntries,
  type CompressedUnit,
} from '../../lib/df11/index.js';
import { deviceId } from '../../lib/backend.js';
import { InferzipError } from '../../lib/errors.js';
import { decodeDeviceUnit, uploadUnit } from '../../lib/model/codec.js';
import { native } from '../../lib/native.js';
import { readSafetensorsBuffer } from '../../lib/safetensors/index.js';
import { tensor } from '../../lib/tensor.js';
import { firstMismatch, gaussianBf16, rng, tamper } from './helpers.js';

const fixture = (p: string) => fileURLToPath(new URL(`../../fixtures/${p}`, import.meta.url));
const reference = unitFromSafetensorsEntries(
  readSafetensorsBuffer(new Uint8Array(readFileSync(fixture('dfloat11-unit.safetensors')))),
  'unit',
);
const ours = compressSync({ w: gaussianBf16([400, 500], 0.02, 42) }); // ~20 blocks

// Every unit the tests below decode, with what the kernel simulator made of it: the device
// decoders (the CUDA kernel where a GPU answers) must give the same words or the same error.
const seen: { unit: CompressedUnit; want: Uint16Array | string }[] = [];
function simulated(unit: CompressedUnit): Uint16Array | string {
  let want: Uint16Array | string;
  try {
    want = simulateKernelDecode(unit);
  } catch (e) {
    want = (e as InferzipError).code;
  }
  seen.push({ unit, want });
  return want;
}

function corrupt(unit: CompressedUnit): void {
  let err: unknown;
  try {
    decompressSync(unit);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(InferzipError);
  expect((err as InferzipError).code).toBe('CORRUPT_DATA');
  // the kernel's logic rejects it too
  expect(simulated(unit)).toBe('CORRUPT_DATA');
}

const copy = (a: Uint8Array) => new Uint8Array(a);
const u32 = (a: Uint8Array) => new Uint32Array(copy(a).buffer);

describe('df11 decoder: hostile units give CORRUPT_DATA', () => {
  it('the untouched units decode', () => {
    expect(() => decompressSync(reference)).not.toThrow();
    expect(() => decompressSync(ours)).not.toThrow();
    expect(ours.buffers.outputPositions.byteLength / 4 - 1).toBeGreaterThan(10);
  });

  it('truncated streams', () => {
    for (const unit of [reference, ours]) {
      const e = unit.buffers.encodedExponent;
      corrupt(tamper(unit, { encodedExponent: e.subarray(0, e.byteLength - 100) }));
      corrupt(tamper(unit, { encodedExponent: e.subarray(0, e.byteLength - 5000) }));
      corrupt(tamper(unit, { encodedExponent: e.subarray(0, 0) }));
      corrupt(tamper(unit, { signMantissa: unit.buffers.signMantissa.subarray(1) }));
    }
  });

  it('tables with cycles, out-of-range pointers, too many levels or bad code lengths', () => {
    const luts = reference.buffers.luts;
    const tables = luts.byteLength / 256 - 1;
    // a child table that points to itself
    let pointerAt = -1;
    for (let i = 0; i < 256; i++) if (luts[i]! >= 240) pointerAt = i;
    expect(pointerAt).toBeGreaterThanOrEqual(0);
    const child = 256 - luts[pointerAt]!;
    const cyc = copy(luts);
    cyc.fill(256 - child, child * 256, child * 256 + 256);
    corrupt(tamper(reference, { luts: cyc }));
    // a pointer to a table that does not exist
    const oob = copy(luts);
    oob[pointerAt] = 256 - tables; // one past the last decode table (the length row)
    corrupt(tamper(reference, { luts: oob }));
    const oob2 = copy(luts);
    oob2[0] = 240;
    corrupt(tamper(reference, { luts: oob2 }));
    // code length 0 or > 32 for exponents that occur
    const zero = copy(luts);
    zero.fill(0, tables * 256, tables * 256 + 256);
    corrupt(tamper(reference, { luts: zero }));
    const long = copy(luts);
    long.fill(40, tables * 256, tables * 256 + 256);
    corrupt(tamper(reference, { luts: long }));
    // wrong table sizes
    corrupt(tamper(reference, { luts: luts.subarray(0, luts.byteLength - 1) }));
    corrupt(tamper(reference, { luts: luts.subarray(0, 256) }));
    corrupt(tamper(reference, { luts: new Uint8Array(19 * 256) }));
  });

  it('gaps that disagree with the stream or have the wrong length', () => {
    for (const unit of [reference, ours]) {
      const g = unit.buffers.gaps;
      for (const byte of [0, 1, 7, 100, 640]) {
        const bad = copy(g);
        bad[byte] = bad[byte]! ^ 0x10;
        corrupt(tamper(unit, { gaps: bad }));
      }
      corrupt(tamper(unit, { gaps: g.subarray(0, g.byteLength - 1) }));
      const longer = new Uint8Array(g.byteLength + 1);
      longer.set(g);
      corrupt(tamper(unit, { gaps: longer }));
    }
  });

  it('output_positions that decrease, overrun, miscount or have the wrong length', () => {
    for (const unit of [reference, ours]) {
      const op = unit.buffers.outputPositions;
      const n = op.byteLength / 4;
      const dec = u32(op);
      [dec[1], dec[2]] = [dec[2]!, dec[1]!];
      corrupt(tamper(unit, { outputPositions: new Uint8Array(dec.buffer) }));
      const over = u32(op);
      over[n - 1] = over[n - 1]! + 1;
      corrupt(tamper(unit, { outputPositions: new Uint8Array(over.buffer) }));
      const miscount = u32(op);
      miscount[2] = miscount[2]! + 1;
      corrupt(tamper(unit, { outputPositions: new Uint8Array(miscount.buffer) }));
      const first = u32(op);
      first[0] = 1;
      corrupt(tamper(unit, { outputPositions: new Uint8Array(first.buffer) }));
      corrupt(tamper(unit, { outputPositions: op.subarray(0, op.byteLength - 4) }));
      corrupt(tamper(unit, { outputPositions: op.subarray(0, op.byteLength - 1) }));
      const huge = u32(op);
      huge[1] = 0xffffffff;
      corrupt(tamper(unit, { outputPositions: new Uint8Array(huge.buffer) }));
    }
  });

  it('random corruption never crashes, and the CPU decoder and the kernel simulator agree', () => {
    const r = rng(7);
    const keys = ['encodedExponent', 'luts', 'gaps', 'outputPositions'] as const;
    let rejected = 0;
    for (let iter = 0; iter < 150; iter++) {
      const base = iter % 2 ? reference : ours;
      const key = keys[iter % keys.length]!;
      const buf = copy(base.buffers[key]);
      const flips = 1 + Math.floor(r() * 3);
      for (let f = 0; f < flips; f++) {
        const at = Math.floor(r() * buf.byteLength);
        buf[at] = buf[at]! ^ (1 << Math.floor(r() * 8));
      }
      const unit = tamper(base, { [key]: buf });
      let cpu: Uint16Array | string;
      try {
        cpu = decompressSync(unit).x!.data;
      } catch (e) {
        cpu = (e as InferzipError).code;
      }
      const sim = simulated(unit);
      if (typeof cpu === 'string') {
        expect(cpu).toBe('CORRUPT_DATA');
        rejected++;
      }
      if (typeof cpu === 'string' || typeof sim === 'string') expect(sim).toBe(cpu);
      else expect(firstMismatch(sim, cpu)).toBe(-1);
    }
    expect(rejected).toBeGreaterThan(50);
  });
});

describe.each([
  ['cpu', false],
  ['cuda', !native().backendInfo().cudaAvailable],
] as const)('df11 device decode on %s: the same verdicts as the kernel simulator', (device, skip) => {
  it.skipIf(skip)('every unit above, plus the untouched ones and a 1-bit code (32768 elements per block)', async () => {
    const flat = compressSync({ w: tensor('bf16', [3 * 32768 + 1000], new Uint16Array(3 * 32768 + 1000).fill(0x3f80)) }); // one exponent: 1-bit codes
    const cases = [...seen];
    for (const unit of [reference, ours, flat]) cases.push({ unit, want: simulateKernelDecode(unit) });
    expect(cases.length).toBeGreaterThan(150);
    for (const { unit, want } of cases) {
      const elements = unit.buffers.signMantissa.byteLength;
      using dev = await uploadUnit(unit.buffers, deviceId(device));
      const out = new (native().NativeBuffer)({ device, bytes: 2 * elements, zero: false });
      let got: Uint16Array | string;
      try {
        await decodeDeviceUnit(dev, out);
        got = new Uint16Array(elements);
        if (elements > 0) await out.downloadAsync({ destination: got, offset: 0 });
      } catch (e) {
        got = (e as InferzipError).code;
      } finally {
        out.dispose();
      }
      if (typeof want === 'string' || typeof got === 'string') expect(got).toBe(want);
      else expect(firstMismatch(got, want)).toBe(-1);
    }
  });
});
