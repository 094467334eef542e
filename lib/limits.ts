/**
 * The limits the native layer enforces, read once from the addon (like node-llama-cpp's
 * getConsts()), so TypeScript validates against the same numbers instead of restating them.
 * @internal
 */
import { native } from './native.js';
import type { NativeLimits } from '../types/binding.js';

let cached: Readonly<NativeLimits> | undefined;

export function limits(): Readonly<NativeLimits> {
  return (cached ??= Object.freeze({ ...native().limits() }));
}
