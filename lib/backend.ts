/**
 * Which backend runs inferzip's kernels. CUDA is chosen when the addon was built with it
 * and a device answers; otherwise the C++ CPU backend. `INFERZIP_DEVICE=cpu|cuda|cuda:N` forces a
 * choice (`cuda` without a usable device is a NO_DEVICE error).
 *
 * Devices are named by strings: 'cpu', 'cuda:N' (CUDA device N, as the driver numbers them) and
 * 'cuda' (the current CUDA device: cuda:0 unless setDevice('cuda:N') chose another). parseDevice
 * is the one parser every `device` option goes through.
 */
import { InferzipError, check } from './errors.js';
import { native } from './native.js';
import { checkThreads } from './validate.js';

export type DeviceKind = 'cpu' | 'cuda';

/** A device as options name it: 'cpu', 'cuda' (the current CUDA device) or 'cuda:N'. */
export type DeviceString = 'cpu' | 'cuda' | `cuda:${number}`;

/** A device resolved to a backend and, for CUDA, a device index. */
export interface DeviceId {
  kind: DeviceKind;
  /** The CUDA device index (0 for the CPU). */
  index: number;
  /** 'cpu' or 'cuda:N': what DeviceTensor.device and placements report. */
  label: 'cpu' | `cuda:${number}`;
}

export interface GpuDevice {
  /** Position in `devices`, the N of 'cuda:N'. */
  index: number;
  /** 'cuda:N'. */
  device: `cuda:${number}`;
  /** Marketing name, e.g. "NVIDIA H100 80GB HBM3". */
  name: string;
  /** Total device memory in bytes. */
  memory: number;
  /** "major.minor", e.g. "9.0". */
  computeCapability: string;
}

export interface BackendInfo {
  /** The backend new device tensors and kernels use. */
  name: DeviceKind;
  /** The device 'auto' and 'cuda' mean now: 'cpu' or 'cuda:N'. */
  device: 'cpu' | `cuda:${number}`;
  /** True when this build of the addon contains the CUDA kernels. */
  cudaCompiled: boolean;
  /** CUDA devices that answered (empty without a driver or GPU). */
  devices: GpuDevice[];
  /** Why this backend was chosen (and why CUDA is unavailable, when it is). */
  reason: string;
  /** Threads the CPU backend uses. */
  cpuThreads: number;
  /**
   * Vector instructions the CPU kernels use, found at run time: 'avx512' (AVX-512 F/BW/DQ/VL on top
   * of AVX2), 'avx2' (AVX2 + FMA + F16C) or 'portable' (plain loops: another CPU, or
   * INFERZIP_SIMD=portable set before first use; INFERZIP_SIMD=avx2 caps the level at AVX2).
   */
  simd: 'avx512' | 'avx2' | 'portable';
  /**
   * How integrity checksums (CRC-32) are computed: carry-less multiplication on 512-bit
   * ('vpclmulqdq') or 128-bit ('pclmulqdq') registers, or a slicing-by-8 table loop ('portable').
   */
  crc32: 'vpclmulqdq' | 'pclmulqdq' | 'portable';
}

let selected: DeviceKind | undefined;
/** The CUDA device 'cuda' means (setDevice('cuda:N') or INFERZIP_DEVICE=cuda:N). */
let currentCuda: number | undefined;

const DEVICE_PATTERN = /^(cpu|cuda)(?::(0|[1-9][0-9]{0,5}))?$/;

function cudaCount(): number {
  const info = native().backendInfo();
  return info.cudaAvailable ? info.devices.length : 0;
}

function deviceList(): string {
  const n = cudaCount();
  if (n === 0) return 'no CUDA device answered, so only cpu is available';
  return `${n} CUDA device${n === 1 ? '' : 's'} answered: ${Array.from({ length: n }, (_, i) => `cuda:${i}`).join(', ')}`;
}

/**
 * Parses a device string ('cpu', 'cuda', 'cuda:N'); `where` names the option in errors. Returns
 * the kind and, for 'cuda:N', the index (undefined for 'cuda': the current device). Throws
 * INVALID_ARGUMENT for anything else, or for an index at or past the number of CUDA devices,
 * naming what was given and which devices exist; NO_DEVICE for CUDA without a usable device.
 * @example
 * parseDevice('cuda:1'); // { kind: 'cuda', index: 1 }
 */
export function parseDevice(device: unknown, where = 'device'): { kind: DeviceKind; index: number | undefined } {
  const m = typeof device === 'string' ? DEVICE_PATTERN.exec(device) : null;
  if (!m || (m[1] === 'cpu' && m[2] !== undefined)) {
    const shown = typeof device === 'string' ? `'${device}'` : String(device);
    throw new InferzipError(
      'INVALID_ARGUMENT',
      `${where} must be 'cpu', 'cuda' or 'cuda:N' with N a device index, got ${shown} (${deviceList()})`,
    );
  }
  if (m[1] === 'cpu') return { kind: 'cpu', index: undefined };
  requireCuda(`${where} '${device as string}'`);
  if (m[2] === undefined) return { kind: 'cuda', index: undefined };
  const index = Number(m[2]);
  if (index >= cudaCount()) {
    throw new InferzipError('INVALID_ARGUMENT', `${where} '${device as string}' names a device that does not exist: ${deviceList()}`);
  }
  return { kind: 'cuda', index };
}

/** The id of CUDA device `index` (or the current one) or of the CPU. */
export function deviceId(kind: DeviceKind, index?: number): DeviceId {
  if (kind === 'cpu') return { kind, index: 0, label: 'cpu' };
  const i = index ?? currentCudaIndex();
  return { kind, index: i, label: `cuda:${i}` };
}

function currentCudaIndex(): number {
  if (currentCuda !== undefined) return currentCuda;
  envDevice();
  return currentCuda ?? 0;
}

function envDevice(): DeviceKind | undefined {
  const raw = process.env.INFERZIP_DEVICE?.trim().toLowerCase();
  if (!raw || raw === 'auto') return undefined;
  if (!DEVICE_PATTERN.test(raw)) {
    throw new InferzipError('INVALID_ARGUMENT', `INFERZIP_DEVICE must be 'cpu', 'cuda', 'cuda:N' or 'auto' (got '${raw}')`);
  }
  if (raw.startsWith('cuda')) requireCuda(`INFERZIP_DEVICE=${raw}`);
  const { kind, index } = parseDevice(raw, 'INFERZIP_DEVICE');
  if (index !== undefined && currentCuda === undefined) currentCuda = index;
  return kind;
}

function requireCuda(source: string): void {
  const info = native().backendInfo();
  if (!info.cudaAvailable) {
    throw new InferzipError(
      'NO_DEVICE',
      `${source} asks for the CUDA backend, but ${info.reason}. Use 'cpu' or install a CUDA driver and GPU.`,
    );
  }
}

/**
 * The device kernels run on now.
 * @example
 * if (activeDevice() === 'cuda') console.log('kernels run on the GPU');
 */
export function activeDevice(): DeviceKind {
  if (selected) return selected;
  const forced = envDevice();
  if (forced === 'cuda') requireCuda('INFERZIP_DEVICE=cuda');
  selected = forced ?? (native().backendInfo().cudaAvailable ? 'cuda' : 'cpu');
  return selected;
}

/**
 * Chooses the backend for everything created afterwards ('auto' re-detects); 'cuda:N' also makes
 * N the current CUDA device (what 'cuda' and 'auto' mean from then on).
 * @example
 * setDevice('cpu'); // run every kernel on the CPU backend
 */
export function setDevice(device: DeviceString | 'auto'): DeviceKind {
  if (device === 'auto') {
    selected = undefined;
    currentCuda = undefined;
    return activeDevice();
  }
  const { kind, index } = parseDevice(device, 'setDevice');
  selected = kind;
  if (index !== undefined) currentCuda = index;
  return activeDevice();
}

/** Resolves a per-call device option ('auto' or absent: the active backend). */
export function resolveDevice(device: DeviceString | 'auto' | undefined, where = 'device'): DeviceId {
  if (device === undefined || device === 'auto') return deviceId(activeDevice());
  const { kind, index } = parseDevice(device, where);
  return deviceId(kind, index);
}

/**
 * Describes the backend in use, the GPUs found and why.
 * @example
 * const info = backend();
 * console.log(info.name, info.reason);
 */
export function backend(): BackendInfo {
  const info = native().backendInfo();
  const name = activeDevice();
  const current = deviceId(name);
  let reason: string;
  if (name === 'cuda') reason = `CUDA device found: ${info.devices[current.index]?.name ?? 'unknown'}`;
  else if (envDevice() === 'cpu' || selected === 'cpu')
    reason = info.cudaAvailable ? 'CPU forced (INFERZIP_DEVICE or setDevice)' : `CPU: ${info.reason}`;
  else reason = `CPU: ${info.reason}`;
  return {
    name,
    device: current.label,
    cudaCompiled: info.cudaCompiled,
    devices: info.devices.map((d, index) => ({ index, device: `cuda:${index}` as const, ...d })),
    reason,
    cpuThreads: info.cpuThreads,
    simd: info.simd,
    crc32: info.crc32,
  };
}

/**
 * Sets how many threads the CPU backend uses (0 = all cores). Returns the count in effect.
 * @example
 * setThreads(1); // single-threaded CPU kernels
 */
export function setThreads(threads: number): number {
  check(threads !== undefined, 'setThreads needs a thread count (0 = all cores)');
  return native().setThreads({ threads: checkThreads(threads)! });
}

/** What inferzip holds on one device now (memory it allocated itself; the CUDA context is not counted). */
export interface DeviceMemoryStats {
  /** 'cpu' (host memory owned by the addon: CPU-backend tensors, unit buffers) or 'cuda:N'. */
  device: 'cpu' | `cuda:${number}`;
  /** Bytes allocated now. */
  bytes: number;
  /** Most bytes allocated at once since the process started. */
  peakBytes: number;
  /** Live allocations. */
  allocations: number;
  /** The device's memory (CUDA only). */
  totalBytes?: number;
}

/**
 * Memory inferzip holds, per device: the CPU first, then every CUDA device that answered.
 * @example
 * for (const m of memoryStats()) console.log(m.device, m.bytes);
 */
export function memoryStats(): DeviceMemoryStats[] {
  const info = native().backendInfo();
  return native()
    .memoryStats()
    .map((m, i) => (i === 0 ? { ...m } : { ...m, totalBytes: info.devices[i - 1]?.memory ?? 0 }));
}
