import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

import { InferzipError } from '../../lib/errors.js';
import { addonOrigin, loadAddon, native, packageRoot } from '../../lib/native.js';
import { addonCandidates, platformPackageName } from '../../lib/native-locate.js';

const INDEX = new URL('../../lib/index.ts', import.meta.url).pathname;
const PKG = platformPackageName();

function probe(addonPath: string): { name?: string; code?: string; message?: string } {
  const code = `import { backend } from '${INDEX}';
    try { console.log(JSON.stringify(backend())); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    env: { ...process.env, INFERZIP_ADDON_PATH: addonPath },
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop()!) as { name?: string; code?: string; message?: string };
}

/** The .node file the tests are using (whatever native() loaded: an explicit build, else the local build). */
function currentAddonFile(): string {
  native(); // fails the test early with the loader's own message if nothing loads
  return addonOrigin()!.file;
}

/** A scratch package root holding the given files (relative path -> source file, 'broken' or JSON text). */
function packageDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'iz-pkg-'));
  writeFileSync(join(dir, 'package.json'), '{"name":"inferzip","version":"0.0.0"}');
  for (const [rel, src] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    if (src === 'broken') writeFileSync(join(dir, rel), 'not an ELF file');
    else if (src.startsWith('{')) writeFileSync(join(dir, rel), src);
    else copyFileSync(src, join(dir, rel));
  }
  return dir;
}
const PREBUILD = `prebuilds/${process.platform}-${process.arch}/inferzip.napi.node`;
const PLATFORM = `node_modules/${PKG}`;
const platformManifest = `{"name":"${PKG}","version":"0.0.0","main":"inferzip.node"}`;

/** Loads from a scratch package root the way native() does, without touching the real cache. */
function loadFrom(dir: string) {
  return loadAddon(addonCandidates(dir, undefined), undefined);
}

function loadError(dir: string, env: Record<string, string> = {}): InferzipError {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    loadFrom(dir);
  } catch (err) {
    return err as InferzipError;
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  throw new Error('expected the load to fail');
}

describe('addon loader: order', () => {
  it('names the platform package for this machine', () => {
    expect(PKG).toMatch(new RegExp(`^@inferzip/${process.platform}-${process.arch}`));
    expect(platformPackageName('linux', 'arm64', 'gnu')).toBe('@inferzip/linux-arm64-gnu');
    expect(platformPackageName('linux', 'x64', 'musl')).toBe('@inferzip/linux-x64-musl');
    expect(platformPackageName('darwin', 'arm64', undefined)).toBe('@inferzip/darwin-arm64');
  });

  it('takes the platform package when there is no local build or prebuild', () => {
    const dir = packageDir({ [`${PLATFORM}/package.json`]: platformManifest, [`${PLATFORM}/inferzip.node`]: currentAddonFile() });
    const { addon, from } = loadFrom(dir);
    expect(from.source).toBe('platform package');
    expect(from.file).toBe(join(dir, PLATFORM, 'inferzip.node'));
    expect(typeof addon.backendInfo().cudaCompiled).toBe('boolean');
  });

  it('prefers a local build over a prebuild and the platform package', () => {
    const dir = packageDir({
      'build/Release/inferzip.node': currentAddonFile(),
      [PREBUILD]: currentAddonFile(),
      [`${PLATFORM}/package.json`]: platformManifest,
      [`${PLATFORM}/inferzip.node`]: currentAddonFile(),
    });
    expect(loadFrom(dir).from.source).toBe('local build');
  });

  it('prefers a prebuild over the platform package', () => {
    const dir = packageDir({
      [PREBUILD]: currentAddonFile(),
      [`${PLATFORM}/package.json`]: platformManifest,
      [`${PLATFORM}/inferzip.node`]: 'broken',
    });
    expect(loadFrom(dir).from.source).toBe('prebuild');
  });

  it('goes on to the platform package when the local build is broken', () => {
    const dir = packageDir({
      'build/Release/inferzip.node': 'broken',
      [`${PLATFORM}/package.json`]: platformManifest,
      [`${PLATFORM}/inferzip.node`]: currentAddonFile(),
    });
    expect(loadFrom(dir).from.source).toBe('platform package');
  });

  it('INFERZIP_ADDON_PATH wins and never falls back', () => {
    const good = packageDir({ 'build/Release/inferzip.node': currentAddonFile() });
    expect(loadAddon(addonCandidates(packageRoot, join(good, 'build/Release/inferzip.node')), 'x').from.source).toBe('INFERZIP_ADDON_PATH');
    const r = probe(join(packageDir({}), 'nothing.node'));
    expect(r.code).toBe('NATIVE_LOAD_FAILED');
    expect(r.message).toMatch(/INFERZIP_ADDON_PATH=.*nothing\.node/);
  });

  it('INFERZIP_ADDON_PATH may be relative to the working directory', () => {
    const dir = packageDir({ 'build/Release/inferzip.node': currentAddonFile() });
    const rel = relative(process.cwd(), join(dir, 'build/Release/inferzip.node'));
    expect(isAbsolute(rel)).toBe(false);
    const { from } = loadAddon(addonCandidates(packageRoot, rel), rel);
    expect(from.file).toBe(join(dir, 'build/Release/inferzip.node'));
  });

  it('INFERZIP_ADDON_PATH may name a folder with a build or a prebuild', () => {
    expect(['cpu', 'cuda']).toContain(probe(packageDir({ [PREBUILD]: currentAddonFile() })).name);
  });
});

describe('addon loader: NATIVE_LOAD_FAILED advice fits the cause', () => {
  it('no package installed: names it, --include=optional, and the source build', () => {
    const e = loadError(packageDir({}));
    expect(e).toBeInstanceOf(InferzipError);
    expect(e.code).toBe('NATIVE_LOAD_FAILED');
    expect(e.message).toContain(`The prebuilt package ${PKG} is not installed`);
    expect(e.message).toContain('npm install --include=optional');
    expect(e.message).toContain('npx inferzip-build');
    expect(e.message).toMatch(/Tried, in order:\n {2}- local build .*\n {2}- prebuild .*\n {2}- @inferzip\/.*: not installed/);
  });

  it('package installed but its binary does not load: says so and passes the loader error on', () => {
    const dir = packageDir({ [`${PLATFORM}/package.json`]: platformManifest, [`${PLATFORM}/inferzip.node`]: 'broken' });
    const e = loadError(dir);
    expect(e.message).toContain(`${PKG} is installed but its binary did not load`);
    expect(e.message).toMatch(/Reinstall it/);
    expect(e.message).toContain(join(dir, PLATFORM, 'inferzip.node'));
    expect(e.cause).toBeInstanceOf(Error);
  });

  it('no compiler on PATH: the source-build advice says to install one first', () => {
    const e = loadError(packageDir({}), { PATH: '/nonexistent' });
    expect(e.message).toMatch(/No C\+\+ compiler .* was found on PATH, so install .* first/);
    const withCompiler = loadError(packageDir({}));
    expect(withCompiler.message).not.toMatch(/No C\+\+ compiler/);
  });

  it('the explicit path error says how to fix INFERZIP_ADDON_PATH', () => {
    const r = probe(packageDir({}));
    expect(r.code).toBe('NATIVE_LOAD_FAILED');
    expect(r.message).toMatch(/could not be loaded from INFERZIP_ADDON_PATH=/);
    expect(r.message).toMatch(/unset it/);
  });
});

describe('build-native --if-needed', () => {
  it('skips the build when the local build loads', () => {
    const dir = packageDir({
      'build/Release/inferzip.node': currentAddonFile(),
      'scripts/build-native.mjs': join(packageRoot, 'scripts/build-native.mjs'),
    });
    symlinkSync(join(packageRoot, 'node_modules'), join(dir, 'node_modules'));
    const env = { ...process.env };
    delete env.INFERZIP_FORCE_BUILD;
    delete env.INFERZIP_BUILD_DIR;
    const r = spawnSync(process.execPath, ['scripts/build-native.mjs', '--if-needed'], { cwd: dir, encoding: 'utf8', env });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/using the existing local build/);
    expect(existsSync(join(dir, 'build', 'CMakeCache.txt'))).toBe(false); // nothing was compiled
  });
});
