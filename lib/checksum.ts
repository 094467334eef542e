/**
 * CRC-32 for the integrity checks (compressed models, saved KV caches): the addon's folding
 * implementation (native/core/checksum), bit-identical to zlib.crc32 and 5-12x faster here.
 * Internal: the values land in files, so they must stay zlib-compatible.
 */
import { nativeCall } from './errors.js';
import { native } from './native.js';

/** zlib-compatible CRC-32 of `data`, continuing from `value` (pass a previous result). */
export function crc32(data: ArrayBufferView, value = 0): number {
  return nativeCall(() => native().checksumCrc32({ data, value }), 'crc32');
}

/** crc32 as the 8 lowercase hex digits the manifests store. */
export function crc32Hex(data: ArrayBufferView): string {
  return crc32(data).toString(16).padStart(8, '0');
}
