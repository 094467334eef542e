/**
 * Transformer-block-level decompression: every unit stays compressed in device memory;
 * a block is decoded just before it is needed into one reused BF16 buffer sized for the
 * largest block, and its matrices are views into that buffer. Standalone units (embedding,
 * lm_head) decode into a buffer of their own, allocated on first use. `blocks()` decodes block i+1
 * into a second buffer while the caller works on block i. Decoding runs off the main
 * thread (the codec's async decode: a libuv worker on the CPU, a CUDA stream on a GPU).
 * With a placement over several devices each device holds its units and decode buffers of its
 * own, and a block decodes on the device it lives on.
 */
import type { DeviceId, DeviceKind, DeviceString } from '../backend.js';
import { DeviceTensor, bufferDevice } from '../device-tensor.js';
import { InferzipError, nativeAwait, nativeCall } from '../errors.js';
import { pinForAsync } from '../ops.js';
import { native, type NativeBuffer } from '../native.js';
import { tensor, type Tensor } from '../tensor.js';
import { crc32 } from '../checksum.js';

import { decodeDeviceUnit, readUnit, unitCrc32, uploadUnit, type DeviceUnit } from './codec.js';
import { openCatalogAsync, type ModelCatalog, type UnitInfo } from './catalog.js';
import { manifestStructureProblems } from './manifest-checks.js';
import { placementFallback, planPlacement, type PlacementOption } from './placement.js';

/** Bytes of decoded data checked per step (see #checkDecoded). */
const CHECK_CHUNK_BYTES = 4 << 20;

export interface CompressedModelOptions {
  /**
   * Where compressed units and the decode buffers live: 'cpu', 'cuda' (the current CUDA device),
   * 'cuda:N' or 'auto' (default). Shorthand for a one-device `placement`; give one or the other.
   */
  device?: DeviceString | 'auto';
  /**
   * Which device each unit lives on (see PlacementOption): one device string, `{ devices: [...] }`
   * (spread over the listed devices in contiguous ranges balanced by bytes) or `{ map: { prefix:
   * device }, default? }` (longest prefix wins; units no key covers are an error unless a default is
   * given). Each device gets decode buffers of its own; a block decodes on its device.
   */
  placement?: PlacementOption;
  /**
   * Check integrity on the inference path (default true): each unit's stored buffers against
   * their crc32 when the unit is loaded, each raw tensor against its crc32 when read, and the
   * manifest's block numbers against the tensor names. A mismatch throws CORRUPT_DATA instead
   * of giving wrong weights. Pass false only for a file verifyModel already passed.
   */
  verify?: boolean;
}

/** One matrix of a decoded block: a view into the block buffer. */
export interface TensorView {
  readonly name: string;
  readonly dtype: 'bf16';
  readonly shape: readonly number[];
  /** First element inside the block buffer. */
  readonly offset: number;
  readonly byteOffset: number;
  readonly elements: number;
  /** The buffer the view points into (valid until the next decode into it). */
  readonly buffer: NativeBuffer;
  /** The device of the buffer (the block's device): 'cpu' or 'cuda:N'. */
  readonly device: 'cpu' | `cuda:${number}`;
  /** Copies the matrix to a host tensor. */
  toTensor(): Promise<Tensor<'bf16'>>;
  toTensorSync(): Tensor<'bf16'>;
  /** Copies the matrix into its own DeviceTensor (which outlives the block). */
  toDeviceTensor(): DeviceTensor<'bf16'>;
}

export interface DecodedBlock {
  /** Position in `model.blockUnits` (the order `blocks()` yields). */
  readonly ordinal: number;
  readonly unit: UnitInfo;
  /** Where the unit lives and was decoded: 'cpu' or 'cuda:N'. */
  readonly device: 'cpu' | `cuda:${number}`;
  /** Views by full tensor name, in unit order. */
  readonly tensors: ReadonlyMap<string, TensorView>;
  /** A view by full name or by the part after the unit prefix (`self_attn.q_proj.weight`). */
  get(name: string): TensorView;
}

export interface DeviceBytes {
  /** The compressed units. */
  compressed: number;
  /** The decode buffers (one, or two once prefetching). */
  scratch: number;
  total: number;
}

/** The decode buffers one device holds. */
interface DeviceScratch {
  readonly id: DeviceId;
  /** [0] for decompressBlock and even blocks, [1] for prefetching. */
  readonly block: (Scratch | undefined)[];
  /** Standalone units (embedding, lm_head), allocated on first use. */
  unit: Scratch | undefined;
  /** Largest block / standalone unit placed on this device (elements). */
  readonly maxBlockElements: number;
  readonly maxUnitElements: number;
}

interface Scratch {
  buffer: NativeBuffer;
  /** Bumped on every decode into the buffer: views of older decodes turn stale. */
  generation: number;
  /** Decodes into this buffer run one after another. */
  queue: Promise<unknown>;
  /** Host staging for the decoded-crc32 check (per buffer: its queue serializes the users). */
  staging?: Uint8Array;
}

/**
 * A compressed model opened for inference: units stay compressed in memory and each
 * transformer block is decoded on demand into a reused buffer.
 * @example
 * using model = await CompressedModel.open('model.df11.safetensors');
 * const block = await model.decompressBlock(0);
 */
export class CompressedModel implements Disposable {
  readonly path: string;
  readonly format: 'inferzip' | 'dfloat11';
  /** The backend of the first block's device ('cpu' or 'cuda'); `placement` tells each unit's device. */
  readonly device: DeviceKind;
  /** The device of every unit, by prefix, in unit order: 'cpu' or 'cuda:N'. */
  readonly placement: ReadonlyMap<string, 'cpu' | `cuda:${number}`>;
  /** The devices the model uses, in the order they first hold a unit. */
  readonly devices: readonly ('cpu' | `cuda:${number}`)[];
  /** Every unit (blocks, then standalone matrices). */
  readonly units: readonly UnitInfo[];
  /** The transformer-block units, in order. */
  readonly blockUnits: readonly UnitInfo[];
  /** Tensors stored uncompressed (norms, biases, matrices DFloat11 cannot code): read them with readTensor. */
  readonly rawTensorNames: readonly string[];
  readonly #catalog: ModelCatalog;
  readonly #resident: Map<string, DeviceUnit>;
  /** Where each unit lives, by prefix. */
  readonly #where: Map<string, DeviceId>;
  /** Decode buffers, by device label. */
  readonly #scratch = new Map<string, DeviceScratch>();
  readonly #maxBlockElements: number;
  readonly #verify: boolean;
  /** Units whose decoded matrices matched their crc32 once (each is checked on first decode). */
  readonly #checked = new Set<string>();
  #disposed = false;

  private constructor(
    catalog: ModelCatalog,
    where: Map<string, DeviceId>,
    fallback: DeviceId,
    resident: Map<string, DeviceUnit>,
    verify: boolean,
  ) {
    this.#catalog = catalog;
    this.#verify = verify;
    this.rawTensorNames = catalog.rawTensors.map((t) => t.name);
    this.path = catalog.path;
    this.format = catalog.format;
    this.units = catalog.units;
    this.blockUnits = catalog.units.filter((u) => u.kind === 'block');
    this.#resident = resident;
    this.#where = where;
    this.placement = new Map(catalog.units.map((u) => [u.prefix, where.get(u.prefix)!.label]));
    this.devices = [...new Set(this.placement.values())];
    this.device = (this.blockUnits[0] ? where.get(this.blockUnits[0].prefix)! : fallback).kind;
    this.#maxBlockElements = Math.max(0, ...this.blockUnits.map((u) => u.elements));
    for (const u of catalog.units) {
      const id = where.get(u.prefix)!;
      const s = this.#scratch.get(id.label) ?? {
        id,
        block: [undefined, undefined],
        unit: undefined,
        maxBlockElements: 0,
        maxUnitElements: 0,
      };
      this.#scratch.set(id.label, {
        ...s,
        maxBlockElements: u.kind === 'block' ? Math.max(s.maxBlockElements, u.elements) : s.maxBlockElements,
        maxUnitElements: u.kind !== 'block' ? Math.max(s.maxUnitElements, u.elements) : s.maxUnitElements,
      });
    }
  }

  /**
   * Opens an inferzip compressed file or a DFloat11 directory and copies every unit to
   * the device, compressed.
   * @example
   *   using model = await CompressedModel.open('/tmp/stories.df11.safetensors', { device: 'auto' });
   *   for await (const block of model.blocks({ prefetch: true })) {
   *     const q = await block.get('self_attn.q_proj.weight').toTensor();
   *   }
   *   // spread over two GPUs: await CompressedModel.open(path, { placement: { devices: ['cuda:0', 'cuda:1'] } })
   */
  static async open(path: string, options: CompressedModelOptions = {}): Promise<CompressedModel> {
    if (options.device !== undefined && options.placement !== undefined) {
      throw new InferzipError(
        'INVALID_ARGUMENT',
        `CompressedModel.open: give device or placement, not both (device is shorthand for a one-device placement)`,
      );
    }
    if (options.verify !== undefined && typeof options.verify !== 'boolean') {
      throw new InferzipError('INVALID_ARGUMENT', `CompressedModel.open: verify must be true or false, got ${String(options.verify)}`);
    }
    const verify = options.verify !== false;
    const placement: unknown = options.placement !== undefined ? options.placement : options.device;
    // Device strings are checked before the file is opened: a bad one fails fast.
    const fallback = placementFallback(placement);
    planPlacement([], placement);
    const catalog = await openCatalogAsync(path);
    const resident = new Map<string, DeviceUnit>();
    let where: Map<string, DeviceId>;
    try {
      where = planPlacement(catalog.units, placement);
      if (verify) {
        const problems = manifestStructureProblems(catalog);
        if (problems.length > 0) throw new InferzipError('CORRUPT_DATA', `'${path}': ${problems[0]!}`);
      }
      const stored = new Map((catalog.manifest?.units ?? []).map((u) => [u.prefix, u.crc32]));
      for (const u of catalog.units) {
        const encoded = await readUnit(catalog.reader, u.prefix);
        const expected = stored.get(u.prefix);
        if (verify && expected !== undefined) {
          const crc = unitCrc32(encoded);
          if (crc !== expected)
            throw new InferzipError(
              'CORRUPT_DATA',
              `'${path}': the stored buffers of unit '${u.prefix}' fail their crc32 (${crc}, expected ${expected}): the file is damaged`,
            );
        }
        if (encoded.signMantissa.byteLength !== u.elements) {
          throw new InferzipError(
            'CORRUPT_DATA',
            `unit '${u.prefix}' holds ${encoded.signMantissa.byteLength} elements, its matrices need ${u.elements}`,
          );
        }
        const sp = encoded.splitPositions;
        if (sp.length !== u.members.length - 1 || u.members.some((m, i) => i > 0 && sp[i - 1] !== BigInt(m.offset))) {
          throw new InferzipError(
            'CORRUPT_DATA',
            `unit '${u.prefix}': split_positions [${[...sp].join(', ')}] do not match where its ${u.members.length} matrices start`,
          );
        }
        resident.set(u.prefix, await uploadUnit(encoded, where.get(u.prefix)!));
      }
    } catch (err) {
      for (const r of resident.values()) r.dispose();
      catalog.close();
      throw err;
    }
    return new CompressedModel(catalog, where, fallback, resident, verify);
  }

  get numBlocks(): number {
    return this.blockUnits.length;
  }

  /** Device memory held now, over every device: compressed units plus the decode buffers allocated so far. */
  get deviceBytes(): DeviceBytes {
    let compressed = 0;
    let scratch = 0;
    for (const b of Object.values(this.deviceBytesByDevice)) {
      compressed += b.compressed;
      scratch += b.scratch;
    }
    return { compressed, scratch, total: compressed + scratch };
  }

  /** deviceBytes for each device the model uses, by 'cpu' / 'cuda:N'. */
  get deviceBytesByDevice(): Record<string, DeviceBytes> {
    const out: Record<string, DeviceBytes> = {};
    for (const label of this.devices) out[label] = { compressed: 0, scratch: 0, total: 0 };
    for (const [prefix, r] of this.#resident) out[this.#where.get(prefix)!.label]!.compressed += r.bytes;
    for (const [label, s] of this.#scratch) {
      const bytes = [...s.block, s.unit].reduce((n, b) => n + (b && !b.buffer.disposed ? b.buffer.bytes : 0), 0);
      out[label]!.scratch += bytes;
    }
    for (const b of Object.values(out)) b.total = b.compressed + b.scratch;
    return out;
  }

  /**
   * The device a unit lives on and decodes on: by block ordinal or unit prefix.
   * @example
   * model.deviceOf(0); // 'cuda:0'
   */
  deviceOf(unit: number | string): 'cpu' | `cuda:${number}` {
    const u = typeof unit === 'number' ? this.#blockAt(unit) : this.units.find((x) => x.prefix === unit);
    if (!u) throw new InferzipError('INVALID_ARGUMENT', `no unit '${String(unit)}' (units: ${this.units.map((x) => x.prefix).join(', ')})`);
    return this.#where.get(u.prefix)!.label;
  }

  /** Bytes of one block decode buffer (the largest block, BF16); each device's buffers are sized for its own largest block. */
  get blockBufferBytes(): number {
    return this.#maxBlockElements * 2;
  }

  #live(): void {
    if (this.#disposed) throw new InferzipError('DISPOSED', `CompressedModel '${this.path}' was disposed`);
  }

  #allocScratch(id: DeviceId, elements: number): Scratch {
    const buffer = nativeCall(
      () => new (native().NativeBuffer)({ device: id.kind, deviceIndex: id.index, bytes: elements * 2, zero: false }),
      `CompressedModel decode buffer on ${id.label}`,
    );
    return { buffer, generation: 0, queue: Promise.resolve() };
  }

  /** The decode buffer on the unit's own device. */
  #scratchFor(unit: UnitInfo, slot: 0 | 1): Scratch {
    const s = this.#scratch.get(this.#where.get(unit.prefix)!.label)!;
    if (unit.kind === 'block') return (s.block[slot] ??= this.#allocScratch(s.id, s.maxBlockElements));
    return (s.unit ??= this.#allocScratch(s.id, s.maxUnitElements));
  }

  #blockAt(ordinal: number): UnitInfo {
    if (!Number.isInteger(ordinal) || ordinal < 0 || ordinal >= this.blockUnits.length) {
      throw new InferzipError(
        'INVALID_ARGUMENT',
        `block ${String(ordinal)} is out of range: the model has ${this.blockUnits.length} blocks (0..${this.blockUnits.length - 1})`,
      );
    }
    return this.blockUnits[ordinal]!;
  }

  /** Decodes a unit into a decode buffer; earlier views of that buffer become stale. */
  #decodeInto(unit: UnitInfo, ordinal: number, slot: 0 | 1): Promise<DecodedBlock> {
    this.#live();
    const scratch = this.#scratchFor(unit, slot);
    const run = async (): Promise<DecodedBlock> => {
      this.#live();
      const generation = ++scratch.generation;
      const resident = this.#resident.get(unit.prefix)!;
      const bytes = unit.elements * 2;
      // blocks of unequal size decode into the front of the buffer sized for the largest
      if (bytes > 0) await decodeDeviceUnit(resident, scratch.buffer);
      if (this.#verify && !this.#checked.has(unit.prefix)) await this.#checkDecoded(unit, scratch);
      return makeBlock(unit, ordinal, scratch, generation, this);
    };
    const result = scratch.queue.then(run, run);
    scratch.queue = result.catch(() => {});
    return result;
  }

  /**
   * Compares each decoded matrix of a unit with the crc32 the manifest recorded for the original
   * tensor, once per unit. This covers what the unit-buffer crc32 cannot: a manifest edited to
   * reorder or rename members, and any decoder fault. DFloat11 directories carry no checksums.
   */
  async #checkDecoded(unit: UnitInfo, scratch: Scratch): Promise<void> {
    const buffer = scratch.buffer;
    const expected = this.#catalog.manifest?.crc32;
    if (!expected) return;
    // A small reused staging buffer: a fresh unit-sized array costs more in page faults than the crc32.
    const staging = (scratch.staging ??= new Uint8Array(CHECK_CHUNK_BYTES));
    pinForAsync(staging);
    for (const m of unit.members) {
      let crc = 0;
      const end = (m.offset + m.elements) * 2;
      for (let pos = m.offset * 2; pos < end; pos += staging.byteLength) {
        const part = staging.subarray(0, Math.min(staging.byteLength, end - pos));
        await nativeAwait(() => buffer.downloadAsync({ destination: part, offset: pos }), `checking unit '${unit.prefix}'`);
        crc = crc32(part, crc);
      }
      const got = crc.toString(16).padStart(8, '0');
      if (got !== expected[m.name]) {
        throw new InferzipError(
          'CORRUPT_DATA',
          `'${this.path}': matrix '${m.name}' of unit '${unit.prefix}' decodes to data that fails its crc32 (${got}, expected ${String(expected[m.name])}): the file is damaged`,
        );
      }
    }
    this.#checked.add(unit.prefix);
  }

  /**
   * Decodes block `ordinal` into the model's decode buffer and returns views of its
   * matrices. The views stay valid until the next decompressBlock / decompressUnit call.
   */
  decompressBlock(ordinal: number): Promise<DecodedBlock> {
    return this.#decodeInto(this.#blockAt(ordinal), ordinal, 0);
  }

  /**
   * Decodes any unit: a block goes to the block buffer (like decompressBlock), a standalone
   * matrix (e.g. `model.embed_tokens`) to the standalone-unit buffer.
   */
  decompressUnit(prefix: string): Promise<DecodedBlock> {
    const unit = this.units.find((u) => u.prefix === prefix);
    if (!unit) throw new InferzipError('INVALID_ARGUMENT', `no unit '${prefix}' (units: ${this.units.map((u) => u.prefix).join(', ')})`);
    return this.#decodeInto(unit, this.blockUnits.indexOf(unit), 0);
  }

  /**
   * Yields every block in order. With prefetch (the default) block i+1 is decoded into a
   * second buffer while the caller works on block i; a block's views stay valid until the
   * caller asks for the block after next.
   */
  async *blocks(options: { prefetch?: boolean } = {}): AsyncGenerator<DecodedBlock, void, undefined> {
    this.#live();
    const n = this.blockUnits.length;
    if (n === 0) return;
    if (options.prefetch === false) {
      for (let i = 0; i < n; i++) yield await this.decompressBlock(i);
      return;
    }
    let next = this.#decodeInto(this.blockUnits[0]!, 0, 0);
    next.catch(() => {});
    try {
      for (let i = 0; i < n; i++) {
        const block = await next;
        if (i + 1 < n) {
          next = this.#decodeInto(this.blockUnits[i + 1]!, i + 1, ((i + 1) % 2) as 0 | 1);
          next.catch(() => {});
        }
        yield block;
      }
    } finally {
      // Leaving early: let the prefetch finish before the caller can dispose the buffers.
      await next.catch(() => {});
    }
  }

  /** Reads a tensor stored uncompressed (e.g. `model.norm.weight`) from the file, to the host. */
  async readTensor(name: string): Promise<Tensor> {
    this.#live();
    if (!this.rawTensorNames.includes(name)) {
      throw new InferzipError(
        'INVALID_ARGUMENT',
        `'${name}' is not an uncompressed tensor of this model (compressed matrices come from decompressBlock / decompressUnit)`,
      );
    }
    const t = await this.#catalog.reader.read(name);
    const expected = this.#catalog.manifest?.crc32[name];
    if (this.#verify && expected !== undefined) {
      const b = t.data as ArrayBufferView;
      const crc = crc32(new Uint8Array(b.buffer, b.byteOffset, b.byteLength))
        .toString(16)
        .padStart(8, '0');
      if (crc !== expected)
        throw new InferzipError(
          'CORRUPT_DATA',
          `'${this.path}': tensor '${name}' fails its crc32 (${crc}, expected ${expected}): the file is damaged`,
        );
    }
    return t;
  }

  /** Frees the compressed units and the decode buffers and closes the file. Safe to call twice. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#catalog.close();
    for (const r of this.#resident.values()) r.dispose();
    this.#resident.clear();
    for (const d of this.#scratch.values()) for (const s of [...d.block, d.unit]) s?.buffer.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** @internal used by views to refuse reads after dispose */
  get disposed(): boolean {
    return this.#disposed;
  }
}

function makeBlock(unit: UnitInfo, ordinal: number, scratch: Scratch, generation: number, model: CompressedModel): DecodedBlock {
  const check = (name: string): NativeBuffer => {
    if (model.disposed) throw new InferzipError('DISPOSED', `the model holding '${name}' was disposed`);
    if (scratch.generation !== generation) {
      throw new InferzipError(
        'INVALID_ARGUMENT',
        `the view of '${name}' is stale: its decode buffer now holds another block (copy it with toTensor() or toDeviceTensor() to keep it)`,
      );
    }
    return scratch.buffer;
  };
  const device = bufferDevice(scratch.buffer).label;
  const tensors = new Map<string, TensorView>();
  for (const m of unit.members) {
    const byteOffset = m.offset * 2;
    const view: TensorView = {
      name: m.name,
      dtype: 'bf16',
      shape: m.shape,
      offset: m.offset,
      byteOffset,
      elements: m.elements,
      device,
      get buffer() {
        return check(m.name);
      },
      async toTensor() {
        const out = new Uint16Array(m.elements);
        const buf = check(m.name);
        pinForAsync(out);
        await nativeAwait(() => buf.downloadAsync({ destination: out, offset: byteOffset }), `reading '${m.name}'`);
        check(m.name);
        return tensor('bf16', m.shape, out);
      },
      toTensorSync() {
        const out = new Uint16Array(m.elements);
        const buf = check(m.name);
        nativeCall(() => buf.download({ destination: out, offset: byteOffset }), `reading '${m.name}'`);
        return tensor('bf16', m.shape, out);
      },
      toDeviceTensor() {
        const buf = check(m.name);
        const t = DeviceTensor.empty('bf16', m.shape, { device });
        nativeCall(
          () => t.buffer.copyFrom({ source: buf, dstOffset: 0, srcOffset: byteOffset, bytes: m.elements * 2 }),
          `copying '${m.name}'`,
        );
        return t;
      },
    };
    tensors.set(m.name, view);
  }
  return {
    ordinal,
    unit,
    device,
    tensors,
    get(name: string): TensorView {
      const v = tensors.get(name) ?? tensors.get(`${unit.prefix}.${name}`);
      if (!v)
        throw new InferzipError(
          'INVALID_ARGUMENT',
          `block '${unit.prefix}' has no matrix '${name}' (it has ${[...tensors.keys()].join(', ')})`,
        );
      return v;
    },
  };
}
