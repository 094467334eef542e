/**
 * Cross-checks of a manifest against the file's own tensor names. The manifest's unit kind and
 * block number steer the order `CompressedModel.blocks()` yields and which buffer a unit decodes
 * into; a manifest edited to swap block numbers or to mark a block as a standalone matrix parses
 * fine, so these checks compare what it says with what the member names say.
 */
import type { SafetensorsEntry } from '../safetensors/index.js';
import type { ManifestUnit, ParsedManifest } from './manifest.js';

/** Problems found (empty when the manifest agrees with its tensor names). */
export function unitStructureProblems(units: readonly ManifestUnit[]): string[] {
  const problems: string[] = [];
  const blockNumbers = new Map<string, string>();
  for (const u of units) {
    const members = u.members;
    if (u.kind === 'block') {
      const outside = members.find((m) => !m.startsWith(`${u.prefix}.`));
      if (outside !== undefined) problems.push(`block unit '${u.prefix}' lists '${outside}', which is not inside it`);
      const tail = /\.(\d+)$/.exec(u.prefix);
      if (tail && Number(tail[1]) !== u.block)
        problems.push(`block unit '${u.prefix}' is numbered ${String(u.block)} in the manifest, its name says ${tail[1]}`);
      const stem = tail ? u.prefix.slice(0, -tail[1]!.length) : '';
      const key = `${stem}\u0000${String(u.block)}`;
      const other = blockNumbers.get(key);
      if (other !== undefined) problems.push(`block units '${other}' and '${u.prefix}' share block number ${String(u.block)}`);
      else blockNumbers.set(key, u.prefix);
    } else {
      const only = members.length === 1 ? members[0]! : undefined;
      if (only === undefined || (only !== u.prefix && only !== `${u.prefix}.weight`)) {
        problems.push(
          `unit '${u.prefix}' is marked as a standalone matrix but holds ${members.length} tensors (${members.slice(0, 3).join(', ')}${members.length > 3 ? ', ...' : ''})`,
        );
      }
    }
  }
  return problems;
}

/**
 * The tensors a compressed file stores uncompressed must be exactly the original tensors that no
 * unit holds, each with the original dtype and shape: a renamed, retyped or reshaped tensor keeps
 * its bytes (and so its crc32) but is not the tensor the caller asked for.
 */
export function rawTensorProblems(manifest: ParsedManifest, raw: readonly SafetensorsEntry[]): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const t of raw) {
    const original = manifest.tensorIndex.get(t.name)?.entry;
    if (!original || manifest.unitOf.has(t.name)) {
      problems.push(`the file stores a tensor '${t.name}' that the manifest does not list as an uncompressed original`);
      continue;
    }
    seen.add(t.name);
    if (original.dtype !== t.dtype || original.shape.length !== t.shape.length || original.shape.some((d, i) => d !== t.shape[i])) {
      problems.push(
        `tensor '${t.name}' is stored as ${t.dtype}[${t.shape.join(', ')}], the original is ${original.dtype}[${original.shape.join(', ')}]`,
      );
    }
  }
  for (const name of manifest.tensorIndex.keys()) {
    if (!manifest.unitOf.has(name) && !seen.has(name)) problems.push(`original tensor '${name}' is missing from the file`);
  }
  return problems;
}

/** The checks above for an opened catalog (DFloat11 directories have no manifest: none apply). */
export function manifestStructureProblems(catalog: {
  readonly manifest?: ParsedManifest;
  readonly rawTensors: readonly SafetensorsEntry[];
}): string[] {
  return catalog.manifest
    ? [...unitStructureProblems(catalog.manifest.units), ...rawTensorProblems(catalog.manifest, catalog.rawTensors)]
    : [];
}
