/**
 * Which backend runs inferzip's kernels. CUDA is chosen when the addon was built with it
 * and a device answers; otherwise the C++ CPU backend. `INFERZIP_DEVICE=cpu|cuda` forces a
 * choice (`cuda` without a usable device is a NO_DEVICE error).
 */
import { InferzipError, check } from './errors.js';
import { native } from './native.js';
import { checkThreads } from './validate.js';

export type DeviceKind = 'cpu' | 'cuda';

export interface GpuDevice {
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

function envDevice(): DeviceKind | undefined {
  const raw = process.env.INFERZIP_DEVICE?.trim().toLowerCase();
  if (!raw || raw === 'auto') return undefined;
  if (raw !== 'cpu' && raw !== 'cuda') {
    throw new InferzipError('INVALID_ARGUMENT', `INFERZIP_DEVICE must be 'cpu', 'cuda' or 'auto' (got '${raw}')`);
  }
  return raw;
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
 * Chooses the backend for everything created afterwards ('auto' re-detects).
 * @example
 * setDevice('cpu'); // run every kernel on the CPU backend
 */
export function setDevice(device: DeviceKind | 'auto'): DeviceKind {
  check(device === 'cpu' || device === 'cuda' || device === 'auto', `device must be 'cpu', 'cuda' or 'auto' (got '${String(device)}')`);
  if (device === 'cuda') requireCuda("setDevice('cuda')");
  selected = device === 'auto' ? undefined : device;
  return activeDevice();
}

/** Resolves a per-call device option against the active backend. */
export function resolveDevice(device: DeviceKind | 'auto' | undefined): DeviceKind {
  if (device === undefined || device === 'auto') return activeDevice();
  check(device === 'cpu' || device === 'cuda', `device must be 'cpu', 'cuda' or 'auto' (got '${String(device)}')`);
  if (device === 'cuda') requireCuda("device: 'cuda'");
  return device;
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
  let reason: string;
  if (name === 'cuda') reason = `CUDA device found: ${info.devices[0]?.name ?? 'unknown'}`;
  else if (envDevice() === 'cpu' || selected === 'cpu')
    reason = info.cudaAvailable ? 'CPU forced (INFERZIP_DEVICE or setDevice)' : `CPU: ${info.reason}`;
  else reason = `CPU: ${info.reason}`;
  return {
    name,
    cudaCompiled: info.cudaCompiled,
    devices: info.devices.map((d) => ({ ...d })),
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
