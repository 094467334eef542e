#!/usr/bin/env node
// Builds the inferzip addon. Used by `npm install` (with --if-needed), `npm run build:native`
// and the prebuild shim.
//   cmake-js + CMakeLists.txt when CMake is available (CPU backend, plus CUDA when nvcc is found);
//   node-gyp + binding.gyp otherwise (CPU backend only).
// Environment: INFERZIP_CUDA=auto|on|off|emulate (emulate: the CUDA kernels built by the host
//   compiler against the emulated device in cuda/emulate; no nvcc or GPU needed), INFERZIP_CUDA_ARCHS="80-real;90-real",
//   INFERZIP_EMU_EXTRA_FLAGS=--coverage (emulate only: extra flags for the kernels, used by the
//   emulator self-test), INFERZIP_SANITIZE=1, INFERZIP_BUILD_DIR=build, INFERZIP_DEBUG=1,
//   INFERZIP_WERROR=1 (CI: warnings are errors),
//   INFERZIP_X86_SIMD=off (leave the AVX2 paths out, as on another architecture; CI checks it).
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const args = new Set(process.argv.slice(2));
const log = (msg) => process.stderr.write(`[inferzip] ${msg}\n`);

function fail(msg) {
  log(`error: ${msg}`);
  process.exit(1);
}

function which(cmd) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, cmd);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // not there: try the next folder
    }
  }
  return null;
}

function findNvcc() {
  if (process.env.CUDACXX && existsSync(process.env.CUDACXX)) return process.env.CUDACXX;
  const onPath = which('nvcc');
  if (onPath) return onPath;
  for (const base of [process.env.CUDA_PATH, process.env.CUDA_HOME, '/usr/local/cuda']) {
    if (base && existsSync(join(base, 'bin', 'nvcc'))) return join(base, 'bin', 'nvcc');
  }
  return null;
}

function canLoadExisting() {
  // A local build that actually loads (a prebuilt platform package does not count: a
  // contributor's `npm install` must leave a build of the sources in the clone).
  try {
    require(join(root, process.env.INFERZIP_BUILD_DIR ?? 'build', 'Release', 'inferzip.node'));
    return true;
  } catch {
    return false;
  }
}

function run(cmd, argv, env) {
  log(`${cmd} ${argv.join(' ')}`);
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.error) fail(`${cmd} could not start: ${r.error.message}`);
  return r.status === 0;
}

// INFERZIP_CROSS=aarch64-linux-gnu: cross-compile the CPU backend with that GNU toolchain
// (<triple>-gcc/g++, Debian's g++-aarch64-linux-gnu), e.g. for @inferzip/linux-arm64-gnu.
// N-API binaries need only Node's headers, which are the same for every architecture.
const cross = process.env.INFERZIP_CROSS;
if (cross && !/^[a-z0-9_]+-[a-z0-9_]+-[a-z0-9_]+$/.test(cross))
  fail(`INFERZIP_CROSS must be a GNU triple such as aarch64-linux-gnu (got '${cross}')`);
const cudaMode = args.has('--cpu') || cross ? 'off' : (process.env.INFERZIP_CUDA ?? 'auto').toLowerCase();
if (!['auto', 'on', 'off', 'emulate'].includes(cudaMode)) fail(`INFERZIP_CUDA must be auto, on, off or emulate (got '${cudaMode}')`);
const emulate = cudaMode === 'emulate';

if (args.has('--if-needed') && process.env.INFERZIP_FORCE_BUILD !== '1' && canLoadExisting()) {
  log('using the existing local build (set INFERZIP_FORCE_BUILD=1 to rebuild)');
  process.exit(0);
}

const nvcc = cudaMode === 'off' || emulate ? null : findNvcc();
if (cudaMode === 'on' && !nvcc) {
  fail(
    'INFERZIP_CUDA=on but nvcc was not found on PATH, in CUDA_PATH/CUDA_HOME or in /usr/local/cuda/bin. Install the CUDA toolkit or use INFERZIP_CUDA=auto.',
  );
}

const cmake = which('cmake');
if (cmake) {
  const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
  const buildDir = process.env.INFERZIP_BUILD_DIR ?? 'build';
  const defs = [
    `--CDINFERZIP_CUDA=${emulate ? 'emulate' : nvcc ? cudaMode : 'off'}`,
    `--CDINFERZIP_SANITIZE=${process.env.INFERZIP_SANITIZE === '1' ? 'ON' : 'OFF'}`,
    `--CDINFERZIP_X86_SIMD=${process.env.INFERZIP_X86_SIMD === 'off' || cross ? 'OFF' : 'ON'}`,
    `--CDINFERZIP_WERROR=${process.env.INFERZIP_WERROR === '1' ? 'ON' : 'OFF'}`,
  ];
  if (emulate && process.env.INFERZIP_EMU_EXTRA_FLAGS)
    defs.push(`--CDINFERZIP_EMU_EXTRA_FLAGS=${process.env.INFERZIP_EMU_EXTRA_FLAGS.trim().split(/\s+/).join(';')}`);
  if (process.env.INFERZIP_CUDA_ARCHS) defs.push(`--CDINFERZIP_CUDA_ARCHS=${process.env.INFERZIP_CUDA_ARCHS}`);
  if (cross) {
    if (!which(`${cross}-g++`)) fail(`INFERZIP_CROSS=${cross}: ${cross}-g++ is not on PATH (Debian: apt-get install g++-${cross})`);
    log(`cross-compiling for ${cross} (CPU backend only)`);
    defs.push(
      '--CDCMAKE_SYSTEM_NAME=Linux',
      `--CDCMAKE_SYSTEM_PROCESSOR=${cross.split('-')[0]}`,
      `--CDCMAKE_C_COMPILER=${cross}-gcc`,
      `--CDCMAKE_CXX_COMPILER=${cross}-g++`,
      `--CDCMAKE_STRIP=${cross}-strip`,
    );
  }
  if (emulate) log('CUDA backend: emulated (cuda/emulate; the kernels run on the CPU as an emulated device)');
  else if (nvcc) log(`CUDA backend: using ${nvcc}`);
  else log(cudaMode === 'off' ? 'CUDA backend: off (requested)' : 'CUDA backend: nvcc not found, building the CPU backend only');
  const env = nvcc ? { CUDACXX: nvcc, PATH: `${dirname(nvcc)}${delimiter}${process.env.PATH ?? ''}` } : {};
  const argv = [cmakeJs, 'rebuild', '--out', buildDir, ...defs];
  if (process.env.INFERZIP_DEBUG === '1') argv.push('--debug');
  if (!run(process.execPath, argv, { ...env, CMAKE_BUILD_PARALLEL_LEVEL: process.env.CMAKE_BUILD_PARALLEL_LEVEL ?? '2' })) {
    fail('the CMake build failed (see above). Try INFERZIP_CUDA=off to build without CUDA.');
  }
} else {
  if (cudaMode === 'on' || emulate) fail(`INFERZIP_CUDA=${cudaMode} needs CMake (the node-gyp fallback builds the CPU backend only)`);
  log('CMake not found: building the CPU backend with node-gyp (binding.gyp)');
  const nodeGyp = process.env.npm_config_node_gyp;
  const ok = nodeGyp ? run(process.execPath, [nodeGyp, 'rebuild']) : run('node-gyp', ['rebuild']);
  if (!ok) fail('node-gyp failed (see above). Install CMake (and a C++17 compiler) and run `npm rebuild inferzip`.');
}
