#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the nvcc build for this card's architecture, the whole test
# suite on it (every CUDA test runs; none may be skipped for lack of a device), and the GPU
# benchmark (bench/gpu.ts -> bench/results/gpu.md). Meant to finish in < 10 minutes.
#   bash scripts/gpu-check.sh            # GPU_BENCH_N / GPU_BENCH_REPS / GPU_BENCH_PEAK_TFLOPS pass through
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
step() { local s=$SECONDS; echo; echo "=== $1"; shift; "$@"; echo "=== $((SECONDS - s)) s"; }

command -v nvidia-smi >/dev/null || { echo "nvidia-smi not found: this script needs an NVIDIA GPU and driver"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,compute_cap,driver_version --format=csv
# One real architecture, the card's own (e.g. 9.0 -> 90-real): a short nvcc build.
cc="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')"
export INFERZIP_CUDA_ARCHS="${INFERZIP_CUDA_ARCHS:-${cc}-real}"
export INFERZIP_BUILD_DIR="${INFERZIP_BUILD_DIR:-build-gpu}"
step "nvcc build for sm_${cc}" env INFERZIP_CUDA=on node scripts/build-native.mjs
export INFERZIP_ADDON_PATH="$PWD/$INFERZIP_BUILD_DIR/Release/inferzip.node"
step "backend() is a real GPU" node --import tsx -e "
  import('./lib/index.ts').then((m) => {
    const b = m.backend();
    console.log(JSON.stringify(b));
    if (b.name !== 'cuda' || /emulator/.test(b.devices[0]?.name ?? '')) { console.error('expected a real CUDA device'); process.exit(1); }
  })"
step "npm test (all CUDA tests on the GPU)" npx vitest run
step "GPU benchmark (bench/results/gpu.md)" node --import tsx bench/gpu.ts
echo "=== gpu-check: $((SECONDS - start)) s"
