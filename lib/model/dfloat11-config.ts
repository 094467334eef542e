/**
 * The config.json a DFloat11 model directory carries: the original model's config plus
 * `dfloat11_config` (layout constants and the pattern_dict naming each unit's matrices in
 * concatenation order), so DFloat11 loaders and CompressedModel can open the directory.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { readRegularTextFile } from '../safetensors/reader.js';
import { InferzipError } from '../errors.js';
import { DF11_BYTES_PER_THREAD, DF11_THREADS_PER_BLOCK, type ManifestUnit } from './manifest.js';

const escapeRegex = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Module path of a matrix inside its unit: `model.layers.0.mlp.up_proj.weight` -> `mlp.up_proj`. */
function attrOf(prefix: string, name: string): string {
  const rest = name.slice(prefix.length + 1);
  return rest.endsWith('.weight') ? rest.slice(0, -'.weight'.length) : rest;
}

/**
 * pattern_dict for the units written: blocks that share a stem and the same matrices
 * collapse into one `stem\d+` pattern; anything else gets an exact pattern of its own.
 */
export function patternDict(units: readonly ManifestUnit[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  const groups = new Map<string, { attrs: string[]; prefixes: string[] }>();
  for (const u of units) {
    const attrs = u.kind === 'block' ? u.members.map((m) => attrOf(u.prefix, m)) : [];
    const stem = u.kind === 'block' ? u.prefix.replace(/\d+$/, '') : undefined;
    const key = stem !== undefined ? `${stem}\u0000${attrs.join('\u0000')}` : `\u0001${u.prefix}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { attrs, prefixes: [] }));
    g.prefixes.push(u.prefix);
  }
  const stemOf = (key: string): string | undefined => (key.startsWith('\u0001') ? undefined : key.split('\u0000')[0]!);
  // A stem pattern is only safe when every block under that stem has the same matrices.
  const groupsPerStem = new Map<string, number>();
  for (const key of groups.keys()) {
    const stem = stemOf(key);
    if (stem !== undefined) groupsPerStem.set(stem, (groupsPerStem.get(stem) ?? 0) + 1);
  }
  for (const [key, g] of groups) {
    const stem = stemOf(key);
    if (stem !== undefined && groupsPerStem.get(stem) === 1) {
      out[`${escapeRegex(stem)}\\d+`] = g.attrs;
    } else {
      for (const p of g.prefixes) out[escapeRegex(p)] = g.attrs;
    }
  }
  return out;
}

/** The original model's config.json, when the input sits in (or is) a model directory. */
export function findModelConfig(input: string): Record<string, unknown> | undefined {
  let dir = input;
  try {
    if (!statSync(input).isDirectory()) dir = dirname(input);
  } catch {
    return undefined;
  }
  const path = join(dir, 'config.json');
  if (!existsSync(path)) return undefined;
  try {
    const c = JSON.parse(readRegularTextFile(path)) as unknown;
    return c && typeof c === 'object' && !Array.isArray(c) ? (c as Record<string, unknown>) : undefined;
  } catch (err) {
    if (err instanceof InferzipError) throw err;
    throw new InferzipError('CORRUPT_DATA', `'${path}' is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** config.json text for a DFloat11 directory holding `units`. */
export function dfloat11ConfigJson(base: Record<string, unknown> | undefined, units: readonly ManifestUnit[]): string {
  const config = {
    ...(base ?? {}),
    dfloat11_config: {
      version: '0.5.0',
      threads_per_block: [DF11_THREADS_PER_BLOCK],
      bytes_per_thread: DF11_BYTES_PER_THREAD,
      pattern_dict: patternDict(units),
    },
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}
