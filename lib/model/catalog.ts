/**
 * What a compressed model holds, whichever way it was written: an inferzip file (the
 * manifest names every unit's tensors and shapes) or a published DFloat11 directory
 * (config.json `dfloat11_config` names units by pattern; Llama-family configs give the
 * matrices' shapes).
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { readRegularTextFile } from '../safetensors/reader.js';
import { InferzipError } from '../errors.js';
import { SafetensorsFile, openSafetensors, type SafetensorsEntry, type SafetensorsReader } from '../safetensors/index.js';
import { FORMAT_KEY, parseManifest, type ParsedManifest } from './manifest.js';
import { compileUnitPattern, type UnitPattern } from './pattern.js';
import { UNIT_BUFFERS } from './plan.js';
import { llamaShapes } from './llama.js';
import { openSafetensorsFileAsync } from './off-thread.js';

export interface UnitMember {
  /** Tensor name (`model.layers.0.self_attn.q_proj.weight`). */
  readonly name: string;
  /** Its shape (flat `[elements]` when the layout does not say). */
  readonly shape: readonly number[];
  /** First element inside the decoded unit. */
  readonly offset: number;
  readonly elements: number;
}

export interface UnitInfo {
  readonly prefix: string;
  readonly kind: 'block' | 'matrix';
  /** The block number in the prefix (`model.layers.7` -> 7). */
  readonly block?: number;
  readonly members: readonly UnitMember[];
  readonly elements: number;
  /** Bytes of the six stored buffers. */
  readonly bytes: number;
  /** Exponent entropy in bits/weight when known (inferzip files record it). */
  readonly entropy?: number;
}

export interface DFloat11Config {
  version?: string;
  threads_per_block: number[];
  bytes_per_thread: number;
  pattern_dict: Record<string, string[]>;
}

export interface ModelCatalog extends Disposable {
  readonly format: 'inferzip' | 'dfloat11';
  readonly path: string;
  readonly reader: SafetensorsReader;
  /** Units in order: blocks by number, then standalone matrices. */
  readonly units: readonly UnitInfo[];
  /** Tensors stored uncompressed (norms, biases, ...), not counting unit buffers. */
  readonly rawTensors: readonly SafetensorsEntry[];
  readonly manifest?: ParsedManifest;
  /** config.json of a DFloat11 directory. */
  readonly config?: Record<string, unknown>;
  close(): void;
}

function bufferBytes(reader: SafetensorsReader, prefix: string): number {
  return UNIT_BUFFERS.reduce((s, b) => s + (reader.has(`${prefix}.${b}`) ? reader.entry(`${prefix}.${b}`).byteLength : 0), 0);
}

function sortUnits(units: UnitInfo[]): UnitInfo[] {
  const stem = (u: UnitInfo): string => (u.kind === 'block' ? u.prefix.replace(/\d+$/, '') : u.prefix);
  return units.sort((a, b) => {
    if (a.kind !== b.kind) return a.kind === 'block' ? -1 : 1;
    const s = stem(a).localeCompare(stem(b));
    return s !== 0 ? s : (a.block ?? 0) - (b.block ?? 0);
  });
}

function isUnitBuffer(name: string): boolean {
  return UNIT_BUFFERS.some((b) => name.endsWith(`.${b}`));
}

/**
 * Opens a compressed model: an inferzip .safetensors file, or a DFloat11 directory / file.
 * @example
 * using catalog = openCatalog('model.df11.safetensors');
 * console.log(catalog.units.length, 'units');
 */
export function openCatalog(path: string): ModelCatalog {
  let stat;
  try {
    stat = statSync(path);
  } catch (err) {
    throw new InferzipError('IO_ERROR', `cannot open '${path}': ${(err as Error).message}`, { cause: err });
  }
  if (stat.isDirectory()) return openDFloat11(path, join(path, 'config.json'));
  const file = SafetensorsFile.open(path);
  if (file.metadata[FORMAT_KEY] !== undefined) {
    try {
      return inferzipCatalog(path, file);
    } catch (err) {
      file.close();
      throw err;
    }
  }
  file.close();
  const config = join(dirname(path), 'config.json');
  if (existsSync(config)) return openDFloat11(path, config);
  throw new InferzipError(
    'INVALID_ARGUMENT',
    `'${path}' is neither an inferzip compressed model (no '${FORMAT_KEY}' metadata) nor part of a DFloat11 model (no config.json beside it)`,
  );
}

/**
 * openCatalog for the async entry points: a large header and manifest are parsed off the main
 * thread (lib/model/off-thread.ts). DFloat11 directories take the synchronous path (their
 * headers are plain and config.json is small).
 */
export async function openCatalogAsync(path: string): Promise<ModelCatalog> {
  let stat;
  try {
    stat = statSync(path);
  } catch (err) {
    throw new InferzipError('IO_ERROR', `cannot open '${path}': ${(err as Error).message}`, { cause: err });
  }
  if (stat.isDirectory()) return openCatalog(path);
  const { file, manifest } = await openSafetensorsFileAsync(path, true);
  if (file.metadata[FORMAT_KEY] === undefined) {
    file.close();
    return openCatalog(path);
  }
  try {
    return inferzipCatalog(path, file, manifest);
  } catch (err) {
    file.close();
    throw err;
  }
}

function inferzipCatalog(path: string, reader: SafetensorsFile, parsed?: ParsedManifest): ModelCatalog {
  const manifest = parsed ?? parseManifest(reader.metadata, reader.tensors.length);
  const units: UnitInfo[] = manifest.units.map((u) => {
    let offset = 0;
    const members = u.members.map((name) => {
      const e = manifest.tensorIndex.get(name)!.entry;
      const m: UnitMember = { name, shape: e.shape, offset, elements: e.byteLength / 2 };
      offset += m.elements;
      return m;
    });
    return {
      prefix: u.prefix,
      kind: u.kind,
      ...(u.block !== undefined ? { block: u.block } : {}),
      members,
      elements: offset,
      bytes: bufferBytes(reader, u.prefix),
      entropy: u.entropy,
    };
  });
  const gapNames = new Set(manifest.gaps.map((g) => g.name));
  const unitNames = new Set(manifest.units.flatMap((u) => UNIT_BUFFERS.map((b) => `${u.prefix}.${b}`)));
  const rawTensors = reader.tensors.filter((t) => !gapNames.has(t.name) && !unitNames.has(t.name));
  return {
    format: 'inferzip',
    path,
    reader,
    units: sortUnits(units),
    rawTensors,
    manifest,
    close: () => reader.close(),
    [Symbol.dispose]: () => reader.close(),
  };
}

function readConfig(configPath: string): { config: Record<string, unknown>; df11: DFloat11Config } {
  let config: unknown;
  try {
    config = JSON.parse(readRegularTextFile(configPath));
  } catch (err) {
    if (err instanceof InferzipError) throw err;
    throw new InferzipError(
      'INVALID_ARGUMENT',
      `cannot read '${configPath}' (a DFloat11 model needs a config.json with dfloat11_config): ${(err as Error).message}`,
      { cause: err },
    );
  }
  const c = config as Record<string, unknown>;
  const d = c?.dfloat11_config as DFloat11Config | undefined;
  if (!d || typeof d !== 'object')
    throw new InferzipError('INVALID_ARGUMENT', `'${configPath}' has no dfloat11_config: not a DFloat11 model`);
  const bad = (msg: string): never => {
    throw new InferzipError('CORRUPT_DATA', `'${configPath}': dfloat11_config.${msg}`);
  };
  if (!d.pattern_dict || typeof d.pattern_dict !== 'object' || Array.isArray(d.pattern_dict)) bad('pattern_dict must be an object');
  for (const [p, attrs] of Object.entries(d.pattern_dict)) {
    if (p.length > 1000) bad(`pattern_dict key is too long`);
    if (!Array.isArray(attrs) || !attrs.every((a) => typeof a === 'string' && a.length > 0 && a.length < 1000))
      bad(`pattern_dict['${p}'] must be a list of module names`);
  }
  const tpb = Array.isArray(d.threads_per_block) ? d.threads_per_block[0] : d.threads_per_block;
  if (tpb !== 512 || d.bytes_per_thread !== 8) {
    throw new InferzipError(
      'UNSUPPORTED',
      `'${configPath}': threads_per_block ${JSON.stringify(d.threads_per_block)} / bytes_per_thread ${String(d.bytes_per_thread)}; only the v0.5.0 layout (512 / 8) is supported`,
    );
  }
  return { config: c, df11: d };
}

function compilePatterns(df11: DFloat11Config, where: string): { re: UnitPattern; attrs: string[] }[] {
  return Object.entries(df11.pattern_dict).map(([p, attrs]) => ({ re: compileUnitPattern(p, where), attrs }));
}

function openDFloat11(path: string, configPath: string): ModelCatalog {
  const { config, df11 } = readConfig(configPath);
  const patterns = compilePatterns(df11, configPath);
  const reader = openSafetensors(path);
  try {
    const shapes = llamaShapes(config);
    const prefixes = reader.tensors
      .filter((t) => t.name.endsWith('.encoded_exponent'))
      .map((t) => t.name.slice(0, -'.encoded_exponent'.length));
    if (prefixes.length === 0) throw new InferzipError('CORRUPT_DATA', `'${path}' holds no DFloat11 units (no *.encoded_exponent tensor)`);
    const units: UnitInfo[] = prefixes.map((prefix) => {
      for (const b of UNIT_BUFFERS) {
        if (!reader.has(`${prefix}.${b}`))
          throw new InferzipError('CORRUPT_DATA', `DFloat11 unit '${prefix}' has no '${prefix}.${b}' tensor`);
      }
      const attrs = patterns.find((p) => p.re.test(prefix))?.attrs ?? [];
      const names = attrs.length > 0 ? attrs.map((a) => `${prefix}.${a}.weight`) : [`${prefix}.weight`];
      const n = reader.entry(`${prefix}.sign_mantissa`).byteLength;
      const spEntry = reader.entry(`${prefix}.split_positions`);
      if (spEntry.dtype !== 'I64' && spEntry.dtype !== 'U64')
        throw new InferzipError('CORRUPT_DATA', `'${prefix}.split_positions' is ${spEntry.dtype}, expected I64`);
      const spBytes = reader.readBytesSync(`${prefix}.split_positions`);
      const sp = new BigInt64Array(spBytes.byteLength / 8);
      new Uint8Array(sp.buffer).set(spBytes);
      if (sp.length !== names.length - 1) {
        throw new InferzipError(
          'CORRUPT_DATA',
          `DFloat11 unit '${prefix}' has ${sp.length} split positions, but config.json lists ${names.length} matrices for it`,
        );
      }
      const bounds = [0, ...Array.from(sp, Number), n];
      const members: UnitMember[] = names.map((name, i) => {
        const begin = bounds[i]!;
        const end = bounds[i + 1]!;
        if (!(Number.isSafeInteger(begin) && Number.isSafeInteger(end) && begin <= end && end <= n)) {
          throw new InferzipError(
            'CORRUPT_DATA',
            `DFloat11 unit '${prefix}': split positions ${bounds.join(', ')} are not increasing within ${n} elements`,
          );
        }
        const known = shapes(name);
        const shape = known && known.reduce((a, b) => a * b, 1) === end - begin ? known : [end - begin];
        return { name, shape, offset: begin, elements: end - begin };
      });
      const m = /\.(\d+)$/.exec(prefix);
      const kind = attrs.length > 0 ? 'block' : 'matrix';
      return {
        prefix,
        kind,
        ...(kind === 'block' && m ? { block: Number(m[1]) } : {}),
        members,
        elements: n,
        bytes: bufferBytes(reader, prefix),
      } as UnitInfo;
    });
    const rawTensors = reader.tensors.filter((t) => !isUnitBuffer(t.name) || !prefixes.some((p) => t.name.startsWith(`${p}.`)));
    return {
      format: 'dfloat11',
      path,
      reader,
      units: sortUnits(units),
      rawTensors,
      config,
      close: () => reader.close(),
      [Symbol.dispose]: () => reader.close(),
    };
  } catch (err) {
    reader.close();
    throw err;
  }
}
