/**
 * Reference (previous, plain TypeScript) implementation of DyCoke and HoliTom temporal
 * merging. The library runs the native port (native/core/tokens/temporal.cpp); tests
 * check it against this, and bench/tokens.ts times this as the baseline.
 * Not part of the public API.
 */
import { InferzipError, check } from '../../../lib/errors.js';
import { castFloat, tensor, toFloat32, type Tensor } from '../../../lib/tensor.js';
import { cosineRows, rankIndices } from './similarity.js';
import type { DyCokeOptions, HoliTomOptions, MergeTemporalOptions, MergeTemporalResult } from '../../../lib/index.js';
import { checkInt, checkNumber, floatTensor, type FloatDType } from '../../../lib/validate.js';

/** Groups of original tokens being built: representative, members and a running weighted sum. */
class Groups {
  readonly owner: Int32Array;
  readonly alive: Uint8Array;
  readonly sum: Float32Array;
  readonly size: Float32Array;
  constructor(
    readonly x: Float32Array,
    readonly count: number,
    readonly c: number,
  ) {
    this.owner = new Int32Array(count).map((_, i) => i);
    this.alive = new Uint8Array(count).fill(1);
    this.sum = x.slice();
    this.size = new Float32Array(count).fill(1);
  }
  root(i: number): number {
    while (this.owner[i] !== i) i = this.owner[i]!;
    return i;
  }
  /** Folds group `from` into group `into` (size-weighted). */
  merge(from: number, into: number): void {
    const f = this.root(from);
    const t = this.root(into);
    if (f === t) return;
    for (let k = 0; k < this.c; k++) this.sum[t * this.c + k]! += this.sum[f * this.c + k]!;
    this.size[t]! += this.size[f]!;
    this.owner[f] = t;
    this.alive[f] = 0;
  }
  /** Drops a group entirely (its members map to -1). */
  drop(i: number): void {
    const r = this.root(i);
    this.alive[r] = 0;
    this.owner[r] = -1 - r; // marks dropped; root() must not be called on it again
  }
}

function result(g: Groups, p: number, dtype: FloatDType, segments?: [number, number][]): MergeTemporalResult {
  const keptIds: number[] = [];
  for (let i = 0; i < g.count; i++) if (g.alive[i]) keptIds.push(i);
  const out = new Float32Array(keptIds.length * g.c);
  const frame = new Int32Array(keptIds.length);
  const position = new Int32Array(keptIds.length);
  const sizes = new Float32Array(keptIds.length);
  const slot = new Int32Array(g.count).fill(-1);
  keptIds.forEach((id, j) => {
    slot[id] = j;
    const s = g.size[id]!;
    for (let k = 0; k < g.c; k++) out[j * g.c + k] = s === 1 ? g.x[id * g.c + k]! : g.sum[id * g.c + k]! / s;
    frame[j] = Math.floor(id / p);
    position[j] = id % p;
    sizes[j] = s;
  });
  const assignment = new Int32Array(g.count);
  for (let i = 0; i < g.count; i++) {
    let r = i;
    while (r >= 0 && g.owner[r] !== r) r = g.owner[r]!;
    assignment[i] = r >= 0 ? slot[r]! : -1;
  }
  const tokens = castFloat(tensor('f32', [keptIds.length, g.c], out), dtype);
  return { tokens, frame, position, sizes, assignment, ...(segments ? { segments } : {}) };
}

/** Removes the most similar (to the same position of `ref`) tokens of frame `cur`. */
function pruneFrame(g: Groups, ref: number, cur: number, p: number, keep: number, merge: boolean): void {
  const sims = new Float64Array(p);
  for (let q = 0; q < p; q++) sims[q] = cosineRows(g.x, ref * p + q, g.x, cur * p + q, g.c);
  const order = rankIndices(sims, false); // least similar first
  for (let i = keep; i < p; i++) {
    const q = order[i]!;
    if (merge) g.merge(cur * p + q, ref * p + q);
    else g.drop(cur * p + q);
  }
}

function dycoke(x: Float32Array, t: number, p: number, c: number, o: DyCokeOptions, dtype: FloatDType): MergeTemporalResult {
  const ratio = checkNumber(o.pruneRatio ?? 0.7, 'pruneRatio', 0, 1);
  const mode = o.mode ?? 'prune';
  check(mode === 'prune' || mode === 'merge', `mode must be 'prune' or 'merge' (got '${String(mode)}')`);
  const keep = Math.round((1 - ratio) * p);
  const g = new Groups(x, t * p, c);
  // Pass 1: frame 2i+1 against frame 2i.
  for (let f = 0; f + 1 < t; f += 2) pruneFrame(g, f, f + 1, p, keep, mode === 'merge');
  // Pass 2: in windows of 4, frame w+2 against frame w (frame w stays whole).
  for (let w = 0; w + 2 < t; w += 4) pruneFrame(g, w, w + 2, p, keep, mode === 'merge');
  return result(g, p, dtype);
}

/** Per-frame features for segmentation: average-pooled over pool x pool cells when a grid is given. */
function pooledFeatures(x: Float32Array, t: number, p: number, c: number, grid: readonly [number, number] | undefined, pool: number) {
  if (!grid || pool === 1) return { feats: x, cells: p, cellOf: (q: number) => q };
  const [h, w] = grid;
  const ph = Math.ceil(h / pool);
  const pw = Math.ceil(w / pool);
  const cells = ph * pw;
  const feats = new Float32Array(t * cells * c);
  const counts = new Float32Array(cells);
  const cellOf = (q: number) => Math.floor(Math.floor(q / w) / pool) * pw + Math.floor((q % w) / pool);
  for (let q = 0; q < p; q++) counts[cellOf(q)]! += 1;
  for (let f = 0; f < t; f++) {
    for (let q = 0; q < p; q++) {
      const cell = cellOf(q);
      const dst = (f * cells + cell) * c;
      const src = (f * p + q) * c;
      for (let k = 0; k < c; k++) feats[dst + k]! += x[src + k]! / counts[cell]!;
    }
  }
  return { feats, cells, cellOf };
}

/**
 * Segments maximizing sum over segments of (#positions static through the segment) x (length - 1).
 * stable[f][q] = similarity of position q between frames f and f+1 is above tau.
 */
export function segmentFrames(stable: Uint8Array[], t: number, p: number): [number, number][] {
  const best = new Float64Array(t + 1).fill(-Infinity);
  const from = new Int32Array(t + 1);
  best[0] = 0;
  for (let e = 0; e < t; e++) {
    // walk s downwards so the "static throughout" mask only shrinks
    const mask = new Uint8Array(p).fill(1);
    let count = p;
    for (let s = e; s >= 0; s--) {
      if (s < e) {
        const st = stable[s]!;
        for (let q = 0; q < p; q++) {
          if (mask[q] && !st[q]) {
            mask[q] = 0;
            count--;
          }
        }
      }
      const v = best[s]! + count * (e - s);
      if (v > best[e + 1]! || (v === best[e + 1]! && s > from[e + 1]!)) {
        best[e + 1] = v;
        from[e + 1] = s;
      }
    }
  }
  const segs: [number, number][] = [];
  for (let e = t; e > 0; e = from[e]!) segs.unshift([from[e]!, e - 1]);
  return segs;
}

/**
 * Density-peak clustering (DPC-KNN) of `ids` (rows of g.x): returns the chosen centres and,
 * for every id, the index into `centres` of its cluster.
 */
export function densityPeakClusters(
  x: Float32Array,
  c: number,
  ids: readonly number[],
  centresWanted: number,
  knn: number,
): { centres: number[]; label: Int32Array } {
  const m = ids.length;
  const d2 = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    const oi = ids[i]! * c;
    for (let j = i + 1; j < m; j++) {
      const oj = ids[j]! * c;
      let s = 0;
      for (let k = 0; k < c; k++) {
        const v = x[oi + k]! - x[oj + k]!;
        s += v * v;
      }
      d2[i * m + j] = s / c;
      d2[j * m + i] = s / c;
    }
  }
  const k = Math.min(knn, m - 1);
  const density = new Float64Array(m);
  const row = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    if (k <= 0) {
      density[i] = 1;
      continue;
    }
    for (let j = 0; j < m; j++) row[j] = j === i ? Infinity : d2[i * m + j]!;
    const near = Array.from(row)
      .sort((a, b) => a - b)
      .slice(0, k);
    density[i] = Math.exp(-near.reduce((a, v) => a + v, 0) / k);
  }
  // distance to the nearest denser point (ties broken by lower index being denser)
  const denser = (j: number, i: number) => density[j]! > density[i]! || (density[j] === density[i] && j < i);
  let maxD = 0;
  for (let i = 0; i < m * m; i++) maxD = Math.max(maxD, d2[i]!);
  const score = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let delta = Infinity;
    for (let j = 0; j < m; j++) if (j !== i && denser(j, i)) delta = Math.min(delta, d2[i * m + j]!);
    if (delta === Infinity) delta = maxD;
    score[i] = Math.sqrt(delta) * density[i]!;
  }
  const centres = rankIndices(score, true).slice(0, Math.max(1, Math.min(centresWanted, m)));
  const label = new Int32Array(m);
  for (let i = 0; i < m; i++) {
    let bestC = 0;
    for (let ci = 1; ci < centres.length; ci++) if (d2[i * m + centres[ci]!]! < d2[i * m + centres[bestC]!]!) bestC = ci;
    label[i] = bestC;
  }
  centres.forEach((ci, idx) => (label[ci] = idx));
  return { centres, label };
}

function holitom(x: Float32Array, t: number, p: number, c: number, o: HoliTomOptions, dtype: FloatDType): MergeTemporalResult {
  const tau = checkNumber(o.tau ?? 0.8, 'tau', -1, 1);
  const keepRatio = checkNumber(o.keepRatio ?? 0.5, 'keepRatio', 0, 1);
  const share = checkNumber(o.attentionShare ?? 0.5, 'attentionShare', 0, 1);
  const knn = checkInt(o.knn ?? 7, 'knn', 1, 1024);
  let grid: readonly [number, number] | undefined;
  if (o.grid !== undefined) {
    check(Array.isArray(o.grid) && o.grid.length === 2, 'grid must be [height, width]');
    checkInt(o.grid[0], 'grid[0]', 1);
    checkInt(o.grid[1], 'grid[1]', 1);
    check(o.grid[0] * o.grid[1] === p, `grid ${o.grid[0]} x ${o.grid[1]} does not cover the ${p} tokens per frame`, 'SHAPE_MISMATCH');
    grid = o.grid;
  }
  const pool = checkInt(o.pool ?? (grid ? 2 : 1), 'pool', 1, 1024);
  check(pool === 1 || grid, 'pool needs grid: [height, width]');
  let attention: Float32Array | undefined;
  if (o.attention !== undefined) {
    attention = o.attention instanceof Float32Array ? o.attention : toFloat32(floatTensor(o.attention, 'attention', [1, 2]).t);
    check(attention.length === t * p, `attention must hold T * P = ${t * p} values (got ${attention.length})`, 'SHAPE_MISMATCH');
    for (let i = 0; i < attention.length; i++)
      if (!Number.isFinite(attention[i]!)) throw new InferzipError('INVALID_ARGUMENT', `attention[${i}] is not finite`);
  }

  const { feats, cells, cellOf } = pooledFeatures(x, t, p, c, grid, pool);
  const stable: Uint8Array[] = [];
  for (let f = 0; f + 1 < t; f++) {
    const cellStable = new Uint8Array(cells);
    for (let q = 0; q < cells; q++) cellStable[q] = cosineRows(feats, f * cells + q, feats, (f + 1) * cells + q, c) > tau ? 1 : 0;
    stable.push(Uint8Array.from({ length: p }, (_, q) => cellStable[cellOf(q)]!));
  }
  const segments = segmentFrames(stable, t, p);
  const g = new Groups(x, t * p, c);
  for (const [s, e] of segments) {
    const isStatic = new Uint8Array(p).fill(e > s ? 1 : 0);
    for (let f = s; f < e; f++) for (let q = 0; q < p; q++) if (!stable[f]![q]) isStatic[q] = 0;
    const rest: number[] = [];
    for (let q = 0; q < p; q++) {
      if (isStatic[q]) for (let f = s + 1; f <= e; f++) g.merge(f * p + q, s * p + q);
      else for (let f = s; f <= e; f++) rest.push(f * p + q);
    }
    if (rest.length === 0) continue;
    const survivors = Math.max(1, Math.round(keepRatio * rest.length));
    let clusterIds = rest;
    if (attention) {
      const byAttention = Math.min(survivors, Math.round(share * survivors));
      const order = rankIndices(
        rest.map((id) => attention![id]!),
        true,
      );
      const keepSet = new Set(order.slice(0, byAttention).map((i) => rest[i]!));
      clusterIds = rest.filter((id) => !keepSet.has(id));
      const centresWanted = survivors - byAttention;
      if (clusterIds.length > 0 && centresWanted === 0) {
        for (const id of clusterIds) g.drop(id);
        continue;
      }
      if (clusterIds.length === 0) continue;
      clusterGroup(g, clusterIds, centresWanted, knn);
    } else {
      clusterGroup(g, clusterIds, survivors, knn);
    }
  }
  return result(g, p, dtype, segments);
}

/** Largest token set clustered at once: the pairwise distances take chunk^2 doubles (32 MiB here). */
const MAX_CLUSTER_CHUNK = 2048;

function clusterGroup(g: Groups, ids: number[], centres: number, knn: number): void {
  if (centres >= ids.length) return;
  // Bound memory on long segments: cluster consecutive chunks, centres shared out by size.
  const chunks = Math.ceil(ids.length / MAX_CLUSTER_CHUNK);
  let given = 0;
  for (let ci = 0; ci < chunks; ci++) {
    const part = ids.slice(Math.floor((ci * ids.length) / chunks), Math.floor(((ci + 1) * ids.length) / chunks));
    const want = Math.round(((ci + 1) * centres) / chunks) - given;
    given += want;
    if (want >= part.length) continue;
    const { centres: cs, label } = densityPeakClusters(g.x, g.c, part, want, knn);
    part.forEach((id, i) => {
      const centre = part[cs[label[i]!]!]!;
      if (centre !== id) g.merge(id, centre);
    });
  }
}

/**
 * Reduces video tokens frames [T, P, C] (f32/f16/bf16) across time with DyCoke or HoliTom.
 * Returns the kept tokens with the (frame, position) of the original token each represents.
 * @example
 * const { tokens, frame, position } = mergeTemporal(frames, { method: 'dycoke', pruneRatio: 0.7 });
 */
export function mergeTemporal(frames: Tensor, options: MergeTemporalOptions): MergeTemporalResult {
  const { t: ft, f32 } = floatTensor(frames, 'frames', [3]);
  const [t, p, c] = ft.shape as [number, number, number];
  check(t > 0 && p > 0 && c > 0, `frames is empty (shape [${ft.shape.join(', ')}])`, 'SHAPE_MISMATCH');
  check(options && typeof options === 'object', "mergeTemporal needs options { method: 'dycoke' | 'holitom' }");
  const dtype = ft.dtype as FloatDType;
  if (options.method === 'dycoke') return dycoke(f32, t, p, c, options, dtype);
  if (options.method === 'holitom') return holitom(f32, t, p, c, options, dtype);
  throw new InferzipError(
    'INVALID_ARGUMENT',
    `method must be 'dycoke' or 'holitom' (got '${String((options as { method?: unknown }).method)}')`,
  );
}
