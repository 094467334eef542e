#!/usr/bin/env node
// `npx inferzip-build`: builds the addon from the sources shipped in the inferzip package, for a
// platform without a prebuilt package (or to add CUDA for a local GPU). The result goes to the
// package's build/Release/, which the loader tries before the prebuilt package.
// The package has no install script (nothing compiles on `npm install`), so the build tools
// are not its dependencies: this checks for them first and says exactly what to add.
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const say = (msg) => process.stderr.write(`[inferzip-build] ${msg}\n`);

if (process.argv.includes('--help') || process.argv.includes('-h')) {
  process.stdout.write(`inferzip-build: compile the inferzip addon from source into ${join(root, 'build', 'Release')}

Needs: CMake (or node-gyp, CPU backend only) and a C++17 compiler; nvcc adds the CUDA backend.
Build tools from npm: npm install --no-save cmake-js@^8 node-addon-api@^8
Environment: INFERZIP_CUDA=auto|on|off, INFERZIP_CUDA_ARCHS="80-real;90-real" (see the README).
`);
  process.exit(0);
}

function onPath(names) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    for (const name of names) {
      try {
        if (dir && statSync(join(dir, name)).isFile()) return join(dir, name);
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

function resolvable(name) {
  try {
    require.resolve(`${name}/package.json`);
    return true;
  } catch {
    return false;
  }
}

const missing = [];
const compiler = onPath(process.platform === 'win32' ? ['cl.exe', 'clang++.exe', 'g++.exe'] : ['c++', 'g++', 'clang++']);
if (!compiler)
  missing.push(
    'a C++17 compiler (Debian/Ubuntu: apt-get install build-essential; macOS: xcode-select --install; Windows: Visual Studio Build Tools)',
  );
const cmake = onPath(process.platform === 'win32' ? ['cmake.exe'] : ['cmake']);
const npmTools = [];
if (!resolvable('node-addon-api')) npmTools.push('node-addon-api@^8');
if (cmake && !resolvable('cmake-js')) npmTools.push('cmake-js@^8');
if (!cmake && !process.env.npm_config_node_gyp && !onPath(['node-gyp', 'node-gyp.cmd']))
  missing.push('CMake (recommended; apt-get install cmake / brew install cmake), or node-gyp for a CPU-only build');
if (npmTools.length) missing.push(`the npm build tools: run \`npm install --no-save ${npmTools.join(' ')}\` in your project`);
if (missing.length) {
  say('cannot build yet. Missing:');
  for (const m of missing) say(`  - ${m}`);
  process.exit(1);
}

say(`building in ${root} with ${compiler}${cmake ? ` and ${cmake}` : ' and node-gyp'}`);
const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-native.mjs')], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
say(`done: ${join(root, 'build', 'Release', 'inferzip.node')} (the loader takes it before the prebuilt package)`);
