#!/usr/bin/env bash
# Checks (default) or applies (--write) .clang-format to the C++ and CUDA sources.
set -euo pipefail
cd "$(dirname "$0")/.."
cf="${CLANG_FORMAT:-clang-format}"
if ! command -v "$cf" >/dev/null 2>&1; then
  echo "clang-format not found: install it (Debian: apt-get install clang-format) or set CLANG_FORMAT" >&2
  exit 1
fi
mapfile -t files < <(git ls-files -co --exclude-standard -- 'native/*.h' 'native/*.cpp' 'cuda/*.h' 'cuda/*.cu' 'cuda/*.cuh')
if [ "${1:-}" = "--write" ]; then
  "$cf" -i "${files[@]}"
else
  "$cf" --dry-run --Werror "${files[@]}"
fi
