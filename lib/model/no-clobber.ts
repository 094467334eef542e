/**
 * The `overwrite: false` option of compressModel and decompressModel (the CLI's default, unless
 * --force): refuse before any work when an output file already exists. Checked up front so a
 * long compression is not thrown away at the end; a file created by someone else in between is
 * still replaced by the final rename (outputs are committed atomically, never half-written).
 */
import { existsSync } from 'node:fs';

import { InferzipError } from '../errors.js';

export interface OverwriteOption {
  /** Replace output files that already exist (default true; the CLI passes false unless --force). */
  overwrite?: boolean;
}

export function refuseExistingOutputs(paths: readonly string[], options: OverwriteOption, fn: string): void {
  if (options.overwrite !== false) return;
  const existing = paths.filter((p) => existsSync(p));
  if (existing.length === 0) return;
  throw new InferzipError(
    'INVALID_ARGUMENT',
    `${fn}: ${existing.map((p) => `'${p}'`).join(', ')} already exist${existing.length === 1 ? 's' : ''}; ` +
      'nothing was written (pass overwrite: true, or --force on the command line, to replace)',
  );
}
