/** Damage helpers shared by the reliability tests and the mutation fuzzer. */
import { readFileSync, writeFileSync } from 'node:fs';
import { inflateRawSync } from 'node:zlib';

import { MANIFEST_KEY, manifestMetadata, type Manifest } from '../../lib/model/manifest.js';
import { SafetensorsFile, writeSafetensorsSync, type SafetensorsWriteEntry } from '../../lib/safetensors/index.js';

/** Absolute file offset of byte `at` of tensor `name`'s data. */
export function tensorByteOffset(path: string, name: string, at = 0): number {
  using f = SafetensorsFile.open(path);
  const e = f.entry(name);
  return f.dataStart + e.dataOffsets[0] + at;
}

/** Copies `src` to `dst` with byte `offset` XORed with `mask`. */
export function flipByte(src: string, dst: string, offset: number, mask = 0x01): void {
  const b = readFileSync(src);
  b[offset]! ^= mask;
  writeFileSync(dst, b);
}

/** The manifest of a compressed model as a plain JSON object. */
export function readManifest(path: string): Record<string, unknown> {
  using f = SafetensorsFile.open(path);
  return JSON.parse(inflateRawSync(Buffer.from(f.metadata[MANIFEST_KEY]!, 'base64')).toString('utf8')) as Record<string, unknown>;
}

/** Rewrites `src` into `dst` with the manifest edited by `edit` (tensors unchanged). */
export function rewriteManifest(src: string, dst: string, edit: (m: Record<string, unknown>) => void): void {
  using f = SafetensorsFile.open(src);
  const m = JSON.parse(inflateRawSync(Buffer.from(f.metadata[MANIFEST_KEY]!, 'base64')).toString('utf8')) as Record<string, unknown>;
  edit(m);
  // the edited manifest gets a matching crc32: these files test the checks behind it
  const metadata = { ...f.metadata, ...manifestMetadata(m as unknown as Manifest) };
  const entries: SafetensorsWriteEntry[] = f.tensors.map((e) => ({
    name: e.name,
    dtype: e.dtype,
    shape: e.shape,
    data: f.readBytesSync(e.name),
  }));
  writeSafetensorsSync(dst, entries, { metadata });
}
