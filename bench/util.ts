// Shared helpers for benchmarks: medians of repeated timings and a machine description.
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';

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
  return `Load average at start: ${loadavg().map((v) => v.toFixed(2)).join(', ')}`;
}
