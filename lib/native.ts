/**
 * Loads the native addon (one .node holding the CPU and, when built with it, the
 * CUDA backend): a local build first, then a prebuilt binary, otherwise a clear error.
 * Its surface is declared once, in types/binding.d.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { NativeBinding } from '../types/binding.js';
import { InferzipError, toInferzipError } from './errors.js';

export type { NativeBackendInfo, NativeBuffer } from '../types/binding.js';
/** The loaded addon (see types/binding.d.ts). */
export type NativeAddon = NativeBinding;

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

const BUFFER_METHODS = ['upload', 'download', 'uploadAsync', 'downloadAsync', 'copyFrom', 'dispose'] as const;

/**
 * NativeBuffer reaches users (DeviceTensor.buffer, the views of CompressedModel), so its methods
 * must throw InferzipError like the rest of the API: the addon throws plain Errors carrying a
 * `code`. The addon's prototype is read-only, so the exported class is a subclass whose methods
 * convert errors (sync throws and async rejections alike); instances stay NativeBuffers for core.
 */
function typedBufferErrors(addon: NativeAddon): NativeAddon {
  const Base = addon.NativeBuffer as unknown as new (args: unknown) => object;
  class NativeBuffer extends Base {}
  const proto = NativeBuffer.prototype as unknown as Record<string, unknown>;
  const baseProto = Base.prototype as unknown as Record<string, unknown>;
  for (const name of BUFFER_METHODS) {
    const original = baseProto[name];
    if (typeof original !== 'function') continue;
    const context = `NativeBuffer.${name}`;
    Object.defineProperty(proto, name, {
      configurable: true,
      writable: true,
      value: function (this: unknown, ...args: unknown[]): unknown {
        let result: unknown;
        try {
          result = (original as (...a: unknown[]) => unknown).apply(this, args);
        } catch (err) {
          throw toInferzipError(err, context);
        }
        return result instanceof Promise ? result.catch((err: unknown) => Promise.reject(toInferzipError(err, context))) : result;
      },
    });
  }
  addon.NativeBuffer = NativeBuffer as unknown as NativeAddon['NativeBuffer'];
  return addon;
}

/** The loaded addon; throws NATIVE_LOAD_FAILED with instructions when it cannot load. */
export function native(): NativeAddon {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const explicit = process.env.INFERZIP_ADDON_PATH;
  try {
    if (explicit) {
      // A specific build (e.g. CI's CPU-only or sanitizer build): a .node file or a folder holding build/ or prebuilds/.
      cached = typedBufferErrors(
        (explicit.endsWith('.node')
          ? require(explicit)
          : (require('node-gyp-build') as (dir: string) => NativeAddon)(explicit)) as NativeAddon,
      );
      return cached;
    }
    const load = require('node-gyp-build') as (dir: string) => NativeAddon;
    cached = typedBufferErrors(load(packageRoot));
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
