import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { PUBLISHED_PLATFORMS, platformPackageName } from '../../lib/native-locate.js';

interface PlatformFields {
  os: string[];
  cpu: string[];
  libc?: string[];
}
// scripts/ is plain JavaScript (run by node in releases); imported by path so tsc does not need its types.
const MAKE = '../../scripts/platform-package/make.mjs';
const make = (await import(MAKE)) as {
  platformFields(name: string): PlatformFields;
  writePlatformPackage(o: Record<string, unknown>): Record<string, unknown>;
};

describe('platform packages', () => {
  it('npm platform fields follow the package name (libc only on Linux, as npm spells it)', () => {
    expect(make.platformFields('@inferzip/linux-x64-gnu')).toEqual({ os: ['linux'], cpu: ['x64'], libc: ['glibc'] });
    expect(make.platformFields('@inferzip/linux-arm64-musl')).toEqual({ os: ['linux'], cpu: ['arm64'], libc: ['musl'] });
    expect(make.platformFields('@inferzip/darwin-arm64')).toEqual({ os: ['darwin'], cpu: ['arm64'] });
    expect(() => make.platformFields('@inferzip/linux-x64')).toThrow(/names its libc/);
    expect(() => make.platformFields('@inferzip/darwin-arm64-gnu')).toThrow(/names its libc/);
    expect(() => make.platformFields('inferzip-linux-x64-gnu')).toThrow(/not a platform package name/);
  });

  it('every published platform is a name the loader can ask for', () => {
    for (const name of PUBLISHED_PLATFORMS) {
      const f = make.platformFields(name);
      const libc = f.libc?.[0] === 'glibc' ? 'gnu' : f.libc?.[0];
      expect(platformPackageName(f.os[0], f.cpu[0], libc)).toBe(name);
    }
    expect(PUBLISHED_PLATFORMS).toContain(platformPackageName()); // this machine's package is one of them
  });

  it('writes a package npm installs only where it runs, holding the addon', () => {
    const dir = mkdtempSync(join(tmpdir(), 'iz-platform-'));
    const addon = join(dir, 'addon.node');
    writeFileSync(addon, 'binary');
    const out = join(dir, 'pkg');
    make.writePlatformPackage({
      name: '@inferzip/linux-arm64-gnu',
      version: '1.2.3',
      addon,
      dir: out,
      backends: 'CPU backend',
      license: 'MIT',
      engines: { node: '>=20.17' },
    });
    const pkg = JSON.parse(readFileSync(join(out, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg).toMatchObject({ name: '@inferzip/linux-arm64-gnu', version: '1.2.3', os: ['linux'], cpu: ['arm64'], libc: ['glibc'] });
    expect(pkg.main).toBe('inferzip.node');
    expect(pkg.scripts).toBeUndefined(); // nothing runs on install
    expect(readFileSync(join(out, 'inferzip.node'), 'utf8')).toBe('binary');
    expect(readFileSync(join(out, 'README.md'), 'utf8')).toContain('# @inferzip/linux-arm64-gnu');
    expect(readFileSync(join(out, 'LICENSE'), 'utf8')).toMatch(/MIT/);
  });
});
