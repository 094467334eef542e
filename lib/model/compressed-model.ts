/**
 * Transformer-block-level decompression: every unit stays compressed in device memory;
 * a block is decoded just before it is needed into one reused BF16 buffer sized for the
 * largest block, and its matrices are views into that buffer. Standalone units (embedding,
 * lm_head) decode into a buffer of their own, allocated on first use. `blocks()` decodes block i+1
 * into a second buffer while the caller works on block i. Decoding runs off the main
 * thread (the codec's async decode: a libuv worker on the CPU, a CUDA stream on a GPU).
 */
import { resolveDevice, type DeviceKind } from '../backend.js';
import { DeviceTensor } from '../device-tensor.js';
import { InferzipError, nativeAwait, nativeCall } from '../errors.js';
import { pinForAsync } from '../ops.js';
import { native, type NativeBuffer } from '../native.js';
import { tensor, type Tensor } from '../tensor.js';
import { crc32 } from '../checksum.js';

import { decodeDeviceUnit, readUnit, unitCrc32, uploadUnit, type DeviceUnit } from './codec.js';
import { openCatalogAsync, type ModelCatalog, type UnitInfo } from './catalog.js';
import { manifestStructureProblems } from './manifest-checks.js';

/** Bytes of decoded data checked per step (see #checkDecoded). */
const CHECK_CHUNK_BYTES = 4 << 20;

export interface CompressedModelOptions {
  /** Where compressed units and the decode buffers live: 'cpu', 'cuda' or 'auto' (default). */
  device?: DeviceKind | 'auto';
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
  readonly device: DeviceKind;
  /** Every unit (blocks, then standalone matrices). */
  readonly units: readonly UnitInfo[];
  /** The transformer-block units, in order. */
  readonly blockUnits: readonly UnitInfo[];
  /** Tensors stored uncompressed (norms, biases, matrices DFloat11 cannot code): read them with readTensor. */
  readonly rawTensorNames: readonly string[];
  readonly #catalog: ModelCatalog;
  readonly #resident: Map<string, DeviceUnit>;
  /** Decode buffers of the blocks: [0] for decompressBlock and even blocks, [1] for prefetching. */
  readonly #blockScratch: (Scratch | undefined)[] = [undefined, undefined];
  /** Decode buffer of standalone units (embedding, lm_head), allocated on first use. */
  #unitScratch: Scratch | undefined;
  readonly #maxBlockElements: number;
  readonly #maxUnitElements: number;
  readonly #verify: boolean;
  /** Units whose decoded matrices matched their crc32 once (each is checked on first decode). */
  readonly #checked = new Set<string>();
  #disposed = false;

  private constructor(catalog: ModelCatalog, device: DeviceKind, resident: Map<string, DeviceUnit>, verify: boolean) {
    this.#catalog = catalog;
    this.#verify = verify;
    this.rawTensorNames = catalog.rawTensors.map((t) => t.name);
    this.path = catalog.path;
    this.format = catalog.format;
    this.device = device;
    this.units = catalog.units;
    this.blockUnits = catalog.units.filter((u) => u.kind === 'block');
    this.#resident = resident;
    this.#maxBlockElements = Math.max(0, ...this.blockUnits.map((u) => u.elements));
    this.#maxUnitElements = Math.max(0, ...catalog.units.filter((u) => u.kind !== 'block').map((u) => u.elements));
  }

  /**
   * Opens an inferzip compressed file or a DFloat11 directory and copies every unit to
   * the device, compressed.
   * @example
   *   using model = await CompressedModel.open('/tmp/stories.df11.safetensors', { device: 'auto' });
   *   for await (const block of model.blocks({ prefetch: true })) {
   *     const q = await block.get('self_attn.q_proj.weight').toTensor();
   *   }
   */
  static async open(path: string, options: CompressedModelOptions = {}): Promise<CompressedModel> {
    const device = resolveDevice(options.device);
    if (options.verify !== undefined && typeof options.verify !== 'boolean') {
      throw new InferzipError('INVALID_ARGUMENT', `CompressedModel.open: verify must be true or false, got ${String(options.verify)}`);
    }
    const verify = options.verify !== false;
    const catalog = await openCatalogAsync(path);
    const resident = new Map<string, DeviceUnit>();
    try {
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
        resident.set(u.prefix, await uploadUnit(encoded, device));
      }
    } catch (err) {
      for (const r of resident.values()) r.dispose();
      catalog.close();
      throw err;
    }
    return new CompressedModel(catalog, device, resident, verify);
  }

  get numBlocks(): number {
    return this.blockUnits.length;
  }

  /** Device memory held now: compressed units plus the decode buffers allocated so far. */
  get deviceBytes(): DeviceBytes {
    let compressed = 0;
    for (const r of this.#resident.values()) compressed += r.bytes;
    const scratch = [...this.#blockScratch, this.#unitScratch].reduce((s, b) => s + (b && !b.buffer.disposed ? b.buffer.bytes : 0), 0);
    return { compressed, scratch, total: compressed + scratch };
  }

  /** Bytes of one block decode buffer (the largest block, BF16). */
  get blockBufferBytes(): number {
    return this.#maxBlockElements * 2;
  }

  #live(): void {
    if (this.#disposed) throw new InferzipError('DISPOSED', `CompressedModel '${this.path}' was disposed`);
  }

  #allocScratch(elements: number): Scratch {
    const buffer = nativeCall(
      () => new (native().NativeBuffer)({ device: this.device, bytes: elements * 2, zero: false }),
      'CompressedModel decode buffer',
    );
    return { buffer, generation: 0, queue: Promise.resolve() };
  }

  #scratchFor(unit: UnitInfo, slot: 0 | 1): Scratch {
    if (unit.kind === 'block') return (this.#blockScratch[slot] ??= this.#allocScratch(this.#maxBlockElements));
    return (this.#unitScratch ??= this.#allocScratch(this.#maxUnitElements));
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
    for (const s of [...this.#blockScratch, this.#unitScratch]) s?.buffer.dispose();
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
        const t = DeviceTensor.empty('bf16', m.shape, { device: buf.device as DeviceKind });
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
