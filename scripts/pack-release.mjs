#!/usr/bin/env node
// `npm run pack:release`: every tarball a release publishes from this machine, under release/:
//   inferzip-<version>.tgz                     the JS (ESM + CommonJS), the .d.ts, the sources
//                                              for a source build; optionalDependencies on every
//                                              platform package at exactly <version>
//   inferzip-<platform>-<arch>[-libc]-<version>.tgz   one per binary: this machine's build, plus
//                                              any given with --platform NAME=FILE (a cross build)
//   manifest.json                              names, files, sizes and integrity of each
// Nothing is published: `npm publish release/<file>.tgz` does that, platform packages first.
// Options: --addon FILE (this machine's binary; default build/Release/inferzip.node),
//          --platform @inferzip/linux-arm64-gnu=FILE (repeatable), --no-build (use dist/ as it is).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { writePlatformPackage } from './platform-package/make.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const releaseDir = join(root, 'release');
const stageDir = join(releaseDir, 'stage');
const log = (msg) => process.stderr.write(`[pack:release] ${msg}\n`);

function fail(msg) {
  log(`error: ${msg}`);
  process.exit(1);
}

const argv = process.argv.slice(2);
const opt = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const extraPlatforms = argv.flatMap((a, i) => (a === '--platform' && argv[i + 1] ? [argv[i + 1]] : []));
const hostAddon = resolve(root, opt('--addon') ?? 'build/Release/inferzip.node');

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(cmd, args, cwd = root) {
  // npm is npm.cmd on Windows, which Node only starts through a shell
  const r = spawnSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', shell: process.platform === 'win32' });
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed (exit ${r.status})`);
  return r.stdout;
}

// 1. Fresh JS: a stale file in dist/ (a renamed module, an old source map) must not ship.
if (!argv.includes('--no-build')) {
  rmSync(join(root, 'dist'), { recursive: true, force: true });
  run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json']);
  run(process.execPath, [join(root, 'scripts', 'build-cjs.mjs')]);
}
const { PUBLISHED_PLATFORMS, platformPackageName } = await import(join(root, 'dist', 'native-locate.js'));

rmSync(releaseDir, { recursive: true, force: true });
mkdirSync(stageDir, { recursive: true });

// 2. The platform packages.
/** Which backends a binary holds: CUDA device code lives in the .nv_fatbin section of the ELF. */
function backendsOf(file) {
  return readFileSync(file).includes('.nv_fatbin') ? 'CPU and CUDA backends' : 'CPU backend';
}
function stripped(file, name) {
  const out = join(stageDir, `${name.replace('/', '+')}.node`);
  copyFileSync(file, out);
  if (process.platform !== 'linux') return out;
  // Symbols are for debugging a build, not for users: stripping takes the binary to about half.
  const tool = name.includes('-arm64-') && process.arch !== 'arm64' ? 'aarch64-linux-gnu-strip' : 'strip';
  const r = spawnSync(tool, ['--strip-unneeded', out], { stdio: 'inherit' });
  if (r.status !== 0) log(`warning: ${tool} failed or is missing; ${name} ships unstripped`);
  return out;
}
const binaries = [{ name: platformPackageName(), file: hostAddon }];
for (const spec of extraPlatforms) {
  const [name, file] = spec.split('=');
  if (!name || !file) fail(`--platform takes NAME=FILE, got '${spec}'`);
  binaries.push({ name, file: resolve(root, file) });
}
const tarballs = [];
for (const { name, file } of binaries) {
  if (!existsSync(file)) fail(`no addon at ${file} for ${name}: build it first (npm run build:native)`);
  if (!PUBLISHED_PLATFORMS.includes(name)) fail(`${name} is not in PUBLISHED_PLATFORMS (lib/native-locate.ts): add it there first`);
  const dir = join(stageDir, name.replace('/', '+'));
  writePlatformPackage({
    name,
    version: pkg.version,
    addon: stripped(file, name),
    dir,
    backends: backendsOf(file),
    license: pkg.license,
    engines: pkg.engines,
  });
  tarballs.push(pack(dir, name));
}

// 3. The main package: what `files` selects, with a package.json for users (no dev scripts or
//    devDependencies; the platform packages as optional dependencies at this exact version).
const listed = JSON.parse(run(npm, ['pack', '--dry-run', '--json', '--ignore-scripts']))[0].files.map((f) => f.path);
const forbidden = listed.filter((p) => /\.map$|^native\/tests\/|^test\/|^fixtures\/|^bench\/|^examples\/|^\.ci\//.test(p));
if (forbidden.length) fail(`these must not ship (fix "files" in package.json): ${forbidden.join(', ')}`);
for (const must of ['LICENSE', 'README.md', 'dist/index.js', 'dist/index.d.ts', 'dist/cjs/index.js', 'dist/cjs/index.d.ts'])
  if (!listed.includes(must)) fail(`${must} is missing from the package`);
const mainDir = join(stageDir, 'inferzip');
for (const rel of listed) {
  if (rel === 'package.json') continue;
  mkdirSync(dirname(join(mainDir, rel)), { recursive: true });
  copyFileSync(join(root, rel), join(mainDir, rel));
}
const published = { ...pkg };
delete published.scripts;
delete published.devDependencies;
published.optionalDependencies = Object.fromEntries(PUBLISHED_PLATFORMS.map((n) => [n, pkg.version]));
writeFileSync(join(mainDir, 'package.json'), `${JSON.stringify(published, null, 2)}\n`);
tarballs.unshift(pack(mainDir, pkg.name));

function pack(dir, name) {
  const [info] = JSON.parse(run(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', releaseDir], dir));
  const file = join(releaseDir, info.filename);
  return {
    name,
    file: info.filename,
    bytes: statSync(file).size,
    unpackedBytes: info.unpackedSize,
    files: info.entryCount,
    integrity: info.integrity,
  };
}

rmSync(stageDir, { recursive: true, force: true });
writeFileSync(join(releaseDir, 'manifest.json'), `${JSON.stringify({ version: pkg.version, tarballs }, null, 2)}\n`);
const kb = (n) => `${(n / 1024).toFixed(0)} KiB`;
for (const t of tarballs) log(`${t.file}: ${kb(t.bytes)} packed, ${kb(t.unpackedBytes)} unpacked, ${t.files} files`);
log(`written to ${releaseDir} (publish the platform packages first, then ${tarballs[0].file})`);
// keep the shell's view simple: the file names, one a line
process.stdout.write(tarballs.map((t) => join(releaseDir, t.file)).join('\n') + '\n');
