/**
 * What a model input is: one .safetensors file, or shards (with the index json when there
 * is one). The compressor needs each file's exact header and the index bytes to rebuild them.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';

import { readRegularFileBytes } from '../safetensors/reader.js';
import { InferzipError } from '../errors.js';
import { SafetensorsFile, ShardedSafetensors, openSafetensors, type SafetensorsReader } from '../safetensors/index.js';

export interface ModelSource extends Disposable {
  readonly kind: 'file' | 'sharded';
  readonly reader: SafetensorsReader;
  readonly files: readonly SafetensorsFile[];
  /** The shard index (model.safetensors.index.json), byte for byte, when there is one. */
  readonly index?: { name: string; bytes: Uint8Array };
  close(): void;
}

function indexPathOf(input: string): string | undefined {
  if (input.endsWith('.json')) return input;
  try {
    if (statSync(input).isDirectory()) {
      const p = join(input, 'model.safetensors.index.json');
      if (existsSync(p)) return p;
    }
  } catch {
    // openSafetensors reports a missing input with a clear IO_ERROR
  }
  return undefined;
}

/** Opens a model input (file, directory, or index json). */
export function openModelSource(input: string): ModelSource {
  const reader = openSafetensors(input);
  try {
    let files: SafetensorsFile[];
    if (reader instanceof SafetensorsFile) files = [reader];
    else if (reader instanceof ShardedSafetensors) files = [...reader.shards];
    else throw new InferzipError('INTERNAL', `unexpected reader for '${input}'`);
    const kind = reader instanceof ShardedSafetensors ? 'sharded' : 'file';
    const indexPath = kind === 'sharded' ? indexPathOf(input) : undefined;
    const index = indexPath ? { name: basename(indexPath), bytes: readRegularFileBytes(indexPath) } : undefined;
    return {
      kind,
      reader,
      files,
      ...(index ? { index } : {}),
      close: () => reader.close(),
      [Symbol.dispose]: () => reader.close(),
    };
  } catch (err) {
    reader.close();
    throw err;
  }
}
