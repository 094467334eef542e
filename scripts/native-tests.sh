#!/usr/bin/env bash
# Builds the native core with AddressSanitizer + UBSan (CPU only) and runs the native
# unit tests and every fuzz target for a bounded time.
#   scripts/native-tests.sh [fuzz-seconds=60]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
cxx="${CXX:-g++}"
fuzzers=OFF
if command -v clang++ >/dev/null 2>&1 && echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long){return 0;}' \
    | clang++ -x c++ -fsanitize=fuzzer - -o /tmp/iz-fuzz-probe 2>/dev/null; then
  cxx=clang++; fuzzers=ON
fi
dir="build-native-tests-$cxx"  # one folder per compiler: CMake cannot switch compilers in place
echo "[native-tests] compiler: $cxx (libFuzzer: $fuzzers)"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  -DINFERZIP_ADDON=OFF -DINFERZIP_CUDA=off -DINFERZIP_SANITIZE=ON -DINFERZIP_NATIVE_TESTS=ON -DINFERZIP_FUZZERS=$fuzzers >/dev/null
cmake --build "$dir" -j 2
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$dir/native/tests/inferzip_native_tests"
for f in "$dir"/native/tests/fuzz_*; do
  [ -x "$f" ] || continue
  name=$(basename "$f")
  corpus="native/tests/corpus/${name#fuzz_}"
  echo "[native-tests] $name for ${secs}s"
  if [ "$fuzzers" = ON ]; then
    mkdir -p "$dir/corpus-$name"
    "$f" -max_total_time="$secs" -print_final_stats=1 "$dir/corpus-$name" $( [ -d "$corpus" ] && echo "$corpus" )
  else
    "$f" "$secs" $( [ -d "$corpus" ] && ls "$corpus"/* 2>/dev/null )
  fi
done
