// Rows of bench/tokens.ts for the FastV / DyCoke / HoliTom passes: the native backend
// (one thread and all threads, sync entry points) beside the previous TypeScript
// implementation (test/tokens/reference), both on the same inputs in the same process.
// Every case first checks that both give bit-identical tokens.
import {
  castFloat,
  mergeByAttentionSync,
  mergeClipsSync,
  pruneByAttentionGraphSync,
  pruneByAttentionSync,
  pruneByTransportSync,
  setThreads,
  mergeTemporalSync,
  tensor,
  type Tensor,
  type MergeTemporalOptions,
} from '../lib/index.js';
import * as refPrune from '../test/tokens/reference/prune.js';
import * as refReduce from '../test/tokens/reference/reduce.js';
import { collectStoriesKV } from './stories-kv.js';
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
    const hidden = castFloat(
      tensor(
        'f32',
        [n, c],
        Float32Array.from({ length: n * c }, () => rand() - 0.5),
      ),
      'bf16',
    );
    const att = tensor(
      'f32',
      [32, n],
      Float32Array.from({ length: 32 * n }, () => rand()),
    );
    const o = { ratio: 0.5, span: [60, 2940] as const };
    out.push({
      name: 'FastV: N = 3000 (2880 image), C = 4096 bf16, 32 heads, R = 50%',
      native: () => pruneByAttentionSync(hidden, att, o),
      reference: () => refPrune.pruneByAttention(hidden, att, o),
    });
  }
  {
    // HoliTom inner-LLM merge: 1600 tokens, 1500 of them image tokens, half merged
    const n = 1600;
    const c = 1024;
    const x = tensor(
      'f32',
      [n, c],
      Float32Array.from({ length: n * c }, () => rand() - 0.5),
    );
    const att = Float32Array.from({ length: n }, () => rand());
    const o = { ratio: 0.5, span: [50, 1550] as const };
    out.push({
      name: 'HoliTom inner-LLM merge: N = 1600, C = 1024, 750 dropped into 750 kept',
      native: () => mergeByAttentionSync(x, att, o),
      reference: () => refPrune.mergeByAttention(x, att, o),
    });
  }
  {
    const frames = video(32, 1024, 0.5, 7);
    const o: MergeTemporalOptions = { method: 'dycoke', pruneRatio: 0.7, mode: 'merge' };
    out.push({
      name: 'DyCoke merge: T = 32, P = 196, C = 1024',
      native: () => mergeTemporalSync(frames, o),
      reference: () => refTemporal.mergeTemporal(frames, o),
    });
  }
  {
    const frames = video(16, 1024, 0.5, 8);
    const o: MergeTemporalOptions = { method: 'holitom', grid: [14, 14] };
    out.push({
      name: 'HoliTom: T = 16, P = 196, C = 1024, half the positions dynamic (1568 tokens clustered)',
      native: () => mergeTemporalSync(frames, o),
      reference: () => refTemporal.mergeTemporal(frames, o),
    });
  }
  {
    const frames = video(32, 1024, 0.5, 9);
    const o: MergeTemporalOptions = { method: 'holitom', grid: [14, 14] };
    out.push({
      name: 'HoliTom: T = 32, P = 196, C = 1024, half the positions dynamic (3136 tokens clustered, 2 chunks)',
      native: () => mergeTemporalSync(frames, o),
      reference: () => refTemporal.mergeTemporal(frames, o),
    });
  }
  return out;
}

export function pruningRows(log: Log, runs: number, time: Timer): void {
  log();
  log('## FastV, DyCoke and HoliTom: native vs the previous TypeScript implementation');
  log();
  log(
    'Sync entry points (the async ones run the same code on a worker thread). Reference = test/tokens/reference (the TypeScript code the native port replaced), on the same inputs; outputs are checked bit-identical before timing.',
  );
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

/** Softmax rows of random logits, [rows, n]. */
function softmaxRows(rand: () => number, rows: number, n: number): Float32Array {
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let j = 0; j < n; j++) sum += out[r * n + j] = Math.exp(4 * rand());
    for (let j = 0; j < n; j++) out[r * n + j] = out[r * n + j]! / sum;
  }
  return out;
}

function sameList(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  if (a.length !== b.length || Array.from(a).some((v, i) => v !== b[i])) throw new Error(`${what}: native and reference disagree`);
}

interface ReduceCase {
  name: string;
  native: () => unknown;
  reference: () => unknown;
  /** FastV on the same tokens (last-token row, and the full matrix when there is one). */
  fastv?: () => unknown;
  fastvFull?: () => unknown;
  check: () => void;
}

function reduceCases(): ReduceCase[] {
  const rand = lcg(21);
  const out: ReduceCase[] = [];
  {
    // TopV on a LLaVA-1.5 image: 576 tokens (24 x 24) of C = 1024, 32 text targets, keep 25%
    const n = 576,
      c = 1024,
      l = 32;
    const v = tensor(
      'f32',
      [n, c],
      Float32Array.from({ length: n * c }, () => rand() - 0.5),
    );
    const text = tensor(
      'f32',
      [l, c],
      Float32Array.from({ length: l * c }, () => rand() - 0.5),
    );
    const att = tensor('f32', [32, n], softmaxRows(rand, 32, n));
    const o = { keep: 144, text, grid: [24, 24] as [number, number] };
    const ro = {
      grid: [24, 24] as [number, number],
      text: refReduce.toRows(text.data, l, c),
      alpha: 1,
      beta: 0.25,
      gamma: 0.25,
      eps: 0.1,
      iters: 10,
    };
    const vr = refReduce.toRows(v.data, n, c);
    out.push({
      name: 'TopV: N = 576 (24 x 24), C = 1024, 32 text targets, keep 144',
      native: () => pruneByTransportSync(v, o),
      reference: () => refReduce.pruneByTransport(vr, ro, 144),
      fastv: () => pruneByAttentionSync(v, att, { keep: 144 }),
      check: () => sameList(pruneByTransportSync(v, o).kept, refReduce.pruneByTransport(vr, ro, 144).kept, 'TopV'),
    });
    const o2 = { keep: 144, grid: [24, 24] as [number, number] };
    const ro2 = { grid: [24, 24] as [number, number], alpha: 1, beta: 0.25, gamma: 0.25, eps: 0.1, iters: 10 };
    out.push({
      name: 'TopV: N = 576, C = 1024, the 576 tokens as their own targets (576 x 576 plan), keep 144',
      native: () => pruneByTransportSync(v, o2),
      reference: () => refReduce.pruneByTransport(vr, ro2, 144),
      check: () => sameList(pruneByTransportSync(v, o2).kept, refReduce.pruneByTransport(vr, ro2, 144).kept, 'TopV self'),
    });
  }
  for (const [n, heads, c, label] of [
    [197, 6, 64, 'DeiT-S: N = 197, 6 heads, keys C = 64'],
    [576, 16, 128, 'N = 576, 16 heads, keys C = 128'],
  ] as const) {
    // Zero-TPrune; FastV beside it on the same attention (full matrix and the last row)
    const x = tensor(
      'f32',
      [n, c],
      Float32Array.from({ length: n * c }, () => rand() - 0.5),
    );
    const a = softmaxRows(rand, heads * n, n);
    const att = tensor('f32', [heads, n, n], a);
    const last = new Float32Array(heads * n);
    for (let h = 0; h < heads; h++) last.set(a.subarray((h * n + n - 1) * n, (h * n + n) * n), h * n);
    const lastT = tensor('f32', [heads, n], last);
    const keep = Math.round(n * 0.65);
    const hs = Array.from({ length: heads }, (_, h) => refReduce.toRows(a, n, n, h * n * n));
    const xr = refReduce.toRows(x.data, n, c);
    out.push({
      name: `Zero-TPrune: ${label}, 30 iterations, keep ${keep}`,
      native: () => pruneByAttentionGraphSync(x, att, { keep }),
      reference: () => refReduce.pruneByAttentionGraph(xr, hs, keep),
      fastv: () => pruneByAttentionSync(x, lastT, { keep }),
      fastvFull: () => pruneByAttentionSync(x, att, { keep }),
      check: () =>
        sameList(pruneByAttentionGraphSync(x, att, { keep }).kept, refReduce.pruneByAttentionGraph(xr, hs, keep).kept, 'Zero-TPrune'),
    });
  }
  for (const [t, p, c, groups] of [
    [12, 49, 768, [2, 2, 3]],
    [16, 196, 1024, undefined],
  ] as const) {
    const frames = tensor(
      'f32',
      [t, p, c],
      Float32Array.from({ length: t * p * c }, () => rand() - 0.5),
    );
    const o = groups ? { groups: [...groups] } : {};
    const ro = { imgKeep: 0.7, crossKeep: 0.7, intraKeep: 0.9, ...o };
    out.push({
      name: `TempMe: T = ${t}, P = ${p}, C = ${c}, groups ${groups ? `[${groups.join(', ')}]` : 'default (2 until one clip)'}`,
      native: () => mergeClipsSync(frames, o),
      reference: () => refReduce.mergeClips(frames.data, t, p, c, ro),
      check: () => sameList(mergeClipsSync(frames, o).assignment, refReduce.mergeClips(frames.data, t, p, c, ro).assignment, 'TempMe'),
    });
  }
  return out;
}

/** TopV, Zero-TPrune and TempMe: native beside the plain TypeScript reference and FastV. */
export function reductionRows(log: Log, runs: number, time: Timer): void {
  log();
  log('## TopV, Zero-TPrune and TempMe: native vs the plain TypeScript reference, and FastV on the same tokens');
  log();
  log(
    'Sync entry points. Reference = test/tokens/reference/reduce.ts (plain 2-D arrays, straight from the spec), same inputs; kept sets / assignments are checked equal before timing. FastV = pruneByAttentionSync on the same tokens and count (last-token [heads, N] row; "full" = the [heads, N, N] matrix), the cheapest attention-ranked baseline.',
  );
  log();
  log(
    '| case | TypeScript (ms) | native 1 thread (ms) | native all threads (ms) | ratio all threads | FastV last row (ms) | FastV full matrix (ms) |',
  );
  log('|---|---|---|---|---|---|---|');
  for (const c of reduceCases()) {
    c.check();
    const js = time(c.reference, Math.min(runs, 3));
    setThreads(1);
    const one = time(c.native, runs);
    setThreads(0);
    const all = time(c.native, runs);
    const fv = c.fastv ? time(c.fastv, runs).toFixed(2) : '-';
    const ff = c.fastvFull ? time(c.fastvFull, runs).toFixed(2) : '-';
    log(`| ${c.name} | ${js.toFixed(1)} | ${one.toFixed(1)} | ${all.toFixed(1)} | ${(js / all).toFixed(1)}x | ${fv} | ${ff} |`);
  }
}

/**
 * Real activations: the bundled stories260K model's post-RoPE queries and keys for a sampled
 * story. Per layer, the causal attention [q heads, T, T] and the keys averaged over KV heads
 * [T, d] as token features; the first T - 16 tokens are prunable, the last 16 play the prompt
 * (TopV's text targets). Each method keeps half the prunable tokens; reported: the share of the
 * last 16 queries' attention mass (over the prunable span, all heads) that lands on kept tokens,
 * the kept-set overlap with FastV (full matrix), and the time.
 */
export function realActivationRows(log: Log, runs: number, time: Timer): void {
  const T = 256,
    tail = 16,
    span = T - tail,
    keep = span / 2;
  const { layers } = collectStoriesKV(T, 1);
  log();
  log(`## On real activations: stories260K, ${T}-token story, ${layers.length} layers, keep ${keep} of the first ${span} tokens`);
  log();
  log(
    "Attention mass = share of the last 16 queries' attention (all heads, over the prunable span) on kept tokens; overlap = |kept ∩ kept(FastV full)| / K. Mean over layers; time = median per layer call, all threads.",
  );
  log();
  log('| method | attention mass kept | overlap with FastV (full) | time per layer (ms) |');
  log('|---|---:|---:|---:|');
  const rows: Record<string, { mass: number; overlap: number; ms: number }> = {};
  for (const L of layers) {
    const [hq, , d] = L.q.shape as [number, number, number];
    const hk = L.k.shape[0]!;
    const att = new Float32Array(hq * T * T);
    for (let h = 0; h < hq; h++) {
      const kh = Math.floor(h / (hq / hk));
      for (let i = 0; i < T; i++) {
        const row = att.subarray((h * T + i) * T, (h * T + i + 1) * T);
        let mx = -Infinity;
        for (let j = 0; j <= i; j++) {
          let dot = 0;
          for (let c = 0; c < d; c++) dot += L.q.data[(h * T + i) * d + c]! * L.k.data[(kh * T + j) * d + c]!;
          row[j] = dot / Math.sqrt(d);
          mx = Math.max(mx, row[j]!);
        }
        let sum = 0;
        for (let j = 0; j <= i; j++) sum += row[j] = Math.exp(row[j]! - mx);
        for (let j = 0; j <= i; j++) row[j] = row[j]! / sum;
      }
    }
    const feat = new Float32Array(T * d);
    for (let h = 0; h < hk; h++)
      for (let t = 0; t < T; t++) for (let c = 0; c < d; c++) feat[t * d + c] = feat[t * d + c]! + L.k.data[(h * T + t) * d + c]! / hk;
    const x = tensor('f32', [span, d], feat.slice(0, span * d));
    const text = tensor('f32', [tail, d], feat.slice(span * d));
    const sub = new Float32Array(hq * span * span);
    for (let h = 0; h < hq; h++)
      for (let i = 0; i < span; i++) sub.set(att.subarray((h * T + i) * T, (h * T + i) * T + span), (h * span + i) * span);
    const subT = tensor('f32', [hq, span, span], sub);
    const last = new Float32Array(hq * span);
    for (let h = 0; h < hq; h++) last.set(att.subarray((h * T + T - 1) * T, (h * T + T - 1) * T + span), h * span);
    const methods: Record<string, () => { kept: Int32Array }> = {
      'FastV (full matrix, paper criterion)': () => pruneByAttentionSync(x, subT, { keep }),
      'FastV (last-token row)': () => pruneByAttentionSync(x, tensor('f32', [hq, span], last), { keep }),
      'TopV (text = last 16 tokens, 1-D grid)': () => pruneByTransportSync(x, { keep, text, grid: [1, span] }),
      'TopV (self targets)': () => pruneByTransportSync(x, { keep, grid: [1, span] }),
      'Zero-TPrune': () => pruneByAttentionGraphSync(x, subT, { keep }),
    };
    const ref = new Set(methods['FastV (full matrix, paper criterion)']!().kept);
    let total = 0;
    for (let h = 0; h < hq; h++) for (let i = T - tail; i < T; i++) for (let j = 0; j < span; j++) total += att[(h * T + i) * T + j]!;
    for (const [name, fn] of Object.entries(methods)) {
      const kept = fn().kept;
      let mass = 0;
      for (let h = 0; h < hq; h++) for (let i = T - tail; i < T; i++) for (const j of kept) mass += att[(h * T + i) * T + j]!;
      const r = (rows[name] ??= { mass: 0, overlap: 0, ms: 0 });
      r.mass += mass / total / layers.length;
      r.overlap += kept.filter((j) => ref.has(j)).length / keep / layers.length;
      r.ms += time(fn, runs) / layers.length;
    }
  }
  for (const [name, r] of Object.entries(rows))
    log(`| ${name} | ${(r.mass * 100).toFixed(1)}% | ${(r.overlap * 100).toFixed(1)}% | ${r.ms.toFixed(2)} |`);
}
