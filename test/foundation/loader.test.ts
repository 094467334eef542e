import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { native, packageRoot } from '../../lib/native.js';

const INDEX = new URL('../../lib/index.ts', import.meta.url).pathname;

function probe(addonPath: string): { name?: string; code?: string; message?: string } {
  const code = `import { backend } from '${INDEX}';
    try { console.log(JSON.stringify(backend())); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    env: { ...process.env, INFERZIP_ADDON_PATH: addonPath },
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop()!) as { name?: string; code?: string; message?: string };
}

/** The .node file the tests are using: an explicit build, else the local build. */
function currentAddonFile(): string {
  native(); // fails the test early with the loader's own message if nothing loads
  const explicit = process.env.INFERZIP_ADDON_PATH;
  return explicit?.endsWith('.node') ? explicit : join(packageRoot, 'build', 'Release', 'inferzip.node');
}

/** A scratch package folder holding the given .node files (relative path -> source file). */
function packageDir(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'iz-pkg-'));
  for (const [rel, src] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    if (src === 'broken') writeFileSync(join(dir, rel), 'not an ELF file');
    else copyFileSync(src, join(dir, rel));
  }
  return dir;
}
const PREBUILD = `prebuilds/${process.platform}-${process.arch}/inferzip.napi.node`;

describe('addon loader', () => {
  it('explains what to do when no build or prebuild exists', () => {
    const r = probe(packageDir({}));
    expect(r.code).toBe('NATIVE_LOAD_FAILED');
    expect(r.message).toMatch(/could not be loaded/);
    expect(r.message).toMatch(/npm rebuild inferzip/); // says how to fix it
  });

  it('names a missing or broken .node file', () => {
    const r = probe(join(packageDir({}), 'nothing.node'));
    expect(r.code).toBe('NATIVE_LOAD_FAILED');
    expect(r.message).toMatch(/INFERZIP_ADDON_PATH=.*nothing\.node/);
  });

  it('loads a prebuilt binary from prebuilds/<platform>-<arch>/', () => {
    expect(['cpu', 'cuda']).toContain(probe(packageDir({ [PREBUILD]: currentAddonFile() })).name);
  });

  it('prefers a local build over a prebuild', () => {
    // The prebuild is broken: loading succeeds only if build/Release is taken first.
    const dir = packageDir({ 'build/Release/inferzip.node': currentAddonFile(), [PREBUILD]: 'broken' });
    expect(['cpu', 'cuda']).toContain(probe(dir).name);
  });

  it('build-native --if-needed skips the build when a prebuild loads', () => {
    const dir = packageDir({ [PREBUILD]: currentAddonFile(), 'scripts/build-native.mjs': join(packageRoot, 'scripts/build-native.mjs') });
    symlinkSync(join(packageRoot, 'node_modules'), join(dir, 'node_modules'));
    const r = spawnSync(process.execPath, ['scripts/build-native.mjs', '--if-needed'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, INFERZIP_FORCE_BUILD: '' },
    });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/using the existing build or prebuilt binary/);
    expect(existsSync(join(dir, 'build'))).toBe(false); // nothing was compiled
  });
});
