/**
 * The NATIVE_LOAD_FAILED error: what was tried, why each place failed, and advice that fits
 * the cause (no prebuilt package installed, a package that is there but does not load, a
 * platform nothing is published for, no compiler for a source build).
 */
import { statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

import { InferzipError } from './errors.js';
import { PUBLISHED_PLATFORMS, platformPackageName, type AddonCandidate } from './native-locate.js';

export interface LoadAttempt {
  candidate: AddonCandidate;
  /** Why loading failed; absent when the place held no .node file. */
  error?: Error;
}

const COMPILERS = process.platform === 'win32' ? ['cl.exe', 'clang++.exe', 'g++.exe'] : ['c++', 'g++', 'clang++'];

/** The first C++ compiler on PATH, if any: a source build needs one, so the advice says so first. */
export function findCompiler(path: string = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    for (const name of COMPILERS) {
      try {
        if (statSync(join(dir, name)).isFile()) return join(dir, name);
      } catch {
        // not in this folder
      }
    }
  }
  return undefined;
}

function sourceBuildAdvice(): string {
  const how =
    'To build it from source instead, run `npx inferzip-build` in your project ' +
    '(needs CMake or node-gyp and a C++17 compiler; nvcc adds the CUDA backend; it tells you which build tools to add).';
  if (findCompiler()) return how;
  const install =
    process.platform === 'darwin'
      ? '`xcode-select --install` and CMake'
      : process.platform === 'win32'
        ? 'Visual Studio Build Tools (C++ workload) and CMake'
        : 'a C++ compiler and CMake (Debian/Ubuntu: `apt-get install build-essential cmake`)';
  return `${how} No C++ compiler (${COMPILERS.join(', ')}) was found on PATH, so install ${install} first.`;
}

function describe(a: LoadAttempt): string {
  const { candidate: c, error } = a;
  if (!c.file) return c.source === 'platform package' ? `${c.where}: not installed` : `${c.source} (${c.where}): none`;
  return `${c.source} ${c.file}: ${error ? firstLine(error.message) : 'loaded'}`;
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

/** Advice for the most telling failure: the platform package first, since that is how users get the addon. */
function advice(attempts: LoadAttempt[], explicit: string | undefined): string {
  if (explicit) {
    return (
      'Point INFERZIP_ADDON_PATH at a built inferzip.node, or at a folder holding build/Release/ or prebuilds/, or unset it ' +
      'to use the installed prebuilt package.'
    );
  }
  const pkg = attempts.find((a) => a.candidate.source === 'platform package');
  const name = pkg?.candidate.where ?? platformPackageName();
  if (pkg?.candidate.file && pkg.error) {
    const msg = pkg.error.message;
    const why = /GLIBC_|GLIBCXX_|version `/.test(msg)
      ? 'This system’s C or C++ runtime is older than the one the package was built against.'
      : /wrong ELF class|invalid ELF header|not a valid Win32|mach-o, but wrong architecture|incompatible architecture/i.test(msg)
        ? 'The installed binary is for another architecture: reinstall on this machine (node_modules copied from another one?).'
        : 'Reinstall it (`npm install --force`, or remove node_modules and install again) in case the file is damaged.';
    return `${name} is installed but its binary did not load. ${why} ${sourceBuildAdvice()}`;
  }
  if (!PUBLISHED_PLATFORMS.includes(name)) {
    return `No prebuilt package is published for ${process.platform}-${process.arch} (${name}). ${sourceBuildAdvice()}`;
  }
  return (
    `The prebuilt package ${name} is not installed. It is an optional dependency of inferzip: ` +
    'install with `npm install --include=optional` (it is skipped under --omit=optional, or when the lock file was made on ' +
    'another platform: then reinstall without the lock file; pnpm and Yarn install only the platforms listed in ' +
    'supportedArchitectures). ' +
    sourceBuildAdvice()
  );
}

/** The NATIVE_LOAD_FAILED error for a loader that tried `attempts` (in order) and loaded none. */
export function nativeLoadFailed(attempts: LoadAttempt[], explicit: string | undefined): InferzipError {
  const where = explicit ? ` from INFERZIP_ADDON_PATH=${explicit}` : '';
  const tried = attempts.map((a) => `  - ${describe(a)}`).join('\n');
  const last = [...attempts].reverse().find((a) => a.error)?.error;
  return new InferzipError(
    'NATIVE_LOAD_FAILED',
    `the inferzip native addon could not be loaded${where}. ${advice(attempts, explicit)}\nTried, in order:\n${tried}`,
    last ? { cause: last } : undefined,
  );
}
