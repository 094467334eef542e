#!/usr/bin/env node
// Release binaries: prebuilds/<platform>-<arch>/inferzip.node (one N-API build serves
// every Node version), made by prebuildify through the cmake-js shim. The full CUDA
// architecture list is used unless INFERZIP_CUDA_ARCHS says otherwise.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const bin = join(dirname(require.resolve('prebuildify/package.json')), 'bin.js');
const shim = join(root, 'scripts', 'prebuild-shim.mjs');
const r = spawnSync(process.execPath, [bin, '--napi', '--strip', '--name', 'inferzip', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, PREBUILD_NODE_GYP: shim },
});
process.exit(r.status ?? 1);
