#!/usr/bin/env node
// prebuildify drives node-gyp; this shim stands in for it and builds with cmake-js
// instead (CUDA included when nvcc is found). Only `rebuild`, `--debug` and `--arch`
// matter; `--target` is NOT passed on (in cmake-js it names a CMake target, and an
// N-API addon does not depend on the Node version anyway).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
if (args[0] !== 'rebuild') {
  process.stderr.write(`prebuild-shim: only 'rebuild' is supported (got ${args.join(' ')})\n`);
  process.exit(2);
}
const env = { ...process.env, INFERZIP_BUILD_DIR: 'build' };
if (args.includes('--debug')) env.INFERZIP_DEBUG = '1';
const arch = args.find((a) => a.startsWith('--arch='))?.slice(7);
if (arch && arch !== process.arch) {
  process.stderr.write(`prebuild-shim: cross-compiling to ${arch} is not supported (host is ${process.arch})\n`);
  process.exit(2);
}
const script = join(dirname(fileURLToPath(import.meta.url)), 'build-native.mjs');
const r = spawnSync(process.execPath, [script], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
