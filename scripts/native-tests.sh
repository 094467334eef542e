#!/usr/bin/env bash
# Builds the native core with AddressSanitizer + UBSan (CPU only) and runs the native
# unit tests and every fuzz target for a bounded time.
#   scripts/native-tests.sh [fuzz-seconds=60]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
# NATIVE_TESTS_CXX=g++ forces the g++ path (fuzz targets under the replay driver).
cxx="${NATIVE_TESTS_CXX:-}"
fuzzers=OFF
probe() {  # can this compiler link a libFuzzer target?
  echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long){return 0;}' \
    | "$1" -x c++ -fsanitize=fuzzer,address,undefined - -o "${TMPDIR:-/tmp}/iz-fuzz-probe-$$" 2>/dev/null
}
if [ -z "$cxx" ]; then
  cxx=g++
  if command -v clang++ >/dev/null 2>&1 && probe clang++; then cxx=clang++; fi
fi
if [[ "$cxx" == *clang* ]] && probe "$cxx"; then fuzzers=ON; fi
rm -f "${TMPDIR:-/tmp}/iz-fuzz-probe-$$"
dir="build-native-tests-$(basename "$cxx")"  # one folder per compiler: CMake cannot switch compilers in place
echo "[native-tests] compiler: $cxx (libFuzzer: $fuzzers)"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  -DINFERZIP_ADDON=OFF -DINFERZIP_CUDA=off -DINFERZIP_SANITIZE=ON -DINFERZIP_NATIVE_TESTS=ON -DINFERZIP_FUZZERS=$fuzzers \
  -DINFERZIP_WERROR="$([ "${INFERZIP_WERROR:-0}" = 1 ] && echo ON || echo OFF)" >/dev/null
cmake --build "$dir" -j 2
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$dir/native/tests/inferzip_native_tests"
for f in "$dir"/native/tests/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  corpus="native/tests/corpus/${name#fuzz_}"  # optional seed inputs, one file each
  seeds=()
  [ -d "$corpus" ] && seeds=("$corpus")
  echo "[native-tests] $name for ${secs}s (seeds: ${seeds[*]:-none})"
  # The outer timeout catches a hang that the per-input limit would not.
  if [ "$fuzzers" = ON ]; then
    mkdir -p "$dir/corpus-$name"
    timeout $((secs + 120)) "$f" -max_total_time="$secs" -timeout=20 -print_final_stats=1 \
      -artifact_prefix="$dir/$name-" "$dir/corpus-$name" "${seeds[@]}"
  else
    (cd "$dir" && timeout $((secs + 120)) "$OLDPWD/$f" "$secs" "${seeds[@]/#/$OLDPWD/}")
  fi
done
