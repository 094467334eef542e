// Shared helpers for benchmarks: medians of repeated timings and a machine description.
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';

import { writeSafetensors, type SafetensorsWriteEntry } from '../lib/safetensors/index.js';
import { f32ToBf16, f32ToBf16Bits } from '../lib/tensor.js';
import { rng } from '../test/tokens/random.js';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Runs fn `runs` times after `warmup` runs; returns each run's milliseconds. */
export async function timeRuns(fn: () => unknown | Promise<unknown>, runs: number, warmup = 1): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

export function machine(): string {
  const c = cpus();
  return `${c.length} x ${c[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.versions.node}, ${process.platform}-${process.arch}`;
}

/** The CPU's model name from /proc/cpuinfo (Node's cpus() may say just "AMD EPYC"), with family/model. */
export function cpuModel(): string {
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const get = (k: string) => new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1]?.trim();
    const flags = get('flags') ?? '';
    const simd = ['avx2', 'avx512f', 'avx512_vbmi2', 'avx512_bf16'].filter((f) => flags.split(' ').includes(f)).join(' ');
    return `${get('model name') ?? cpus()[0]?.model ?? 'unknown CPU'} (family ${get('cpu family') ?? '?'}, model ${get('model') ?? '?'}; ${simd || 'no AVX2'})`;
  } catch {
    return cpus()[0]?.model ?? 'unknown CPU';
  }
}

/** "Load average at start: 1.2, 0.9, 0.5" (1, 5, 15 minutes). */
export function loadLine(): string {
  return `Load average at start: ${loadavg()
    .map((v) => v.toFixed(2))
    .join(', ')}`;
}

/**
 * n BF16 weights drawn from N(0, std^2) (Box-Muller on the tests' seeded PRNG), generated in
 * 1M-element chunks so 64M weights do not need a 256 MB f32 copy. The codec benches share it
 * so their figures are measured on the same data.
 */
export function gaussianBf16(n: number, std: number, seed: number): Uint16Array {
  const r = rng(seed);
  const out = new Uint16Array(n);
  const chunk = new Float32Array(1 << 20);
  for (let base = 0; base < n; base += chunk.length) {
    const m = Math.min(chunk.length, n - base);
    for (let i = 0; i < m; i += 2) {
      const mag = Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * std;
      const ang = 2 * Math.PI * r();
      chunk[i] = mag * Math.cos(ang);
      chunk[i + 1] = mag * Math.sin(ang);
    }
    out.set(f32ToBf16(chunk.subarray(0, m)), base);
  }
  return out;
}

/** A Llama-shaped model (hidden 1024, FFN 2816, GQA 16/8 heads) of about `mb` MB of BF16. */
export async function syntheticModel(path: string, mb: number): Promise<number> {
  const h = 1024;
  const ffn = 2816;
  const kv = 512;
  const perBlock = h * h * 2 + kv * h * 2 + ffn * h * 3;
  const blocks = Math.max(1, Math.round((mb * 1e6) / 2 / perBlock));
  // Box-Muller normal samples, deterministic LCG so runs compare.
  let state = 12345;
  const uniform = (): number => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) + 0.5) / 4294967296;
  const normal = (n: number, std: number): Uint16Array => {
    const out = new Uint16Array(n);
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(uniform())) * std;
      const t = 2 * Math.PI * uniform();
      out[i] = f32ToBf16Bits(r * Math.cos(t));
      if (i + 1 < n) out[i + 1] = f32ToBf16Bits(r * Math.sin(t));
    }
    return out;
  };
  const entries: SafetensorsWriteEntry[] = [];
  const shapes: [string, number[]][] = [
    ['self_attn.q_proj.weight', [h, h]],
    ['self_attn.k_proj.weight', [kv, h]],
    ['self_attn.v_proj.weight', [kv, h]],
    ['self_attn.o_proj.weight', [h, h]],
    ['mlp.gate_proj.weight', [ffn, h]],
    ['mlp.up_proj.weight', [ffn, h]],
    ['mlp.down_proj.weight', [h, ffn]],
  ];
  let weights = 0;
  for (let b = 0; b < blocks; b++) {
    entries.push({ name: `model.layers.${b}.input_layernorm.weight`, dtype: 'BF16', shape: [h], data: new Uint16Array(h).fill(0x3f80) });
    for (const [name, shape] of shapes) {
      const n = shape[0]! * shape[1]!;
      weights += n;
      entries.push({ name: `model.layers.${b}.${name}`, dtype: 'BF16', shape, data: () => normal(n, 0.02) });
    }
  }
  await writeSafetensors(path, entries, { metadata: { format: 'pt' } });
  return weights;
}
