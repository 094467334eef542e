/** Turns tensors into safetensors entries and builds the JSON header (shared by the writers). */
import { InferzipError, check } from '../errors.js';
import { isDType, shapeSize, type DType, type Tensor } from '../tensor.js';
import type { MetadataPosition } from './header.js';
import { SAFETENSORS_ELEMENT_SIZE, isSafetensorsDType, safetensorsDType, type SafetensorsDType } from './dtypes.js';

/** One tensor to write. `data` may be a loader so large files are written tensor by tensor. */
export interface SafetensorsWriteEntry {
  name: string;
  /** A safetensors dtype ('BF16', 'F64', ...) or an inferzip dtype ('bf16', ...). */
  dtype: SafetensorsDType | DType;
  shape: readonly number[];
  data: ArrayBufferView | (() => Promise<ArrayBufferView> | ArrayBufferView);
}

/** Tensors keyed by name (insertion order kept), or entries in the order to write. */
export type SafetensorsInput = Readonly<Record<string, Tensor>> | readonly SafetensorsWriteEntry[];

export interface RawEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: readonly number[];
  byteLength: number;
  data: SafetensorsWriteEntry['data'];
}

export function toRawEntries(input: SafetensorsInput): RawEntry[] {
  const list: SafetensorsWriteEntry[] = Array.isArray(input)
    ? [...(input as readonly SafetensorsWriteEntry[])]
    : Object.entries(input as Record<string, Tensor>).map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: t.data }));
  const seen = new Set<string>();
  return list.map((e, i) => {
    check(e && typeof e.name === 'string' && e.name.length > 0, `entry ${i} needs a non-empty name`);
    check(e.name !== '__metadata__', `'__metadata__' is reserved and cannot name a tensor`);
    check(!seen.has(e.name), `tensor name '${e.name}' appears twice`);
    seen.add(e.name);
    const dtype: SafetensorsDType | undefined = isSafetensorsDType(e.dtype)
      ? e.dtype
      : isDType(e.dtype)
        ? safetensorsDType(e.dtype)
        : undefined;
    if (!dtype) throw new InferzipError('DTYPE_MISMATCH', `tensor '${e.name}' has unknown dtype '${String(e.dtype)}'`);
    const byteLength = shapeSize(e.shape) * SAFETENSORS_ELEMENT_SIZE[dtype];
    if (typeof e.data !== 'function') {
      check(ArrayBuffer.isView(e.data), `tensor '${e.name}' data must be a typed array or a loader function`);
      check(
        e.data.byteLength === byteLength,
        `tensor '${e.name}' has ${e.data.byteLength} bytes but ${dtype}[${e.shape.join(', ')}] needs ${byteLength}`,
        'SHAPE_MISMATCH',
      );
    }
    return { name: e.name, dtype, shape: e.shape, byteLength, data: e.data };
  });
}

/**
 * JSON header bytes, space-padded to a multiple of 8 so the data section stays aligned.
 * `__metadata__` goes first (as the reference writer does) unless `metadataPosition` is 'last'.
 */
export function buildHeader(
  entries: readonly RawEntry[],
  metadata?: Record<string, string>,
  metadataPosition: MetadataPosition = 'first',
): Uint8Array {
  check(
    metadataPosition === 'first' || metadataPosition === 'last',
    `metadataPosition must be 'first' or 'last' (got '${String(metadataPosition)}')`,
  );
  // No prototype: a tensor named "__proto__" must become a key, not a prototype.
  const header: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  let meta: Record<string, string> | undefined;
  if (metadata !== undefined) {
    check(metadata !== null && typeof metadata === 'object' && !Array.isArray(metadata), 'metadata must be an object of strings');
    for (const [k, v] of Object.entries(metadata)) check(typeof v === 'string', `metadata '${k}' must be a string`);
    if (Object.keys(metadata).length > 0) meta = Object.assign(Object.create(null) as Record<string, string>, metadata);
  }
  if (meta && metadataPosition === 'first') header.__metadata__ = meta;
  let offset = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: [...e.shape], data_offsets: [offset, offset + e.byteLength] };
    offset += e.byteLength;
  }
  if (meta && metadataPosition === 'last') header.__metadata__ = meta;
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(padded).fill(0x20);
  out.set(json);
  return out;
}
