/**
 * Units <-> safetensors entries, with the DFloat11 buffer names
 * (`<prefix>.encoded_exponent`, `.sign_mantissa`, `.luts`, `.output_positions`, `.gaps`,
 * `.split_positions`), so units written here open in DFloat11 tools and units from
 * DFloat11 files open here. Names and shapes travel in metadata (`<prefix>.df11`).
 */
import { InferzipError, check } from '../errors.js';
import type { SafetensorsReader, SafetensorsWriteEntry } from '../safetensors/index.js';
import { shapeSize, type Tensor } from '../tensor.js';
import { makeUnit } from './codec.js';
import { assembleUnitBuffers, unitBufferEntries } from './unit-buffers.js';
import type { CompressedUnit, UnitSlice } from './unit.js';

/** Names and shapes of a unit's tensors, in input order (stored as JSON metadata). */
export interface UnitManifest {
  readonly tensors: readonly { readonly name: string; readonly shape: readonly number[]; readonly raw?: boolean }[];
}

/** Metadata key holding a unit's manifest. */
export function unitManifestKey(prefix: string): string {
  return `${prefix}.df11`;
}

/** The manifest of a unit (JSON-serializable). */
export function unitManifest(unit: CompressedUnit): UnitManifest {
  return {
    tensors: unit.slices.map((s) => (s.raw ? { name: s.name, shape: [...s.shape], raw: true } : { name: s.name, shape: [...s.shape] })),
  };
}

/**
 * `{ '<prefix>.df11': manifest JSON }`, to merge into a file's `__metadata__`.
 * @example
 * const bytes = serializeSafetensors(unitToSafetensorsEntries(unit, 'u.0'), unitMetadata(unit, 'u.0'));
 */
export function unitMetadata(unit: CompressedUnit, prefix: string): Record<string, string> {
  return { [unitManifestKey(prefix)]: JSON.stringify(unitManifest(unit)) };
}

/**
 * The safetensors entries of a unit: its six DFloat11 buffers, then its raw tensors as
 * `<prefix>.raw.<i>` (BF16, original shape). Write them with writeSafetensors /
 * serializeSafetensors, together with unitMetadata(unit, prefix).
 * @example
 * await writeSafetensors('unit.safetensors', unitToSafetensorsEntries(unit, 'u.0'), { metadata: unitMetadata(unit, 'u.0') });
 */
export function unitToSafetensorsEntries(unit: CompressedUnit, prefix: string): SafetensorsWriteEntry[] {
  check(typeof prefix === 'string' && prefix.length > 0, 'prefix must be a non-empty string');
  const entries: SafetensorsWriteEntry[] = unitBufferEntries(prefix, unit.buffers);
  let r = 0;
  for (const s of unit.slices) {
    if (!s.raw) continue;
    const t = unit.raw[s.name]!;
    entries.push({ name: `${prefix}.raw.${r++}`, dtype: 'BF16', shape: t.shape, data: t.data });
  }
  return entries;
}

/** An entry to rebuild a unit from: raw bytes with dtype and shape. */
export interface UnitEntry {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly data: ArrayBufferView;
}

type Source = SafetensorsReader | readonly UnitEntry[];

function getter(source: Source): {
  get(name: string): { dtype: string; bytes: Uint8Array } | undefined;
  metadata: Readonly<Record<string, string>>;
} {
  if (Array.isArray(source)) {
    const map = new Map((source as readonly UnitEntry[]).map((e) => [e.name, e]));
    return {
      get(name) {
        const e = map.get(name);
        return e && { dtype: e.dtype, bytes: new Uint8Array(e.data.buffer, e.data.byteOffset, e.data.byteLength) };
      },
      metadata: {},
    };
  }
  const reader = source as SafetensorsReader;
  return {
    get(name) {
      if (!reader.has(name)) return undefined;
      const e = reader.entry(name);
      return { dtype: e.dtype, bytes: reader.readBytesSync(name) };
    },
    metadata: reader.metadata,
  };
}

function aligned(bytes: Uint8Array, size: number): Uint8Array {
  return bytes.byteOffset % size === 0 ? bytes : bytes.slice();
}

/**
 * Rebuilds a unit from safetensors entries (a reader such as openSafetensors /
 * readSafetensorsBuffer, or an array of {name, dtype, shape, data}). Names and shapes come
 * from `manifest`, else from the reader's `<prefix>.df11` metadata, else (files from other
 * DFloat11 encoders) each stretch between split_positions becomes a 1-D tensor
 * `<prefix>.<i>`. Sizes are checked here; the stream itself is validated when decoded.
 * @example
 * const unit = unitFromSafetensorsEntries(readSafetensorsBuffer(bytes), 'u.0');
 */
export function unitFromSafetensorsEntries(source: Source, prefix: string, manifest?: UnitManifest): CompressedUnit {
  check(typeof prefix === 'string' && prefix.length > 0, 'prefix must be a non-empty string');
  const src = getter(source);
  const buffers = assembleUnitBuffers(prefix, (b) => src.get(`${prefix}.${b}`));
  const n = buffers.signMantissa.byteLength;
  const bounds = [0];
  for (const v of buffers.splitPositions) {
    const p = Number(v);
    if (!(p >= bounds[bounds.length - 1]! && p <= n))
      throw new InferzipError('CORRUPT_DATA', `'${prefix}.split_positions' must be non-decreasing within 0..${n}`);
    bounds.push(p);
  }
  bounds.push(n);

  let m = manifest;
  if (!m) {
    const json = src.metadata[unitManifestKey(prefix)];
    if (json !== undefined) {
      try {
        m = JSON.parse(json) as UnitManifest;
      } catch (err) {
        throw new InferzipError('CORRUPT_DATA', `metadata '${unitManifestKey(prefix)}' is not valid JSON`, { cause: err });
      }
    }
  }
  const slices: UnitSlice[] = [];
  const raw: Record<string, Tensor<'bf16'>> = {};
  if (!m) {
    for (let i = 0; i + 1 < bounds.length; i++) {
      const len = bounds[i + 1]! - bounds[i]!;
      slices.push({ name: `${prefix}.${i}`, shape: [len], offset: bounds[i]!, length: len, raw: false });
    }
    return makeUnit(buffers, slices, raw);
  }
  check(m && Array.isArray(m.tensors), `unit '${prefix}' manifest must have a tensors array`, 'CORRUPT_DATA');
  let encIndex = 0;
  let rawIndex = 0;
  let rawOffset = n;
  const names = new Set<string>();
  for (const t of m.tensors) {
    check(
      t && typeof t.name === 'string' && !names.has(t.name) && Array.isArray(t.shape),
      `unit '${prefix}' manifest has a bad or repeated tensor entry`,
      'CORRUPT_DATA',
    );
    names.add(t.name);
    let length: number;
    try {
      length = shapeSize(t.shape);
    } catch (err) {
      throw new InferzipError('CORRUPT_DATA', `unit '${prefix}' manifest: tensor '${t.name}' has an invalid shape`, { cause: err });
    }
    if (t.raw) {
      const e = src.get(`${prefix}.raw.${rawIndex++}`);
      check(
        e && e.dtype === 'BF16' && e.bytes.byteLength === length * 2,
        `unit '${prefix}': raw tensor '${t.name}' is missing or has the wrong size`,
        'CORRUPT_DATA',
      );
      const b = aligned(e.bytes, 2);
      raw[t.name] = { dtype: 'bf16', shape: Object.freeze([...t.shape]), data: new Uint16Array(b.buffer, b.byteOffset, length) };
      slices.push({ name: t.name, shape: Object.freeze([...t.shape]), offset: rawOffset, length, raw: true });
      rawOffset += length;
    } else {
      check(encIndex + 1 < bounds.length, `unit '${prefix}' manifest lists more encoded tensors than split_positions has`, 'CORRUPT_DATA');
      const start = bounds[encIndex]!;
      const len = bounds[encIndex + 1]! - start;
      check(
        len === length,
        `unit '${prefix}': tensor '${t.name}' [${t.shape.join(', ')}] has ${length} elements but the stream holds ${len} there`,
        'CORRUPT_DATA',
      );
      slices.push({ name: t.name, shape: Object.freeze([...t.shape]), offset: start, length, raw: false });
      encIndex++;
    }
  }
  check(
    encIndex === bounds.length - 1 || (n === 0 && encIndex === 0),
    `unit '${prefix}' manifest lists ${encIndex} encoded tensors but split_positions describes ${bounds.length - 1}`,
    'CORRUPT_DATA',
  );
  return makeUnit(buffers, slices, raw);
}
