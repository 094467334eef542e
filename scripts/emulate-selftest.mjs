#!/usr/bin/env node
// Self-test of the CUDA emulator (cuda/emulate): builds the emulated addon from a scratch
// copy of the sources, checks that the unmodified kernels pass the CUDA tests, that the
// small-shared-memory setting really takes the DFloat11 kernel's direct-to-global path (gcov
// line counts), and then that each deliberately broken copy of a kernel below is caught:
// by an emulator abort with the expected message, or, for a missing barrier, by the test's
// CUDA-vs-CPU comparison failing (a race the seeded scheduling and the garbage-filled fresh
// shared memory turn into a wrong result). A mutant that passes fails this script, so the
// emulator cannot silently stop detecting things; a mutation whose target text is gone
// from the kernel also fails it (update the table when a kernel changes).
//   node scripts/emulate-selftest.mjs [--keep] [--only name,name] [--scratch dir]
// (--scratch reuses a folder kept by an earlier --keep run: no copy, an incremental build.)
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const keep = argv.includes('--keep');
const onlyArg = argv.indexOf('--only');
const only = onlyArg >= 0 ? new Set(argv[onlyArg + 1].split(',')) : null;
const scratchArg = argv.indexOf('--scratch');
const reuse = scratchArg >= 0 ? resolve(argv[scratchArg + 1]) : null;
const log = (m) => process.stdout.write(`[emulate-selftest] ${m}\n`);

const TESTS = {
  df11: ['test/df11/hostile.test.ts', 'test/model/compressed-model.test.ts'],
  kvquant: ['test/kvquant/cuda.test.ts'],
  tokens: ['test/tokens/tome.test.ts', 'test/tokens/clips-device.test.ts'],
  reduce: ['test/tokens/transport-device.test.ts', 'test/tokens/graph-device.test.ts'],
};

// name, file, text to find (must occur exactly `nth`-th / once), replacement, family, expected emulator message
// (null: any failure of the CUDA-vs-CPU tests counts, the mutant computes a wrong result).
const MUTANTS = [
  {
    name: 'df11-drop-scan-barrier',
    file: 'cuda/df11/decode.cu',
    find: '  if (lane == 31) warp_sums[warp] = inclusive;\n  __syncthreads();',
    repl: '  if (lane == 31) warp_sums[warp] = inclusive;',
    family: 'df11',
    expect: null,
  },
  {
    name: 'df11-drop-stage-barrier',
    file: 'cuda/df11/decode.cu',
    find: '    DecodeChunk(tables, w, gap, limit, sink, &c2, &e2);\n    __syncthreads();',
    repl: '    DecodeChunk(tables, w, gap, limit, sink, &c2, &e2);',
    family: 'df11',
    expect: null,
  },
  {
    name: 'df11-shrink-shuffle-mask',
    file: 'cuda/df11/decode.cu',
    find: '    uint32_t up = __shfl_up_sync(0xFFFFFFFFu, inclusive, d);',
    repl: '    uint32_t up = __shfl_up_sync(0x0000FFFFu, inclusive, d);',
    family: 'df11',
    expect: /does not name it/,
  },
  {
    name: 'df11-dynamic-smem-off-by-one',
    file: 'cuda/df11/decode.cu',
    find: 'const size_t smem = kScanBytes + size_t(capacity) * sizeof(uint16_t);',
    repl: 'const size_t smem = kScanBytes + size_t(capacity) * sizeof(uint16_t) - 1;',
    family: 'df11',
    expect: /dynamic shared memory \(\d+ bytes, as launched\) was written past its end/,
  },
  {
    name: 'df11-host-pointer-to-kernel',
    file: 'cuda/df11/decode.cu',
    find: '(u, out, capacity, error);',
    repl: '(u, out, capacity, &flags);',
    family: 'df11',
    expect: /argument 3 is 0x[0-9a-f]+, which is not device memory/,
  },
  {
    name: 'df11-unit-range-past-allocation',
    file: 'cuda/df11/decode.cu',
    find: '(u, out, capacity, error);',
    repl: '([&] { DeviceUnit v = u; v.gaps_bytes += 8; return v; }(), out, capacity, error);',
    family: 'df11',
    expect:
      /argument 0, DeviceUnit::gaps: the range \[0x[0-9a-f]+, 0x[0-9a-f]+ \+ \d+\) runs 8 bytes past the end of the device allocation/,
  },
  {
    name: 'df11-memcpy-wrong-direction',
    file: 'cuda/df11/decode.cu',
    find: 'cudaMemcpyAsync(&flags, error, sizeof(unsigned), cudaMemcpyDeviceToHost, stream)',
    repl: 'cudaMemcpyAsync(&flags, error, sizeof(unsigned), cudaMemcpyHostToDevice, stream)',
    family: 'df11',
    expect: /cudaMemcpyHostToDevice of 4 bytes: the destination 0x[0-9a-f]+ is host memory and the source 0x[0-9a-f]+ is device memory/,
  },
  {
    name: 'kvquant-drop-reduce-barrier',
    file: 'cuda/kvquant/kernels.cu',
    nth: 2, // BlockReduceSum's (the first is BlockReduceMax's)
    find: '  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = x;\n  __syncthreads();',
    repl: '  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = x;',
    family: 'kvquant',
    expect: null,
  },
  {
    name: 'kvquant-shrink-shuffle-mask',
    file: 'cuda/kvquant/kernels.cu',
    find: '  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));',
    repl: '  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0x0000ffffu, x, o));',
    family: 'kvquant',
    expect: /does not name it/,
  },
  {
    name: 'kvquant-shuffle-deadlock',
    file: 'cuda/kvquant/kernels.cu',
    find: '  if (threadIdx.x < 32) {\n    float y = threadIdx.x < blockDim.x / 32 ? red[threadIdx.x] : -INFINITY;',
    repl: '  if (threadIdx.x < 16) {\n    float y = threadIdx.x < blockDim.x / 32 ? red[threadIdx.x] : -INFINITY;',
    family: 'kvquant',
    expect: /deadlock: a warp shuffle waits for lanes that wait elsewhere or exited/,
  },
  {
    name: 'kvquant-block-too-large',
    file: 'cuda/kvquant/kernels.cu',
    find: '<<<grid, kThreads>>>',
    repl: '<<<grid, kThreads * 8>>>',
    family: 'kvquant',
    expect: /invalid block \(2048,1,1\)/,
  },
  {
    name: 'tokens-drop-normalize-barrier',
    file: 'cuda/tokens/tome.cu',
    find: '  partial[threadIdx.x] = ss;\n  __syncthreads();',
    repl: '  partial[threadIdx.x] = ss;',
    family: 'tokens',
    expect: null,
  },
  {
    name: 'tokens-shared-index-out-of-bounds',
    file: 'cuda/tokens/tome.cu',
    find: '  if (lane == 0) ws[warp] = my_best, wi[warp] = my_idx;',
    repl: '  if (lane == 0) ws[warp + 1] = my_best, wi[warp] = my_idx;',
    family: 'tokens',
    expect: /__shared__ array 'ws' \(cuda\/tokens\/tome\.cu:\d+, 32 bytes\) was written past its end/,
  },
  {
    name: 'tokens-syncthreads-in-thread-0',
    file: 'cuda/tokens/tome.cu',
    find: '  if (threadIdx.x == 0) {\n    float best = iz::tokens::kProtectedScore;',
    repl: '  if (threadIdx.x == 0) {\n    __syncthreads();\n    float best = iz::tokens::kProtectedScore;',
    family: 'tokens',
    expect: /__syncthreads (at cuda\/tokens\/tome\.cu:\d+ )?reached after \d+ of the block's 256 threads exited/,
  },
  {
    name: 'tokens-divergent-barriers',
    file: 'cuda/tokens/tome.cu',
    find: '    if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];\n    __syncthreads();',
    repl: '    if (threadIdx.x < s) { partial[threadIdx.x] += partial[threadIdx.x + s]; __syncthreads(); continue; }\n    __syncthreads();',
    family: 'tokens',
    expect: /barrier divergence/,
  },
  {
    name: 'tokens-clips-wrong-target',
    file: 'cuda/tokens/clips.cu',
    find: 'in[a_rows[k]] = b_rows[best_q[clip * na + k]];',
    repl: 'in[a_rows[k]] = b_rows[best_q[clip * na + k] / 2];',
    family: 'tokens',
    expect: null,
  },
  {
    name: 'reduce-drop-tile-barrier',
    file: 'cuda/tokens/rows.cu',
    find: '    tb[ty][tx] = base_b >= 0 && k < c ? double(LoadAsF32(b, base_b + k, db)) : 0.0;\n    __syncthreads();',
    repl: '    tb[ty][tx] = base_b >= 0 && k < c ? double(LoadAsF32(b, base_b + k, db)) : 0.0;',
    family: 'reduce',
    expect: null,
  },
  {
    name: 'reduce-shared-index-out-of-bounds',
    file: 'cuda/tokens/rows.cu',
    find: '  low[threadIdx.x] = mine;',
    repl: '  low[threadIdx.x + 1] = mine;',
    family: 'reduce',
    expect: /__shared__ array 'low' \(cuda\/tokens\/rows\.cu:\d+, 2048 bytes\) was written past its end/,
  },
];

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts, env: { ...process.env, ...(opts.env ?? {}) } });
  return { status: r.status, signal: r.signal, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

function replaceNth(text, find, repl, nth = 1) {
  let at = -1;
  for (let i = 0; i < nth; i++) {
    at = text.indexOf(find, at + 1);
    if (at < 0) return null;
  }
  return text.slice(0, at) + repl + text.slice(at + find.length);
}

const started = Date.now();
const scratch = reuse ?? mkdtempSync(join(tmpdir(), 'iz-emu-selftest-'));
let failed = 0;
try {
  if (!reuse) {
    for (const p of ['CMakeLists.txt', 'package.json', 'native', 'cuda', 'scripts'])
      cpSync(join(root, p), join(scratch, p), { recursive: true });
    symlinkSync(join(root, 'node_modules'), join(scratch, 'node_modules'));
  }
  const addon = join(scratch, 'build', 'Release', 'inferzip.node');

  // The kernels carry gcov counters so the small-shared-memory run can prove which path ran.
  log(`building the emulated addon in ${scratch} (with --coverage on the kernels)`);
  let t0 = Date.now();
  let b = reuse
    ? run('cmake', ['--build', join(scratch, 'build'), '-j', '2'])
    : run(process.execPath, ['scripts/build-native.mjs'], {
        cwd: scratch,
        env: { INFERZIP_CUDA: 'emulate', INFERZIP_BUILD_DIR: 'build', INFERZIP_EMU_EXTRA_FLAGS: '--coverage' },
      });
  if (b.status !== 0) throw new Error(`the emulated build failed:\n${b.out.slice(-4000)}`);
  log(`built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

  const vitest = (files, env = {}, extra = []) =>
    run(process.execPath, [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...extra, ...files], {
      cwd: root,
      env: { INFERZIP_ADDON_PATH: addon, INFERZIP_CUDA_EMULATE_SEED: '7', ...env },
    });

  // 1. The unmodified kernels pass, and INFERZIP_CUDA_EMULATE_SMEM=65536 takes the direct path.
  const objDir = join(scratch, 'build', 'CMakeFiles', 'inferzip_cuda.dir', 'emulate', 'cuda', 'df11');
  const gcda = () =>
    readdirSync(objDir)
      .filter((f) => f.endsWith('.gcda'))
      .map((f) => join(objDir, f));
  const sinkCounts = () => {
    // From the scratch root, where the #line name cuda/df11/decode.cu resolves.
    const cov = run('gcov', ['-o', objDir, join(objDir, 'decode.cu.cpp.gcda')], { cwd: scratch });
    const file = join(scratch, 'decode.cu.gcov');
    if (cov.status !== 0 || !existsSync(file)) throw new Error(`gcov failed:\n${cov.out}`);
    // The kernel was compiled from the rewritten copy with `#line 1 "cuda/df11/decode.cu"`, so
    // gcov reports the original line numbers: look the lines up in the pristine source.
    const src = readFileSync(join(root, 'cuda', 'df11', 'decode.cu'), 'utf8').split('\n');
    const lines = readFileSync(file, 'utf8').split('\n');
    const count = (needle) => {
      const lineNo = src.findIndex((x) => x.includes(needle)) + 1;
      if (lineNo === 0) throw new Error(`'${needle}' not found in cuda/df11/decode.cu; update scripts/emulate-selftest.mjs`);
      const l = lines.find((x) => x.split(':')[1]?.trim() === String(lineNo));
      const c = l ? l.split(':')[0].trim() : '';
      return /^\d+$/.test(c) ? Number(c) : 0;
    };
    return { stage: count('StageSink sink{'), global: count('GlobalSink sink{') };
  };
  for (const [label, env, want] of [
    ['default shared memory (227 KiB)', {}, (c) => c.stage > 0],
    ['INFERZIP_CUDA_EMULATE_SMEM=65536', { INFERZIP_CUDA_EMULATE_SMEM: '65536' }, (c) => c.global > 0],
  ]) {
    for (const f of gcda()) rmSync(f);
    t0 = Date.now();
    // Worker threads, not forks: vitest kills its fork workers, and gcov writes counters at exit.
    const r = vitest(TESTS.df11, env, ['--pool=threads']);
    if (r.status !== 0) throw new Error(`the unmodified df11 kernels fail the CUDA tests (${label}):\n${r.out.slice(-4000)}`);
    const c = sinkCounts();
    log(
      `unmodified df11, ${label}: pass; blocks staged in shared memory: ${c.stage} threads, written directly to global: ${c.global} threads (${((Date.now() - t0) / 1000).toFixed(0)} s)`,
    );
    if (!want(c)) throw new Error(`${label}: the expected DFloat11 path did not run (${JSON.stringify(c)})`);
  }
  for (const family of ['kvquant', 'tokens', 'reduce']) {
    const r = vitest(TESTS[family]);
    if (r.status !== 0) throw new Error(`the unmodified ${family} kernels fail the CUDA tests:\n${r.out.slice(-4000)}`);
    log(`unmodified ${family}: pass`);
  }

  // 2. A standalone kernel with an out-of-bounds device write, built with the emulator under
  //    ASan + UBSan: ASan must report it inside the fiber, at the kernel's source line (the
  //    fiber switch annotations work), and the plain build's redzones must notice it too.
  {
    const dir = join(scratch, 'oob');
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'oob.cu'),
      [
        '#include <cuda_runtime.h>',
        '__global__ void K(float* out, int n) {',
        '  __shared__ float s[64];',
        '  s[threadIdx.x] = float(threadIdx.x);',
        '  __syncthreads();',
        '  const float v = s[(threadIdx.x + 1) % 64];',
        '  if (threadIdx.x == 0) out[n] = v;  // line 7: one past the end',
        '  else out[threadIdx.x % n] = v;',
        '}',
        'int main() {',
        '  float* d = nullptr;',
        '  cudaMalloc(&d, 16 * sizeof(float));',
        '  K<<<2, 64>>>(d, 16);',
        '  return cudaDeviceSynchronize() == cudaSuccess ? 0 : 1;',
        '}',
        '',
      ].join('\n'),
    );
    const rw = run(process.execPath, [join(root, 'cuda', 'emulate', 'rewrite.mjs'), join(dir, 'oob.cu'), join(dir, 'oob.cpp'), 'oob.cu']);
    if (rw.status !== 0) throw new Error(`rewrite.mjs failed on the standalone kernel:\n${rw.out}`);
    for (const [label, flags, want] of [
      [
        'ASan + UBSan',
        ['-fsanitize=address,undefined', '-fno-omit-frame-pointer', '-g'],
        /AddressSanitizer: heap-buffer-overflow[\s\S]*WRITE of size 4[\s\S]*#0 [^\n]* in K\(float\*, int\) [^\n]*oob\.cu:7/,
      ],
      ['plain', [], /inferzip CUDA emulator: device allocation \[0x[0-9a-f]+, \+64\) was written past its end \(noticed after K\)/],
    ]) {
      const exe = join(dir, `oob-${label === 'plain' ? 'plain' : 'asan'}`);
      const cc = run('g++', [
        '-std=gnu++17',
        '-O1',
        ...flags,
        '-I',
        join(scratch, 'cuda', 'emulate'),
        '-I',
        scratch,
        join(dir, 'oob.cpp'),
        join(scratch, 'cuda', 'emulate', 'emulator.cpp'),
        '-o',
        exe,
      ]);
      if (cc.status !== 0) throw new Error(`the standalone kernel did not build (${label}):\n${cc.out.slice(-3000)}`);
      const r = run(exe, [], { env: { ASAN_OPTIONS: 'detect_leaks=0' } });
      if (r.status === 0 || !want.test(r.out)) {
        log(`FAIL out-of-bounds device write in a fiber (${label}) not reported as expected:\n${r.out.slice(-2000)}`);
        failed++;
      } else {
        log(
          `caught out-of-bounds device write in a fiber (${label}): ${(r.out.match(/(AddressSanitizer: [^\n]*|inferzip CUDA emulator: [^\n]*)/) ?? [''])[0].slice(0, 140)}`,
        );
      }
    }
  }

  // 3. Mutants.
  for (const m of MUTANTS) {
    if (only && !only.has(m.name)) continue;
    const path = join(scratch, m.file);
    const pristine = readFileSync(join(root, m.file), 'utf8');
    const mutated = replaceNth(pristine, m.find, m.repl, m.nth ?? 1);
    if (mutated === null) {
      log(`FAIL ${m.name}: the text to mutate is no longer in ${m.file}; update scripts/emulate-selftest.mjs`);
      failed++;
      continue;
    }
    t0 = Date.now();
    writeFileSync(path, mutated);
    b = run('cmake', ['--build', join(scratch, 'build'), '-j', '2'], { cwd: scratch });
    writeFileSync(path, pristine);
    if (b.status !== 0) {
      log(`FAIL ${m.name}: the mutant did not compile:\n${b.out.slice(-3000)}`);
      failed++;
      continue;
    }
    const r = vitest(TESTS[m.family]);
    const secs = ((Date.now() - t0) / 1000).toFixed(0);
    const msg = (r.out.match(/inferzip CUDA emulator: [^\n]*/) ?? [null])[0];
    if (r.status === 0) {
      log(`FAIL ${m.name}: not caught (the CUDA tests pass) [${secs} s]`);
      failed++;
    } else if (m.expect && !(msg && m.expect.test(r.out))) {
      log(`FAIL ${m.name}: failed, but without the expected emulator message ${m.expect}; got: ${msg ?? r.out.slice(-1500)}`);
      failed++;
    } else {
      const how = msg ?? `CUDA-vs-CPU test failure: ${(r.out.match(/(AssertionError|Error)[^\n]*/) ?? ['(see log)'])[0].slice(0, 160)}`;
      log(`caught ${m.name}: ${how} [${secs} s]`);
    }
  }
  // Leave the scratch build as the pristine sources (the last mutant was restored above).
} catch (e) {
  log(`FAIL: ${e.message}`);
  failed++;
} finally {
  if (keep || reuse) log(`kept ${scratch}`);
  else rmSync(scratch, { recursive: true, force: true });
}
log(`${failed ? `${failed} FAILED` : 'all caught'} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
process.exit(failed ? 1 : 0);
