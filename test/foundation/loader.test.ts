import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

describe('addon loader', () => {
  it('explains what to do when no build or prebuild exists', () => {
    const empty = mkdtempSync(join(tmpdir(), 'iz-empty-'));
    const r = probe(empty);
    expect(r.code).toBe('NATIVE_LOAD_FAILED');
    expect(r.message).toMatch(/could not be loaded/);
  });

  it('loads a prebuilt binary from prebuilds/<platform>-<arch>/', () => {
    const dir = mkdtempSync(join(tmpdir(), 'iz-prebuild-'));
    const target = join(dir, 'prebuilds', `${process.platform}-${process.arch}`);
    mkdirSync(target, { recursive: true });
    copyFileSync(currentAddonFile(), join(target, 'inferzip.napi.node'));
    expect(probe(dir).name).toBe('cpu');
  });
});
