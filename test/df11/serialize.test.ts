import { describe, expect, it } from 'vitest';

import { compressSync, decompressSync, unitFromSafetensorsEntries, unitMetadata, unitToSafetensorsEntries } from '../../lib/df11/index.js';
import { readSafetensorsBuffer, serializeSafetensors } from '../../lib/safetensors/index.js';
import { tensor } from '../../lib/tensor.js';
import { firstMismatch, gaussianBf16 } from './helpers.js';

describe('df11 units <-> safetensors', () => {
  const inputs = {
    'layers.0.q.weight': gaussianBf16([64, 64], 0.02, 1),
    'layers.0.nan': tensor('bf16', [3], new Uint16Array([0x7fc0, 0x3f80, 0xff80])),
    'layers.0.o.weight': gaussianBf16([32, 64], 0.05, 2),
  };
  const unit = compressSync(inputs);

  it('writes the DFloat11 buffer names and reads them back bit for bit', () => {
    const entries = unitToSafetensorsEntries(unit, 'model.layers.0');
    expect(entries.map((e) => e.name)).toEqual([
      'model.layers.0.encoded_exponent',
      'model.layers.0.sign_mantissa',
      'model.layers.0.luts',
      'model.layers.0.output_positions',
      'model.layers.0.gaps',
      'model.layers.0.split_positions',
      'model.layers.0.raw.0',
    ]);
    expect(entries[2]!.shape).toEqual([unit.buffers.luts.byteLength / 256, 256]);
    const bytes = serializeSafetensors(entries, unitMetadata(unit, 'model.layers.0'));
    const back = unitFromSafetensorsEntries(readSafetensorsBuffer(bytes), 'model.layers.0');
    expect(back.slices).toEqual(unit.slices);
    const out = decompressSync(back);
    for (const [name, t] of Object.entries(inputs)) expect(firstMismatch(out[name]!.data, t.data)).toBe(-1);
    expect(back.stats.bitsPerWeight).toBeCloseTo(unit.stats.bitsPerWeight, 10);
  });

  it('reads plain entry arrays, with an explicit manifest or none', () => {
    const entries = unitToSafetensorsEntries(unit, 'u').map((e) => ({ ...e, dtype: String(e.dtype), data: e.data as ArrayBufferView }));
    const plain = unitFromSafetensorsEntries(entries, 'u');
    expect(plain.slices.map((s) => s.name)).toEqual(['u.0', 'u.1']); // the encoded tensors only, 1-D
    expect(firstMismatch(decompressSync(plain)['u.0']!.data, inputs['layers.0.q.weight'].data)).toBe(-1);
  });

  it('rejects missing buffers, wrong dtypes and inconsistent manifests with CORRUPT_DATA', () => {
    const entries = unitToSafetensorsEntries(unit, 'u').map((e) => ({ ...e, dtype: String(e.dtype), data: e.data as ArrayBufferView }));
    expect(() => unitFromSafetensorsEntries(entries.slice(1), 'u')).toThrow(expect.objectContaining({ code: 'CORRUPT_DATA' }));
    const wrong = entries.map((e) => (e.name === 'u.luts' ? { ...e, dtype: 'F32' } : e));
    expect(() => unitFromSafetensorsEntries(wrong, 'u')).toThrow(expect.objectContaining({ code: 'CORRUPT_DATA' }));
    expect(() => unitFromSafetensorsEntries(entries, 'u', { tensors: [{ name: 'a', shape: [5] }] })).toThrow(
      expect.objectContaining({ code: 'CORRUPT_DATA' }),
    );
    const badSplit = entries.map((e) => (e.name === 'u.split_positions' ? { ...e, data: new BigInt64Array([10n ** 12n]) } : e));
    expect(() => unitFromSafetensorsEntries(badSplit, 'u')).toThrow(expect.objectContaining({ code: 'CORRUPT_DATA' }));
  });
});
