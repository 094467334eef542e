#!/usr/bin/env bash
# The path a user takes, offline and without a compiler: pack the release tarballs, install them
# into a scratch app with `npm install --ignore-scripts` (local tarballs only: the package's own
# dependencies are packed from this repo's node_modules), with PATH holding node and npm but no
# compiler, cmake, make or nvcc; then run an ESM, a CommonJS and a strict-TypeScript consumer
# and the CLI on a model the app makes itself. Prints the install time.
# Usage: bash scripts/install-test.sh [--no-pack]   (--no-pack: use the tarballs in release/)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
here="$repo/scripts/install-test"
[ "${1:-}" = "--no-pack" ] || (cd "$repo" && node scripts/pack-release.mjs >/dev/null)

app="$(mktemp -d "${TMPDIR:-/tmp}/inferzip-install-test.XXXXXX")"
trap 'rm -rf "$app"' EXIT
version="$(node -p "require('$repo/package.json').version")"
platform_tgz="$(node -e "
  const m = require('$repo/release/manifest.json');
  const t = m.tarballs.find((t) => t.name.startsWith('@inferzip/') && !t.name.includes('arm64') === (process.arch !== 'arm64'));
  if (!t) { console.error('no platform tarball for this machine in release/'); process.exit(1); }
  console.log(t.file)")"

# A PATH with node and npm only. Where node sits beside a compiler (/usr/bin), link just the two.
nocc="$app/.bin-nocc"
mkdir -p "$nocc"
for tool in node npm npx sh env; do ln -s "$(command -v "$tool")" "$nocc/$tool"; done
for tool in cc c++ gcc g++ clang clang++ cmake make nvcc node-gyp; do
  if PATH="$nocc" command -v "$tool" >/dev/null 2>&1; then echo "install-test: $tool is still on the stripped PATH" >&2; exit 1; fi
done
run() { (cd "$app" && env -i HOME="$HOME" PATH="$nocc" TMPDIR="${TMPDIR:-/tmp}" npm_config_cache="${npm_config_cache:-$HOME/.npm}" "$@"); }

# The package's runtime dependencies (and @types/node for the TypeScript consumer), packed
# from the repo's node_modules so that nothing comes from the network.
mkdir -p "$app/deps"
for dep in ndarray iota-array is-buffer @types/ndarray @types/node undici-types; do
  (cd "$app/deps" && npm pack --ignore-scripts --silent "$repo/node_modules/$dep" >/dev/null)
done
echo '{ "name": "inferzip-consumer", "version": "1.0.0", "private": true, "type": "module" }' > "$app/package.json"
cp "$here"/consumer.mjs "$here"/consumer.cjs "$here"/consumer.ts "$here"/consumer-cjs.cts "$here"/tsconfig.json "$here"/make-model.mjs "$app/"

start=$(date +%s%N)
run npm install --ignore-scripts --offline --no-audit --no-fund --loglevel=error \
  "$app"/deps/*.tgz "$repo/release/inferzip-$version.tgz" "$repo/release/$platform_tgz"
echo "install-test: npm install of the tarballs took $(( ($(date +%s%N) - start) / 1000000 )) ms"
[ ! -e "$app/node_modules/inferzip/build" ] || { echo "install-test: something was built on install" >&2; exit 1; }

run node make-model.mjs model.safetensors
run node consumer.mjs
run node consumer.cjs
run node "$repo/node_modules/typescript/bin/tsc" -p tsconfig.json && echo "ts: strict tsc --noEmit passed (skipLibCheck off, ESM and CommonJS)"

# The README's quick start, as a user would paste it (it is written to be valid JavaScript too).
node "$here/extract-quickstart.mjs" "$repo/README.md" "$app/quickstart.mjs"
run node quickstart.mjs | sed 's/^/readme: /'

# The CLI through npm's bin link.
run npx --no-install inferzip --help | head -n 1
run npx --no-install inferzip compress model.safetensors -o cli.df11.safetensors
run npx --no-install inferzip verify cli.df11.safetensors
run npx --no-install inferzip decompress cli.df11.safetensors -o cli.restored.safetensors
cmp "$app/model.safetensors" "$app/cli.restored.safetensors"
echo "cli: compress, verify, decompress: byte-identical"
# Without the platform package (as under --omit=optional) and without a compiler, the error must
# name the package and give the advice for that cause.
mv "$app/node_modules/@inferzip" "$app/platform-package-aside"
run node -e "
  try { require('inferzip').backend(); console.error('expected NATIVE_LOAD_FAILED'); process.exit(1); }
  catch (e) {
    const need = [e.code === 'NATIVE_LOAD_FAILED', /is not installed/.test(e.message), /--include=optional/.test(e.message),
      /npx inferzip-build/.test(e.message), /No C\+\+ compiler/.test(e.message)];
    if (need.includes(false)) { console.error('unexpected error:', e.code, e.message); process.exit(1); }
    console.log('missing package: ' + e.message.split('\n')[0].slice(0, 110) + '...');
  }"
mv "$app/platform-package-aside" "$app/node_modules/@inferzip"
echo "install-test: passed"
