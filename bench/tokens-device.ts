// TopV and Zero-TPrune on DeviceTensors beside the host path on the same inputs: a 'cpu'
// DeviceTensor (the CPU backend behind the device entry point: what the device dispatch
// costs) and, when a CUDA device answers, 'cuda' (the kernels; on the emulated build these
// are emulator times, not GPU figures). Kept sets are checked equal before timing.
import { DeviceTensor } from '../lib/device-tensor.js';
import { backend, pruneByAttentionGraphSync, pruneByTransportSync, tensor, type Tensor } from '../lib/index.js';
import { rng } from '../test/tokens/random.js';

type Log = (s?: string) => void;
type Timer = (fn: () => unknown, n: number) => number;

function randn(rand: () => number, count: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand());
  return out;
}

function softmaxRows(rand: () => number, rows: number, n: number): Float32Array {
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let j = 0; j < n; j++) sum += out[r * n + j] = Math.exp(3 * rand());
    for (let j = 0; j < n; j++) out[r * n + j] = out[r * n + j]! / sum;
  }
  return out;
}

interface Case {
  name: string;
  inputs: Tensor[];
  run: (ts: (Tensor | DeviceTensor)[]) => { kept: Int32Array; tokens: Tensor | DeviceTensor };
}

function cases(): Case[] {
  const rand = rng(77);
  const n = 576,
    c = 256,
    l = 32,
    heads = 8;
  return [
    {
      name: `TopV N ${n} (24x24), C ${c}, ${l} text targets, keep 25%`,
      inputs: [tensor('f32', [n, c], randn(rand, n * c)), tensor('f32', [l, c], randn(rand, l * c))],
      run: ([v, t]) => pruneByTransportSync(v as Tensor<'f32'> | DeviceTensor<'f32'>, { ratio: 0.25, grid: [24, 24], text: t }),
    },
    {
      name: `Zero-TPrune N ${n}, ${heads} heads, C 64, keep 25%`,
      inputs: [tensor('f32', [n, 64], randn(rand, n * 64)), tensor('f32', [heads, n, n], softmaxRows(rand, heads * n, n))],
      run: ([x, a]) => pruneByAttentionGraphSync(x as Tensor<'f32'> | DeviceTensor<'f32'>, a!, { ratio: 0.25 }),
    },
  ];
}

export function deviceReductionRows(log: Log, runs: number, time: Timer): void {
  const devices: ('cpu' | 'cuda')[] = backend().devices.length > 0 ? ['cpu', 'cuda'] : ['cpu'];
  const emulated = /emulator/i.test(backend().devices[0]?.name ?? '');
  log();
  log('## TopV and Zero-TPrune on DeviceTensors vs host tensors');
  log();
  log(
    `Sync entry points, all threads; kept sets checked equal to the host path's first. cpu = a 'cpu' DeviceTensor (the CPU backend behind the device entry point).${devices.includes('cuda') ? ` cuda = the CUDA kernels${emulated ? ' on the EMULATED device (kernels run on the CPU one fiber per thread: not GPU figures)' : ''}.` : ' No CUDA device answered: no cuda column.'}`,
  );
  log();
  log(`| case | host tensors (ms) | ${devices.map((d) => `${d} DeviceTensor (ms)`).join(' | ')} |`);
  log(`|---|---:|${devices.map(() => '---:|').join('')}`);
  for (const c of cases()) {
    const want = c.run(c.inputs);
    const cells: string[] = [];
    for (const device of devices) {
      const ds = c.inputs.map((t) => DeviceTensor.fromSync(t, { device }));
      const got = c.run(ds);
      if (got.kept.join() !== want.kept.join()) throw new Error(`${c.name}: ${device} kept set differs from the host path`);
      (got.tokens as DeviceTensor).dispose();
      cells.push(time(() => (c.run(ds).tokens as DeviceTensor).dispose(), device === 'cuda' && emulated ? 1 : runs).toFixed(1));
      for (const d of ds) d.dispose();
    }
    log(`| ${c.name} | ${time(() => c.run(c.inputs), runs).toFixed(1)} | ${cells.join(' | ')} |`);
  }
}
