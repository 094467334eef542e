/**
 * Opens what Hugging Face ships: a single .safetensors file, a directory holding
 * model.safetensors, or a sharded model (model.safetensors.index.json + shards).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';

import { InferzipError } from '../errors.js';
import type { SafetensorsEntry } from './header.js';
import { BaseReader, SafetensorsFile, readRegularTextFile, type SafetensorsReader } from './reader.js';

/**
 * Tensors spread over several files, presented as one reader.
 * @example
 * using model = openSafetensors('model-dir/'); // every shard of the directory
 * console.log(model.tensors.length);
 */
export class ShardedSafetensors extends BaseReader {
  readonly tensors: readonly SafetensorsEntry[];
  readonly metadata: Readonly<Record<string, string>>;
  readonly shards: readonly SafetensorsFile[];
  /** Index metadata (e.g. total_size) from model.safetensors.index.json. */
  readonly indexMetadata: Readonly<Record<string, unknown>>;
  readonly #owner: Map<string, SafetensorsFile>;

  constructor(shards: SafetensorsFile[], indexMetadata: Record<string, unknown>, weightMap?: Record<string, string>) {
    super();
    this.shards = shards;
    this.indexMetadata = indexMetadata;
    this.#owner = new Map();
    const tensors: SafetensorsEntry[] = [];
    for (const shard of shards) {
      for (const e of shard.tensors) {
        if (this.#owner.has(e.name)) {
          throw new InferzipError(
            'CORRUPT_DATA',
            `tensor '${e.name}' appears in both '${this.#owner.get(e.name)!.path}' and '${shard.path}'`,
          );
        }
        this.#owner.set(e.name, shard);
        tensors.push(e);
      }
    }
    if (weightMap) {
      for (const [name, file] of Object.entries(weightMap)) {
        const owner = this.#owner.get(name);
        if (!owner) throw new InferzipError('CORRUPT_DATA', `the index lists '${name}' in '${file}', but no shard holds it`);
        if (basename(owner.path) !== file)
          throw new InferzipError('CORRUPT_DATA', `the index lists '${name}' in '${file}', but it is in '${basename(owner.path)}'`);
      }
    }
    this.tensors = tensors;
    this.metadata = shards[0]?.metadata ?? {};
  }

  /** The shard that holds a tensor. */
  shardOf(name: string): SafetensorsFile {
    this.entry(name);
    return this.#owner.get(name)!;
  }
  readBytesSync(name: string): Uint8Array {
    return this.shardOf(name).readBytesSync(name);
  }
  readBytes(name: string): Promise<Uint8Array> {
    return this.shardOf(name).readBytes(name);
  }
  close(): void {
    for (const s of this.shards) s.close();
  }
}

function openIndex(indexPath: string): ShardedSafetensors {
  let index: { metadata?: Record<string, unknown>; weight_map?: Record<string, unknown> };
  try {
    index = JSON.parse(readRegularTextFile(indexPath)) as typeof index;
  } catch (err) {
    if (err instanceof InferzipError) throw err;
    throw new InferzipError('CORRUPT_DATA', `cannot parse '${indexPath}': ${(err as Error).message}`, { cause: err });
  }
  const map = index?.weight_map;
  if (!map || typeof map !== 'object' || Array.isArray(map))
    throw new InferzipError('CORRUPT_DATA', `'${indexPath}' has no weight_map object`);
  const files: string[] = [];
  for (const [name, file] of Object.entries(map)) {
    if (
      typeof file !== 'string' ||
      file.length === 0 ||
      isAbsolute(file) ||
      file.includes('/') ||
      file.includes('\\') ||
      file === '..' ||
      file === '.'
    ) {
      throw new InferzipError(
        'CORRUPT_DATA',
        `'${indexPath}': weight_map['${name}'] = ${JSON.stringify(file)} is not a file name in the model directory`,
      );
    }
    if (!files.includes(file)) files.push(file);
  }
  const dir = dirname(indexPath);
  const shards: SafetensorsFile[] = [];
  try {
    for (const f of files) shards.push(SafetensorsFile.open(join(dir, f)));
    return new ShardedSafetensors(shards, index.metadata ?? {}, map as Record<string, string>);
  } catch (err) {
    for (const s of shards) s.close();
    throw err;
  }
}

/**
 * Opens a .safetensors file, a model.safetensors.index.json, or a model directory.
 * @example
 *   using model = openSafetensors('fixtures/stories260K');
 *   const w = await model.read('model.embed_tokens.weight');
 */
export function openSafetensors(path: string): SafetensorsReader {
  let stat;
  try {
    stat = statSync(path);
  } catch (err) {
    throw new InferzipError('IO_ERROR', `cannot open '${path}': ${(err as Error).message}`, { cause: err });
  }
  if (stat.isDirectory()) {
    const index = join(path, 'model.safetensors.index.json');
    if (existsSync(index)) return openIndex(index);
    const single = join(path, 'model.safetensors');
    if (existsSync(single)) return SafetensorsFile.open(single);
    const files = readdirSync(path)
      .filter((f) => f.endsWith('.safetensors'))
      .sort();
    if (files.length === 0) throw new InferzipError('INVALID_ARGUMENT', `'${path}' holds no .safetensors file`);
    const shards: SafetensorsFile[] = [];
    try {
      for (const f of files) shards.push(SafetensorsFile.open(join(path, f)));
      return files.length === 1 ? shards[0]! : new ShardedSafetensors(shards, {});
    } catch (err) {
      for (const s of shards) s.close();
      throw err;
    }
  }
  if (path.endsWith('.json')) return openIndex(path);
  return SafetensorsFile.open(path);
}
