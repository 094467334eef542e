/**
 * Cross-checks of a manifest against the file's own tensor names. The manifest's unit kind and
 * block number steer the order `CompressedModel.blocks()` yields and which buffer a unit decodes
 * into; a manifest edited to swap block numbers or to mark a block as a standalone matrix parses
 * fine, so these checks compare what it says with what the member names say.
 */
import type { ManifestUnit } from './manifest.js';

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
      if (tail && Number(tail[1]) !== u.block) problems.push(`block unit '${u.prefix}' is numbered ${String(u.block)} in the manifest, its name says ${tail[1]}`);
      const stem = tail ? u.prefix.slice(0, -tail[1]!.length) : '';
      const key = `${stem}\u0000${String(u.block)}`;
      const other = blockNumbers.get(key);
      if (other !== undefined) problems.push(`block units '${other}' and '${u.prefix}' share block number ${String(u.block)}`);
      else blockNumbers.set(key, u.prefix);
    } else {
      const only = members.length === 1 ? members[0]! : undefined;
      if (only === undefined || (only !== u.prefix && only !== `${u.prefix}.weight`)) {
        problems.push(`unit '${u.prefix}' is marked as a standalone matrix but holds ${members.length} tensors (${members.slice(0, 3).join(', ')}${members.length > 3 ? ', ...' : ''})`);
      }
    }
  }
  return problems;
}

/** The checks above for an opened catalog (DFloat11 directories have no manifest: none apply). */
export function manifestStructureProblems(catalog: { readonly manifest?: { readonly units: readonly ManifestUnit[] } }): string[] {
  return catalog.manifest ? unitStructureProblems(catalog.manifest.units) : [];
}
