/**
 * Loads the native addon (one .node holding the CPU and, when built with it, the
 * CUDA backend): a local build first, then a prebuilt binary, otherwise a clear error.
 *
 * Feature modules add their native functions to `NativeAddon` by module augmentation:
 *   declare module '../native.js' { interface NativeAddon { myOp(...): ... } }
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { InferzipError } from './errors.js';

/** Host or device memory owned by the addon (see DeviceTensor). */
export interface NativeBuffer {
  readonly bytes: number;
  readonly device: 'cpu' | 'cuda' | 'disposed';
  readonly disposed: boolean;
  upload(source: ArrayBufferView | ArrayBuffer, offset: number): void;
  download(destination: ArrayBufferView | ArrayBuffer, offset: number): void;
  uploadAsync(source: ArrayBufferView | ArrayBuffer, offset: number): Promise<void>;
  downloadAsync(destination: ArrayBufferView | ArrayBuffer, offset: number): Promise<void>;
  copyFrom(source: NativeBuffer, dstOffset: number, srcOffset: number, bytes: number): void;
  dispose(): void;
}

export interface NativeBackendInfo {
  cudaCompiled: boolean;
  cudaAvailable: boolean;
  reason: string;
  devices: { name: string; memory: number; computeCapability: string }[];
  cpuThreads: number;
  simd: 'avx512' | 'avx2' | 'portable';
  /** The largest single allocation the addon accepts (a guard against corrupt sizes). */
  maxAllocationBytes: number;
  buildSystem?: string;
}

export interface NativeAddon {
  NativeBuffer: new (device: 'cpu' | 'cuda', bytes: number, zero?: boolean) => NativeBuffer;
  backendInfo(): NativeBackendInfo;
  setThreads(threads: number): number;
}

/** The package root (holds package.json, build/ and prebuilds/). */
export const packageRoot: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'inferzip') return dir;
      } catch {
        // keep walking up
      }
    }
    dir = dirname(dir);
  }
  return join(dirname(fileURLToPath(import.meta.url)), '..');
})();

let cached: NativeAddon | undefined;

/** The loaded addon; throws NATIVE_LOAD_FAILED with instructions when it cannot load. */
export function native(): NativeAddon {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const explicit = process.env.INFERZIP_ADDON_PATH;
  try {
    if (explicit) {
      // A specific build (e.g. CI's CPU-only or sanitizer build): a .node file or a folder holding build/ or prebuilds/.
      cached = (explicit.endsWith('.node') ? require(explicit) : (require('node-gyp-build') as (dir: string) => NativeAddon)(explicit)) as NativeAddon;
      return cached;
    }
    const load = require('node-gyp-build') as (dir: string) => NativeAddon;
    cached = load(packageRoot);
    return cached;
  } catch (err) {
    const howToFix =
      'Build it from source with `npm rebuild inferzip` (needs CMake or node-gyp, and a C++17 compiler; nvcc adds the CUDA backend), ' +
      'or `npm run build:native` in a clone of the repository.';
    if (explicit) {
      throw new InferzipError(
        'NATIVE_LOAD_FAILED',
        `the inferzip native addon could not be loaded from INFERZIP_ADDON_PATH=${explicit} (${(err as Error).message}). ` +
          'Point INFERZIP_ADDON_PATH at a built inferzip.node or at a folder holding build/Release/ or prebuilds/, or unset it. ' +
          howToFix,
        { cause: err },
      );
    }
    throw new InferzipError(
      'NATIVE_LOAD_FAILED',
      `the inferzip native addon could not be loaded (${(err as Error).message}). ` +
        `No local build (build/Release) and no prebuilt binary for ${process.platform}-${process.arch} loaded. ` +
        howToFix,
      { cause: err },
    );
  }
}
