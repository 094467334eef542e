// Rows of bench/tokens.ts for the FastV / DyCoke / HoliTom passes: the native backend
// (one thread and all threads, sync entry points) beside the previous TypeScript
// implementation (test/tokens/reference), both on the same inputs in the same process.
// Every case first checks that both give bit-identical tokens.
import { castFloat, mergeByAttentionSync, pruneByAttentionSync, setThreads, mergeTemporalSync, tensor, type Tensor, type MergeTemporalOptions } from '../lib/index.js';
import * as refPrune from '../test/tokens/reference/prune.js';
import * as refTemporal from '../test/tokens/reference/temporal.js';

type Log = (s?: string) => void;
type Timer = (fn: () => unknown, n: number) => number;

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function sameBits(a: ArrayBufferView, b: ArrayBufferView, what: string): void {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  if (x.length !== y.length || x.some((v, i) => v !== y[i])) throw new Error(`${what}: native and reference disagree`);
}

/**
 * Video tokens [T, 14 x 14, C]: `dynamic` of the positions are fresh noise every frame,
 * the others a fixed background plus small noise (so HoliTom finds one long segment and
 * clusters the dynamic positions' T x P x dynamic tokens).
 */
function video(t: number, c: number, dynamic: number, seed: number): Tensor<'f32'> {
  const rand = lcg(seed);
  const p = 196;
  const bg = Float32Array.from({ length: p * c }, () => rand() - 0.5);
  const data = new Float32Array(t * p * c);
  for (let f = 0; f < t; f++) {
    for (let q = 0; q < p; q++) {
      const moving = q < dynamic * p;
      for (let k = 0; k < c; k++) data[(f * p + q) * c + k] = moving ? rand() - 0.5 : bg[q * c + k]! + (rand() - 0.5) * 0.01;
    }
  }
  return tensor('f32', [t, p, c], data);
}

interface Case {
  name: string;
  native: () => { tokens: Tensor };
  reference: () => { tokens: Tensor };
}

function cases(): Case[] {
  const rand = lcg(5);
  const out: Case[] = [];
  {
    // FastV on a LLaVA-1.6-sized prompt: 2880 image tokens of 3000, bf16 hidden states, 32 heads
    const n = 3000;
    const c = 4096;
    const hidden = castFloat(tensor('f32', [n, c], Float32Array.from({ length: n * c }, () => rand() - 0.5)), 'bf16');
    const att = tensor('f32', [32, n], Float32Array.from({ length: 32 * n }, () => rand()));
    const o = { ratio: 0.5, span: [60, 2940] as const };
    out.push({ name: 'FastV: N = 3000 (2880 image), C = 4096 bf16, 32 heads, R = 50%', native: () => pruneByAttentionSync(hidden, att, o), reference: () => refPrune.pruneByAttention(hidden, att, o) });
  }
  {
    // HoliTom inner-LLM merge: 1600 tokens, 1500 of them image tokens, half merged
    const n = 1600;
    const c = 1024;
    const x = tensor('f32', [n, c], Float32Array.from({ length: n * c }, () => rand() - 0.5));
    const att = Float32Array.from({ length: n }, () => rand());
    const o = { ratio: 0.5, span: [50, 1550] as const };
    out.push({ name: 'HoliTom inner-LLM merge: N = 1600, C = 1024, 750 dropped into 750 kept', native: () => mergeByAttentionSync(x, att, o), reference: () => refPrune.mergeByAttention(x, att, o) });
  }
  {
    const frames = video(32, 1024, 0.5, 7);
    const o: MergeTemporalOptions = { method: 'dycoke', pruneRatio: 0.7, mode: 'merge' };
    out.push({ name: 'DyCoke merge: T = 32, P = 196, C = 1024', native: () => mergeTemporalSync(frames, o), reference: () => refTemporal.mergeTemporal(frames, o) });
  }
  {
    const frames = video(16, 1024, 0.5, 8);
    const o: MergeTemporalOptions = { method: 'holitom', grid: [14, 14] };
    out.push({ name: 'HoliTom: T = 16, P = 196, C = 1024, half the positions dynamic (1568 tokens clustered)', native: () => mergeTemporalSync(frames, o), reference: () => refTemporal.mergeTemporal(frames, o) });
  }
  {
    const frames = video(32, 1024, 0.5, 9);
    const o: MergeTemporalOptions = { method: 'holitom', grid: [14, 14] };
    out.push({ name: 'HoliTom: T = 32, P = 196, C = 1024, half the positions dynamic (3136 tokens clustered, 2 chunks)', native: () => mergeTemporalSync(frames, o), reference: () => refTemporal.mergeTemporal(frames, o) });
  }
  return out;
}

export function pruningRows(log: Log, runs: number, time: Timer): void {
  log();
  log('## FastV, DyCoke and HoliTom: native vs the previous TypeScript implementation');
  log();
  log('Sync entry points (the async ones run the same code on a worker thread). Reference = test/tokens/reference (the TypeScript code the native port replaced), on the same inputs; outputs are checked bit-identical before timing.');
  log();
  log('| case | TypeScript (ms) | native 1 thread (ms) | native all threads (ms) | ratio 1 thread | ratio all threads |');
  log('|---|---|---|---|---|---|');
  for (const c of cases()) {
    sameBits(c.native().tokens.data, c.reference().tokens.data, c.name);
    const js = time(c.reference, runs);
    setThreads(1);
    const one = time(c.native, runs);
    setThreads(0);
    const all = time(c.native, runs);
    log(`| ${c.name} | ${js.toFixed(1)} | ${one.toFixed(1)} | ${all.toFixed(1)} | ${(js / one).toFixed(1)}x | ${(js / all).toFixed(1)}x |`);
  }
}
