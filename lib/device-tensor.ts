/**
 * DeviceTensor: a tensor whose memory lives on the active backend (cudaMalloc'd GPU
 * memory, or host memory for the CPU backend). Dispose it explicitly (`dispose()` or a
 * `using` declaration); a FinalizationRegistry frees it if you forget. Each tensor knows its
 * device ('cpu' or 'cuda:N'); operations run on their tensors' device and refuse tensors of two
 * devices (DEVICE_MISMATCH).
 */
import { deviceId, resolveDevice, type DeviceId, type DeviceString } from './backend.js';
import { InferzipError, check, nativeAwait, nativeCall } from './errors.js';
import { limits } from './limits.js';
import { pinForAsync, runPinned } from './ops.js';
import { native, type NativeBuffer } from './native.js';
import {
  allocArray,
  assertTensor,
  elementSize,
  fromNdarray,
  shapeSize,
  tensor,
  type DType,
  type NdArrayLike,
  type Tensor,
} from './tensor.js';

export interface DeviceOptions {
  /** 'cpu', 'cuda' (the current CUDA device), 'cuda:N' or 'auto' (the active backend, the default). */
  device?: DeviceString | 'auto';
}

/** The device of a native buffer. */
export function bufferDevice(buffer: NativeBuffer): DeviceId {
  return buffer.device === 'cuda' ? deviceId('cuda', buffer.deviceIndex) : deviceId('cpu');
}

/**
 * Throws DEVICE_MISMATCH unless every tensor (undefined entries skipped) lives on one device;
 * `what` names the operation. Returns that device.
 */
export function sameDevice(what: string, tensors: Record<string, DeviceTensor | undefined>): DeviceId | undefined {
  let first: [string, DeviceId] | undefined;
  for (const [name, t] of Object.entries(tensors)) {
    if (!t) continue;
    const id = t.deviceId;
    if (!first) first = [name, id];
    else if (first[1].label !== id.label) {
      throw new InferzipError(
        'DEVICE_MISMATCH',
        `${what}: ${first[0]} is on ${first[1].label} but ${name} is on ${id.label}; copy one to the other's device first (download() and DeviceTensor.from(host, { device: '${first[1].label}' }))`,
      );
    }
  }
  return first?.[1];
}

// Frees native memory of tensors that were dropped without dispose().
const registry = new FinalizationRegistry<NativeBuffer>((buffer) => {
  if (!buffer.disposed) buffer.dispose();
});

/**
 * A tensor in backend memory: GPU memory on CUDA, host memory owned by the addon on the
 * CPU. Dispose it (or use `using`) to free the memory at once.
 * @example
 * using d = await DeviceTensor.from(tensor('f32', [2, 2], new Float32Array([1, 2, 3, 4])));
 * const back = await d.download();
 */
export class DeviceTensor<D extends DType = DType> implements Disposable {
  readonly dtype: D;
  readonly shape: readonly number[];
  #buffer: NativeBuffer | undefined;

  /** Wraps an existing native buffer (used by inferzip's own operations). */
  constructor(dtype: D, shape: readonly number[], buffer: NativeBuffer) {
    const n = shapeSize(shape);
    check(
      buffer.bytes >= n * elementSize(dtype),
      `buffer of ${buffer.bytes} bytes is too small for ${dtype}[${shape.join(', ')}]`,
      'SHAPE_MISMATCH',
    );
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.#buffer = buffer;
    registry.register(this, buffer, this);
  }

  /** Allocates a tensor (zero-filled when `zero` is true). */
  static empty<D extends DType>(dtype: D, shape: readonly number[], options: DeviceOptions & { zero?: boolean } = {}): DeviceTensor<D> {
    const bytes = shapeSize(shape) * elementSize(dtype);
    const limit = limits().maxAllocationBytes;
    check(
      bytes <= limit,
      `${dtype}[${shape.join(', ')}] needs ${bytes} bytes, over the ${limit}-byte limit of one allocation; the shape is probably wrong`,
    );
    const device = resolveDevice(options.device, 'DeviceTensor device');
    const buffer = nativeCall(
      () => new (native().NativeBuffer)({ device: device.kind, deviceIndex: device.index, bytes, zero: options.zero ?? false }),
      'DeviceTensor.empty',
    );
    return new DeviceTensor(dtype, shape, buffer);
  }

  /** Copies a host tensor (or ndarray) to the device, synchronously. */
  static fromSync<D extends DType>(source: Tensor<D> | NdArrayLike, options: DeviceOptions = {}): DeviceTensor<D> {
    const t = fromNdarray(source) as Tensor<D>;
    const out = DeviceTensor.empty(t.dtype, t.shape, options);
    nativeCall(() => out.buffer.upload({ source: t.data, offset: 0 }), 'DeviceTensor.from');
    return out;
  }

  /** Copies a host tensor (or ndarray) to the device off the main thread. */
  static async from<D extends DType>(source: Tensor<D> | NdArrayLike, options: DeviceOptions = {}): Promise<DeviceTensor<D>> {
    const t = fromNdarray(source) as Tensor<D>;
    const out = DeviceTensor.empty(t.dtype, t.shape, options);
    try {
      await runPinned(t.data, 'DeviceTensor.from', () => out.buffer.uploadAsync({ source: t.data, offset: 0 }));
    } catch (err) {
      out.dispose();
      throw err;
    }
    return out;
  }

  /** The native buffer; throws DISPOSED after dispose(). */
  get buffer(): NativeBuffer {
    const b = this.#buffer;
    if (!b || b.disposed) throw new InferzipError('DISPOSED', `this DeviceTensor (${this.dtype}[${this.shape.join(', ')}]) was disposed`);
    return b;
  }

  /** 'cpu' or 'cuda:N'. */
  get device(): 'cpu' | `cuda:${number}` {
    return this.deviceId.label;
  }
  /** The device as kind and index. */
  get deviceId(): DeviceId {
    return bufferDevice(this.buffer);
  }
  get size(): number {
    return shapeSize(this.shape);
  }
  get byteLength(): number {
    return this.size * elementSize(this.dtype);
  }
  get disposed(): boolean {
    return !this.#buffer || this.#buffer.disposed;
  }

  /** Copies the tensor back to the host. */
  async download(): Promise<Tensor<D>> {
    const data = allocArray(this.dtype, this.size);
    pinForAsync(data);
    await nativeAwait(() => this.buffer.downloadAsync({ destination: data, offset: 0 }), 'DeviceTensor.download');
    return tensor(this.dtype, this.shape, data);
  }

  downloadSync(): Tensor<D> {
    const data = allocArray(this.dtype, this.size);
    nativeCall(() => this.buffer.download({ destination: data, offset: 0 }), 'DeviceTensor.download');
    return tensor(this.dtype, this.shape, data);
  }

  /** Overwrites the contents from a host tensor of the same dtype and shape. */
  uploadSync(source: Tensor<D>): void {
    this.#checkSame(source);
    nativeCall(() => this.buffer.upload({ source: source.data, offset: 0 }), 'DeviceTensor.upload');
  }

  async upload(source: Tensor<D>): Promise<void> {
    this.#checkSame(source);
    await runPinned(source.data, 'DeviceTensor.upload', () => this.buffer.uploadAsync({ source: source.data, offset: 0 }));
  }

  #checkSame(source: Tensor): void {
    assertTensor(source, 'source');
    check(source.dtype === this.dtype, `source is ${source.dtype} but this tensor is ${this.dtype}`, 'DTYPE_MISMATCH');
    check(
      source.shape.length === this.shape.length && source.shape.every((d, i) => d === this.shape[i]),
      `source shape [${source.shape.join(', ')}] differs from [${this.shape.join(', ')}]`,
      'SHAPE_MISMATCH',
    );
  }

  /** Frees the memory now. Safe to call twice. */
  dispose(): void {
    const b = this.#buffer;
    if (!b) return;
    this.#buffer = undefined;
    registry.unregister(this);
    b.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
