/**
 * Loads the native addon (one .node holding the CPU and, when built with it, the
 * CUDA backend): see native() for the order; lib/native-locate.ts lists the places and
 * lib/native-load-error.ts explains a failure.
 * Its surface is declared once, in types/binding.d.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { NativeBinding } from '../types/binding.js';
import { toInferzipError } from './errors.js';
import { nativeLoadFailed, type LoadAttempt } from './native-load-error.js';
import { addonCandidates, type AddonCandidate } from './native-locate.js';

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
 * `code`. The methods are wrapped in place on the addon's own prototype (it defines them
 * writable for this), so buffers the addon creates itself (decode and ToMe outputs) are covered
 * as well as those made from JavaScript; sync throws and async rejections alike.
 */
function typedBufferErrors(addon: NativeAddon): NativeAddon {
  const proto = (addon.NativeBuffer as unknown as { prototype: Record<string, unknown> }).prototype;
  for (const name of BUFFER_METHODS) {
    const original = proto[name];
    // an addon built before its methods were made configurable keeps the plain errors
    if (typeof original !== 'function' || !Object.getOwnPropertyDescriptor(proto, name)?.configurable) continue;
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
  return addon;
}

/**
 * The loaded addon; throws NATIVE_LOAD_FAILED with advice when nothing loads. Tries, in order:
 * INFERZIP_ADDON_PATH (alone, when set), the local build (build/Release), a prebuild
 * (prebuilds/<platform>-<arch>/), then the prebuilt platform package (@inferzip/<platform>-<arch>[-libc]).
 * A place that holds a binary which fails to load does not stop the search: a stale local
 * build must not hide a good package; the error lists every place and why it failed.
 */
export function native(): NativeAddon {
  if (cached) return cached;
  const explicit = process.env.INFERZIP_ADDON_PATH || undefined;
  const { addon, from } = loadAddon(addonCandidates(packageRoot, explicit), explicit);
  loadedFrom = from;
  cached = typedBufferErrors(addon);
  return cached;
}

/** Loads the first candidate that holds a binary which loads; exported for the loader tests. */
export function loadAddon(candidates: AddonCandidate[], explicit: string | undefined): { addon: NativeAddon; from: AddonCandidate } {
  const require = createRequire(import.meta.url);
  const attempts: LoadAttempt[] = [];
  for (const candidate of candidates) {
    if (!candidate.file) {
      attempts.push({ candidate });
      continue;
    }
    try {
      return { addon: require(candidate.file) as NativeAddon, from: candidate };
    } catch (err) {
      attempts.push({ candidate, error: err instanceof Error ? err : new Error(String(err)) });
    }
  }
  throw nativeLoadFailed(attempts, explicit);
}

let loadedFrom: AddonCandidate | undefined;

/** Where the loaded addon came from (which source and file); undefined before the first load. */
export function addonOrigin(): { source: AddonCandidate['source']; file: string } | undefined {
  return loadedFrom?.file ? { source: loadedFrom.source, file: loadedFrom.file } : undefined;
}
