// Writes one prebuilt platform package (@inferzip/<platform>-<arch>[-libc]) into a folder,
// ready for `npm pack`: the package.json that lets npm install it only where it runs (os, cpu,
// libc), the addon, a README and the licence. Used by scripts/pack-release.mjs for every
// binary a release machine built (this machine's, a cross-built arm64 one, ...).
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** npm's platform fields for a package name such as @inferzip/linux-x64-gnu. */
export function platformFields(name) {
  const m = /^@inferzip\/(linux|darwin|win32)-(x64|arm64)(?:-(gnu|musl))?$/.exec(name);
  if (!m) throw new Error(`not a platform package name: ${name}`);
  const [, os, cpu, libc] = m;
  if ((os === 'linux') !== Boolean(libc)) throw new Error(`${name}: a Linux package names its libc (gnu or musl), others do not`);
  return { os: [os], cpu: [cpu], ...(libc ? { libc: [libc === 'gnu' ? 'glibc' : 'musl'] } : {}) };
}

/**
 * @param {{ name: string, version: string, addon: string, dir: string, backends: string, license: string, engines: object }} o
 */
export function writePlatformPackage(o) {
  mkdirSync(o.dir, { recursive: true });
  const fields = platformFields(o.name);
  const manifest = {
    name: o.name,
    version: o.version,
    description: `The prebuilt inferzip native addon for ${o.name.slice('@inferzip/'.length)} (${o.backends}).`,
    license: o.license,
    ...fields,
    engines: o.engines,
    main: 'inferzip.node',
    files: ['inferzip.node'],
    // a native binary: nothing to bundle, nothing to hoist-dedupe against another version
    preferUnplugged: true,
  };
  writeFileSync(join(o.dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  copyFileSync(o.addon, join(o.dir, 'inferzip.node'));
  const readme = readFileSync(join(here, 'README.md'), 'utf8')
    .replaceAll('{{name}}', o.name)
    .replaceAll('{{platform}}', `${fields.os[0]} ${fields.cpu[0]}${fields.libc ? ` (${fields.libc[0]})` : ''}`)
    .replaceAll('{{backends}}', o.backends)
    .replaceAll('{{version}}', o.version);
  writeFileSync(join(o.dir, 'README.md'), readme);
  copyFileSync(join(here, '..', '..', 'LICENSE'), join(o.dir, 'LICENSE'));
  return manifest;
}
