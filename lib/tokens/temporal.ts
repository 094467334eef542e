/**
 * Temporal token merging for video, before the LLM: DyCoke (paired-frame and 4-frame
 * window passes over same-position tokens) and HoliTom (dynamic-programming segmentation
 * into static stretches, temporal averaging of static tokens, density-peak clustering of
 * the rest). Same-position similarities run natively (all cores).
 */
import { InferzipError, check } from '../errors.js';
import { native } from '../native.js';
import { assertTensor, fromNdarray, toFloat32, type NdArrayLike, type Tensor } from '../tensor.js';
import { outputTensor, type FloatDType } from './input.js';
import { topIndices } from './fastv.js';
import './native.js';

export interface DyCokeOptions {
  method: 'dycoke';
  /** Fraction of a compared frame's tokens removed when similar to the reference (default 0.7). */
  k?: number;
  /** 'prune' drops the removed tokens (as the released code does); 'merge' folds each into the token it matched (size-weighted). Default 'prune'. */
  mode?: 'prune' | 'merge';
}

export interface HoliTomOptions {
  method: 'holitom';
  /** A position is static while consecutive frames stay above this cosine (default 0.8). */
  tau?: number;
  /** [height, width] of each frame's token grid: similarities are taken after 2x2 average pooling. */
  grid?: readonly [number, number];
  /** Fraction of each segment's non-static tokens that survive (default 0.5). */
  retain?: number;
  /** Per-token attention [T, P] (e.g. from the vision encoder): the top half of the retained budget goes to the most attended tokens. */
  attention?: Tensor | Float32Array;
  /** Neighbours for the k-NN density of density-peak clustering (default 7). */
  neighbours?: number;
}

export type TemporalMergeOptions = DyCokeOptions | HoliTomOptions;

export interface TemporalMergeResult {
  /** Kept tokens [K, C] ordered by (frame, position), in the input's dtype. */
  x: Tensor;
  /** Frame of each kept token. */
  frame: Int32Array;
  /** Spatial position (0..P-1) of each kept token. */
  position: Int32Array;
  /** Original tokens each kept token stands for. */
  sizes: Float32Array;
  /** HoliTom only: the [start, end] frame segments found. */
  segments?: [number, number][];
}

interface Frames {
  data: Float32Array;
  T: number;
  P: number;
  C: number;
  dtype: FloatDType;
}

function framesOf(value: Tensor | NdArrayLike): Frames {
  const t = fromNdarray(value as Tensor);
  assertTensor(t, 'frames', { dtypes: ['f32', 'f16', 'bf16'], rank: [3] });
  const [T, P, C] = t.shape as [number, number, number];
  check(T > 0 && P > 0 && C > 0, `frames is empty (shape [${t.shape.join(', ')}])`, 'SHAPE_MISMATCH');
  const data = toFloat32(t);
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) throw new InferzipError('INVALID_ARGUMENT', `frames holds ${data[i]} at flat index ${i}`);
  return { data, T, P, C, dtype: t.dtype as FloatDType };
}

/** Working set of tokens: each (frame, position) is alive or folded into another. */
class TokenPool {
  readonly alive: Uint8Array;
  readonly sum: Float32Array;
  readonly size: Float32Array;
  constructor(readonly f: Frames) {
    this.alive = new Uint8Array(f.T * f.P).fill(1);
    this.sum = f.data.slice();
    this.size = new Float32Array(f.T * f.P).fill(1);
  }
  vec(id: number): Float32Array {
    const { C } = this.f;
    return this.sum.subarray(id * C, (id + 1) * C);
  }
  /** Folds token `from` into `into` (size-weighted: sums stay sums until the end). */
  fold(from: number, into: number): void {
    const a = this.vec(into);
    const b = this.vec(from);
    for (let i = 0; i < a.length; i++) a[i] = a[i]! + b[i]!;
    this.size[into] = this.size[into]! + this.size[from]!;
    this.alive[from] = 0;
  }
  drop(id: number): void {
    this.alive[id] = 0;
  }
  result(segments?: [number, number][]): TemporalMergeResult {
    const { T, P, C } = this.f;
    const ids: number[] = [];
    for (let id = 0; id < T * P; id++) if (this.alive[id]) ids.push(id);
    const out = new Float32Array(ids.length * C);
    ids.forEach((id, j) => {
      const v = this.vec(id);
      const s = this.size[id]!;
      for (let i = 0; i < C; i++) out[j * C + i] = v[i]! / s;
    });
    const res: TemporalMergeResult = {
      x: outputTensor(out, [ids.length, C], this.f.dtype),
      frame: Int32Array.from(ids, (id) => Math.floor(id / P)),
      position: Int32Array.from(ids, (id) => id % P),
      sizes: Float32Array.from(ids, (id) => this.size[id]!),
    };
    if (segments) res.segments = segments;
    return res;
  }
}

/** Cosine of same-position tokens of two frames (current values, size-weighted means). */
function frameCosine(pool: TokenPool, a: number, b: number): Float32Array {
  const { P, C } = pool.f;
  const mean = (t: number) => {
    const out = new Float32Array(P * C);
    for (let p = 0; p < P; p++) {
      const id = t * P + p;
      const s = pool.size[id]!;
      const v = pool.vec(id);
      for (let i = 0; i < C; i++) out[p * C + i] = v[i]! / s;
    }
    return out;
  };
  return native().rowCosine(mean(a), mean(b), P, C);
}

/** Removes the k most similar (to `ref`) alive tokens of frame `t`. */
function pruneAgainst(pool: TokenPool, t: number, ref: number, k: number, mode: 'prune' | 'merge'): void {
  const { P } = pool.f;
  const sim = frameCosine(pool, t, ref);
  const candidates: number[] = [];
  for (let p = 0; p < P; p++) if (pool.alive[t * P + p] && pool.alive[ref * P + p]) candidates.push(p);
  const remove = Math.round(k * P);
  candidates.sort((x, y) => sim[y]! - sim[x]! || x - y);
  for (const p of candidates.slice(0, Math.min(remove, candidates.length))) {
    if (mode === 'merge') pool.fold(t * P + p, ref * P + p);
    else pool.drop(t * P + p);
  }
}

function dycoke(f: Frames, o: DyCokeOptions): TemporalMergeResult {
  const k = o.k ?? 0.7;
  const mode = o.mode ?? 'prune';
  check(Number.isFinite(k) && k >= 0 && k <= 1, `k must be in [0, 1] (got ${k})`);
  check(mode === 'prune' || mode === 'merge', `mode must be 'prune' or 'merge' (got ${String(mode)})`);
  const pool = new TokenPool(f);
  // Pass 1: the odd frame of each pair against the even one.
  for (let t = 1; t < f.T; t += 2) pruneAgainst(pool, t, t - 1, k, mode);
  // Pass 2: in windows of four frames, frame w+2 against frame w (frame w stays whole).
  for (let w = 0; w + 2 < f.T; w += 4) pruneAgainst(pool, w + 2, w, k, mode);
  return pool.result();
}

/** Best split of frames into segments maximising sum of (#static positions) x (length - 1). */
export function segmentFrames(sim: Float32Array[], P: number, tau: number): { segments: [number, number][]; staticMask: Uint8Array[] } {
  const T = sim.length + 1;
  const best = new Float64Array(T + 1).fill(-Infinity);
  const from = new Int32Array(T + 1);
  best[0] = 0;
  for (let s = 0; s < T; s++) {
    const still = new Uint8Array(P).fill(1);
    let count = P;
    for (let e = s; e < T; e++) {
      if (e > s) {
        const row = sim[e - 1]!;
        for (let p = 0; p < P; p++) if (still[p] && !(row[p]! > tau)) (still[p] = 0), count--;
      }
      const score = best[s]! + count * (e - s);
      if (score > best[e + 1]!) (best[e + 1] = score), (from[e + 1] = s);
    }
  }
  const segments: [number, number][] = [];
  for (let e = T; e > 0; e = from[e]!) segments.unshift([from[e]!, e - 1]);
  const staticMask = segments.map(([s, e]) => {
    const m = new Uint8Array(P).fill(e > s ? 1 : 0);
    for (let t = s; t < e; t++) for (let p = 0; p < P; p++) if (!(sim[t]![p]! > tau)) m[p] = 0;
    return m;
  });
  return { segments, staticMask };
}

/** 2x2 average pooling of a frame's [H*W, C] grid, each position mapped to its cell. */
function pooled(f: Frames, grid: readonly [number, number] | undefined): { data: Float32Array; cells: number; cellOf: Int32Array } {
  const { T, P, C, data } = f;
  if (!grid) return { data, cells: P, cellOf: Int32Array.from({ length: P }, (_, p) => p) };
  const [H, W] = grid;
  check(Number.isInteger(H) && Number.isInteger(W) && H * W === P, `grid [${H}, ${W}] must multiply to the ${P} tokens per frame`, 'SHAPE_MISMATCH');
  const h2 = Math.ceil(H / 2);
  const w2 = Math.ceil(W / 2);
  const cells = h2 * w2;
  const cellOf = new Int32Array(P);
  const count = new Float32Array(cells);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) cellOf[y * W + x] = (y >> 1) * w2 + (x >> 1);
  for (let p = 0; p < P; p++) count[cellOf[p]!] = count[cellOf[p]!]! + 1;
  const out = new Float32Array(T * cells * C);
  for (let t = 0; t < T; t++) {
    for (let p = 0; p < P; p++) {
      const dst = (t * cells + cellOf[p]!) * C;
      const src = (t * P + p) * C;
      const w = 1 / count[cellOf[p]!]!;
      for (let i = 0; i < C; i++) out[dst + i] = out[dst + i]! + data[src + i]! * w;
    }
  }
  return { data: out, cells, cellOf };
}

/** Density-peak clustering (k-NN density) of tokens `ids`; folds every non-centre into its nearest centre. */
function densityPeakMerge(pool: TokenPool, ids: number[], centres: number, K: number): void {
  const M = ids.length;
  if (centres >= M || M === 0) return;
  const { C } = pool.f;
  const unit = ids.map((id) => {
    const v = pool.vec(id);
    let n = 0;
    for (let i = 0; i < C; i++) n += v[i]! * v[i]!;
    const inv = n > 0 ? 1 / Math.sqrt(n) : 0;
    return Float32Array.from(v, (x) => x * inv);
  });
  const dist = new Float32Array(M * M);
  for (let i = 0; i < M; i++) {
    for (let j = i + 1; j < M; j++) {
      let d = 0;
      const a = unit[i]!;
      const b = unit[j]!;
      for (let c = 0; c < C; c++) d += (a[c]! - b[c]!) ** 2;
      dist[i * M + j] = d;
      dist[j * M + i] = d;
    }
  }
  const k = Math.min(K, M - 1);
  const density = new Float32Array(M);
  for (let i = 0; i < M; i++) {
    const row = Array.from(dist.subarray(i * M, (i + 1) * M)).filter((_, j) => j !== i).sort((a, b) => a - b);
    let s = 0;
    for (let j = 0; j < k; j++) s += row[j]!;
    density[i] = Math.exp(-(k > 0 ? s / k : 0));
  }
  const delta = new Float32Array(M);
  let maxDist = 0;
  for (let i = 0; i < M * M; i++) maxDist = Math.max(maxDist, dist[i]!);
  for (let i = 0; i < M; i++) {
    let d = Infinity;
    for (let j = 0; j < M; j++) {
      const higher = density[j]! > density[i]! || (density[j] === density[i] && j < i);
      if (higher) d = Math.min(d, dist[i * M + j]!);
    }
    delta[i] = Number.isFinite(d) ? d : maxDist;
  }
  const order = Array.from({ length: M }, (_, i) => i).sort((a, b) => density[b]! * delta[b]! - density[a]! * delta[a]! || a - b);
  const isCentre = new Uint8Array(M);
  const centreList = order.slice(0, Math.max(1, centres));
  for (const c of centreList) isCentre[c] = 1;
  for (let i = 0; i < M; i++) {
    if (isCentre[i]) continue;
    let bestC = centreList[0]!;
    for (const c of centreList) if (dist[i * M + c]! < dist[i * M + bestC]!) bestC = c;
    pool.fold(ids[i]!, ids[bestC]!);
  }
}

function holitom(f: Frames, o: HoliTomOptions): TemporalMergeResult {
  const tau = o.tau ?? 0.8;
  const retain = o.retain ?? 0.5;
  const K = o.neighbours ?? 7;
  check(Number.isFinite(tau) && tau >= -1 && tau <= 1, `tau must be in [-1, 1] (got ${tau})`);
  check(Number.isFinite(retain) && retain > 0 && retain <= 1, `retain must be in (0, 1] (got ${retain})`);
  check(Number.isInteger(K) && K >= 1, `neighbours must be a positive integer (got ${K})`);
  const { T, P, C } = f;
  let attention: Float32Array | undefined;
  if (o.attention !== undefined) {
    attention = o.attention instanceof Float32Array ? o.attention : toFloat32(o.attention);
    check(attention.length === T * P, `attention has ${attention.length} values; expected [${T}, ${P}]`, 'SHAPE_MISMATCH');
  }
  // Same-position similarity of consecutive frames, on pooled cells.
  const pool2 = pooled(f, o.grid);
  const sim: Float32Array[] = [];
  for (let t = 0; t + 1 < T; t++) {
    const a = pool2.data.subarray(t * pool2.cells * C, (t + 1) * pool2.cells * C);
    const b = pool2.data.subarray((t + 1) * pool2.cells * C, (t + 2) * pool2.cells * C);
    const cellSim = native().rowCosine(a.slice(), b.slice(), pool2.cells, C);
    sim.push(Float32Array.from({ length: P }, (_, p) => cellSim[pool2.cellOf[p]!]!));
  }
  const { segments, staticMask } = segmentFrames(sim, P, tau);
  const pool = new TokenPool(f);
  segments.forEach(([s, e], i) => {
    const mask = staticMask[i]!;
    // Static positions: one token per position, averaged over the segment's frames.
    for (let p = 0; p < P; p++) if (mask[p]) for (let t = s + 1; t <= e; t++) pool.fold(t * P + p, s * P + p);
    // The rest: keep the most attended, cluster the others into centres.
    const dynamic: number[] = [];
    for (let t = s; t <= e; t++) for (let p = 0; p < P; p++) if (!mask[p]) dynamic.push(t * P + p);
    const budget = Math.max(1, Math.round(dynamic.length * retain));
    if (dynamic.length === 0 || budget >= dynamic.length) return;
    let rest = dynamic;
    let clusterBudget = budget;
    if (attention) {
      const topK = Math.floor(budget / 2);
      const scores = Float32Array.from(dynamic, (id) => attention![id]!);
      const keptLocal = new Set(topIndices(scores, 0, dynamic.length, topK));
      rest = dynamic.filter((_, j) => !keptLocal.has(j));
      clusterBudget = budget - topK;
    }
    densityPeakMerge(pool, rest, clusterBudget, K);
  });
  return pool.result(segments);
}

/**
 * Merges video tokens across frames before they reach the LLM.
 * @example
 *   const r = temporalMerge(frames, { method: 'dycoke', k: 0.7 });
 *   console.log(`${r.x.shape[0]} of ${T * P} tokens kept`);
 */
export function temporalMerge(frames: Tensor | NdArrayLike, options: TemporalMergeOptions): TemporalMergeResult {
  check(options && typeof options === 'object', "temporalMerge needs options { method: 'dycoke' | 'holitom' }");
  const f = framesOf(frames);
  if (options.method === 'dycoke') return dycoke(f, options);
  if (options.method === 'holitom') return holitom(f, options);
  throw new InferzipError('INVALID_ARGUMENT', `unknown method '${String((options as { method?: unknown }).method)}': use 'dycoke' or 'holitom'`);
}
