/**
 * Where the native addon can come from, in the order the loader tries them. Only paths and
 * package names here: loading (and explaining failures) is lib/native.ts's job.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';

/** The name of the addon file in a build folder and in a platform package. */
export const ADDON_FILE = 'inferzip.node';

export type AddonSource = 'INFERZIP_ADDON_PATH' | 'local build' | 'prebuild' | 'platform package';

export interface AddonCandidate {
  source: AddonSource;
  /** The .node file to load; absent when the place holds none (a package that is not installed). */
  file?: string;
  /** What was looked at, for the error message (a folder, a package name). */
  where: string;
}

/**
 * 'gnu' or 'musl' on Linux, undefined elsewhere. The ldd script names its C library; when it is
 * missing or says neither, Node's diagnostic report decides (it names the glibc Node runs
 * against; a musl Node has none), which is slower and is therefore the fallback. Read once.
 */
let libcCache: 'gnu' | 'musl' | undefined | null = null;
export function linuxLibc(): 'gnu' | 'musl' | undefined {
  if (libcCache !== null) return libcCache;
  if (process.platform !== 'linux') return (libcCache = undefined);
  try {
    const ldd = readFileSync('/usr/bin/ldd', 'latin1');
    if (ldd.includes('musl')) return (libcCache = 'musl');
    if (/GNU C Library|GLIBC/i.test(ldd)) return (libcCache = 'gnu');
  } catch {
    // no ldd script (a minimal image): ask the report
  }
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return (libcCache = header?.glibcVersionRuntime ? 'gnu' : 'musl');
}

/**
 * The prebuilt package for a platform: `@inferzip/<platform>-<arch>`, plus `-gnu`/`-musl` on
 * Linux because a binary linked against glibc does not load on musl (Alpine) and vice versa.
 */
export function platformPackageName(
  platform: string = process.platform,
  arch: string = process.arch,
  libc: string | undefined = platform === 'linux' ? linuxLibc() : undefined,
): string {
  return `@inferzip/${platform}-${arch}${libc ? `-${libc}` : ''}`;
}

/** The platforms a release publishes a package for (scripts/platform-package/ builds them). */
export const PUBLISHED_PLATFORMS: readonly string[] = [
  '@inferzip/linux-x64-gnu',
  '@inferzip/linux-arm64-gnu',
  '@inferzip/darwin-arm64',
  '@inferzip/darwin-x64',
  '@inferzip/win32-x64',
];

function firstNodeFile(dir: string): string | undefined {
  try {
    const names = readdirSync(dir).filter((n) => n.endsWith('.node'));
    // prebuildify names it inferzip.napi.node; prefer that over anything else found there
    return names.includes('inferzip.napi.node') ? join(dir, 'inferzip.napi.node') : names[0] ? join(dir, names[0]) : undefined;
  } catch {
    return undefined;
  }
}

/** A folder given by INFERZIP_ADDON_PATH or the package root: its local build, then its prebuild. */
function folderCandidates(root: string, source?: AddonSource): AddonCandidate[] {
  const release = join(root, 'build', 'Release');
  const prebuilds = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  const built = join(release, ADDON_FILE);
  return [
    { source: source ?? 'local build', where: release, ...(existsSync(built) ? { file: built } : {}) },
    { source: source ?? 'prebuild', where: prebuilds, ...optionalFile(firstNodeFile(prebuilds)) },
  ];
}

function optionalFile(file: string | undefined): { file?: string } {
  return file ? { file } : {};
}

/** Resolves the installed platform package the way Node resolves a dependency of inferzip. */
export function resolvePlatformPackage(packageRoot: string, name: string = platformPackageName()): string | undefined {
  const require = createRequire(join(packageRoot, 'package.json'));
  try {
    const manifest = require.resolve(`${name}/package.json`);
    return join(manifest, '..', ADDON_FILE);
  } catch {
    return undefined;
  }
}

/**
 * The places to try, in order: INFERZIP_ADDON_PATH alone when it is set (an explicit choice
 * never falls back silently), else the local build, a prebuild, then the platform package.
 */
export function addonCandidates(packageRoot: string, explicit: string | undefined): AddonCandidate[] {
  if (explicit) {
    // resolved against the working directory: require() would read a bare relative path as a package name
    const path = resolve(explicit);
    if (path.endsWith('.node')) return [{ source: 'INFERZIP_ADDON_PATH', where: path, file: path }];
    return folderCandidates(path, 'INFERZIP_ADDON_PATH');
  }
  const name = platformPackageName();
  return [
    ...folderCandidates(packageRoot),
    { source: 'platform package', where: name, ...optionalFile(resolvePlatformPackage(packageRoot, name)) },
  ];
}
