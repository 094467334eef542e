/**
 * Refuses an output that is the same file as an input. Paths are compared by device and inode,
 * not as strings: a hard link, a symlink or `./x` vs `x` names the same file, and writing it
 * would replace the input while it is being read.
 */
import { statSync } from 'node:fs';

import { InferzipError } from '../errors.js';

function identity(path: string): string | undefined {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return undefined; // does not exist (yet): cannot be an input
  }
}

/** Throws INVALID_ARGUMENT when any of `outputs` is the same file as any of `inputs`. */
export function refuseSameFile(inputs: readonly string[], outputs: readonly string[], what: string): void {
  const ids = new Map<string, string>();
  for (const p of inputs) {
    const id = identity(p);
    if (id !== undefined) ids.set(id, p);
  }
  for (const out of outputs) {
    const id = identity(out);
    const clash = id === undefined ? undefined : ids.get(id);
    if (clash !== undefined)
      throw new InferzipError(
        'INVALID_ARGUMENT',
        `${what}: output '${out}' is the same file as the input '${clash}' (it would be replaced while being read); write elsewhere`,
      );
  }
}
