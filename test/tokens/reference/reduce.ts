/**
 * Plain TypeScript references for TopV (pruneByTransport), Zero-TPrune
 * (pruneByAttentionGraph), TempMe (mergeClips) and FastV's full-matrix criterion
 * (receivedAttention): written straight from the working spec with 2-D arrays and f64
 * numbers, no tricks. The library runs native ports (native/core/tokens/transport.cpp,
 * graph.cpp, clips.cpp); the tests compare against these and bench/tokens-pruning.ts times
 * them as the baseline. Not part of the public API.
 */

type Rows = number[][];

/** Rows of a flat [rows, c] array starting at element `offset`. */
export function toRows(data: ArrayLike<number>, rows: number, c: number, offset = 0): Rows {
  const out: Rows = [];
  for (let i = 0; i < rows; i++) {
    const r: number[] = [];
    for (let k = 0; k < c; k++) r.push(data[offset + i * c + k]!);
    out.push(r);
  }
  return out;
}

function dot(x: number[], y: number[]): number {
  let s = 0;
  for (let k = 0; k < x.length; k++) s += x[k]! * y[k]!;
  return s;
}

/** cos(x, y) = x.y / (max(|x|, 1e-12) max(|y|, 1e-12)). */
export function cos(x: number[], y: number[]): number {
  return dot(x, y) / (Math.max(Math.sqrt(dot(x, x)), 1e-12) * Math.max(Math.sqrt(dot(y, y)), 1e-12));
}

/** Indices 0..n-1 by value descending, equal values: lower index first. */
function rankDesc(values: number[]): number[] {
  return values.map((_, i) => i).sort((a, b) => (values[a] !== values[b] ? values[b]! - values[a]! : a - b));
}

export interface Selection {
  kept: number[];
  dropped: number[];
  scores: number[];
}

function split(n: number, keepMask: boolean[], score: number[]): Selection {
  const s: Selection = { kept: [], dropped: [], scores: [] };
  for (let i = 0; i < n; i++) {
    if (keepMask[i]) {
      s.kept.push(i);
      s.scores.push(Math.fround(score[i]!));
    } else s.dropped.push(i);
  }
  return s;
}

// --- TopV --------------------------------------------------------------------------------

export interface TransportRef {
  grid: [number, number];
  target?: Rows;
  text?: Rows;
  alpha: number;
  beta: number;
  gamma: number;
  eps: number;
  iters: number;
}

/** The cost matrix C [N, M]. */
export function transportCost(visual: Rows, o: TransportRef): Rows {
  const n = visual.length;
  const [h, w] = o.grid;
  const targets: { row: number[]; pos: number }[] = [];
  if (!o.target && !o.text) visual.forEach((row, j) => targets.push({ row, pos: j }));
  o.target?.forEach((row, j) => targets.push({ row, pos: j }));
  o.text?.forEach((row) => targets.push({ row, pos: -1 }));
  const dist = (y0: number, x0: number, y1: number, x1: number) => Math.sqrt((y0 - y1) * (y0 - y1) + (x0 - x1) * (x0 - x1));
  const dg = Math.sqrt((h - 1) * (h - 1) + (w - 1) * (w - 1));
  const cy = (h - 1) / 2;
  const cx = (w - 1) / 2;
  let rc = 0;
  for (let i = 0; i < n; i++) rc = Math.max(rc, dist(Math.floor(i / w), i % w, cy, cx));
  return visual.map((v, i) => {
    const yi = Math.floor(i / w);
    const xi = i % w;
    const central = rc > 0 ? o.gamma * (dist(yi, xi, cy, cx) / rc) : 0;
    return targets.map((t) => {
      const spatial = t.pos >= 0 && dg > 0 ? o.beta * (dist(yi, xi, Math.floor(t.pos / w), t.pos % w) / dg) : 0;
      return o.alpha * (1 - cos(v, t.row)) + spatial + central;
    });
  });
}

/** Score of each visual token: -N x the transport cost of its mass under the Sinkhorn plan. */
export function transportScores(visual: Rows, o: TransportRef): number[] {
  const cost = transportCost(visual, o);
  const n = cost.length;
  const m = cost[0]!.length;
  // G' = exp(-(C - rowmin)/eps): the row shift only rescales u, the plan is the same
  const g = cost.map((row) => {
    const r = Math.min(...row);
    return row.map((x) => Math.exp(-((x - r) / o.eps)));
  });
  const a = 1 / n;
  const b = 1 / m;
  const u = new Array<number>(n).fill(0);
  const v = new Array<number>(m).fill(1);
  for (let it = 0; it < o.iters; it++) {
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < m; j++) s += g[i]![j]! * v[j]!;
      u[i] = a / s;
    }
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += g[i]![j]! * u[i]!;
      v[j] = b / s;
    }
  }
  return cost.map((row, i) => {
    let s = 0;
    for (let j = 0; j < m; j++) s += u[i]! * g[i]![j]! * v[j]! * row[j]!;
    return -n * s;
  });
}

export function pruneByTransport(visual: Rows, o: TransportRef, keep: number, recover = 0): Selection {
  const n = visual.length;
  if (keep === 0) return { kept: [], dropped: visual.map((_, i) => i), scores: [] };
  const score = transportScores(visual, o);
  const kr = recover;
  const mask = new Array<boolean>(n).fill(false);
  for (const i of rankDesc(score).slice(0, keep - kr)) mask[i] = true;
  const rest = score.map((_, i) => i).filter((i) => !mask[i]);
  for (let i = 0; i < kr; i++) mask[rest[Math.floor(((2 * i + 1) * rest.length) / (2 * kr))]!] = true;
  return split(n, mask, score);
}

// --- Zero-TPrune ---------------------------------------------------------------------------

/** attention: heads x [N, N] rows. Importance = mean over heads of s <- A^T s, A row-normalized (s'_i = sum_j A_ji s_j / r_j). */
export function graphImportance(attention: Rows[], iters: number): number[] {
  const n = attention[0]!.length;
  const perHead = attention.map((a) => {
    // row j normalized: A_ji / r_j (a zero row attends uniformly: 1 / n)
    const r = a.map((row) => row.reduce((sum, x) => sum + x, 0));
    let s = new Array<number>(n).fill(1 / n);
    for (let it = 0; it < iters; it++) {
      const next = new Array<number>(n).fill(0);
      for (let j = 0; j < n; j++) {
        const w = r[j]! > 0 ? s[j]! / r[j]! : s[j]! / n;
        for (let i = 0; i < n; i++) next[i] = next[i]! + (r[j]! > 0 ? a[j]![i]! * w : w);
      }
      s = next;
    }
    return s;
  });
  const imp = new Array<number>(n).fill(0);
  for (const s of perHead) for (let i = 0; i < n; i++) imp[i] = imp[i]! + s[i]!;
  return imp.map((x) => x / attention.length);
}

export function pruneByAttentionGraph(tokens: Rows, attention: Rows[], keep: number, iters = 30, similarShare = 0.5): Selection {
  const n = tokens.length;
  const imp = graphImportance(attention, iters);
  const r = n - keep;
  const rs = Math.min(Math.floor(r * similarShare + 1e-9), keep);
  const ri = r - rs;
  const list = rankDesc(imp).slice(0, n - ri);
  const mask = new Array<boolean>(n).fill(false);
  for (const i of list) mask[i] = true;
  if (rs > 0) {
    const nb = Math.ceil(list.length / 2);
    const bSet = list.slice(0, nb);
    const aSet = list.slice(nb);
    const sim = aSet.map((a) => Math.max(...bSet.map((b) => cos(tokens[a]!, tokens[b]!))));
    const order = aSet.map((_, k) => k).sort((p, q) => (sim[p] !== sim[q] ? sim[q]! - sim[p]! : aSet[p]! - aSet[q]!));
    for (const k of order.slice(0, rs)) mask[aSet[k]!] = false;
  }
  return split(n, mask, imp);
}

// --- TempMe --------------------------------------------------------------------------------

interface Tok {
  x: number[];
  s: number;
  orig: number[]; // original token ids it holds
}

/** One order-preserving ToMe step: the top r of A (by best cosine into B) merge into their best b. */
function mergeStep(toks: Tok[], aSet: number[], bSet: number[], r: number): Tok[] {
  if (r <= 0 || bSet.length === 0) return toks;
  const best = aSet.map((a) => {
    let bb = -1;
    let bs = -Infinity;
    for (const b of bSet) {
      const sim = cos(toks[a]!.x, toks[b]!.x);
      if (sim > bs) [bs, bb] = [sim, b];
    }
    return { a, b: bb, sim: bs };
  });
  best.sort((p, q) => (p.sim !== q.sim ? q.sim - p.sim : p.a - q.a));
  const into = new Map<number, number>();
  for (const m of best.slice(0, r)) into.set(m.a, m.b);
  const acc = toks.map((t) => t.x.map((v) => t.s * v));
  const size = toks.map((t) => t.s);
  const orig = toks.map((t) => [...t.orig]);
  for (let i = 0; i < toks.length; i++) {
    const b = into.get(i);
    if (b === undefined) continue;
    toks[i]!.x.forEach((v, k) => (acc[b]![k] = acc[b]![k]! + toks[i]!.s * v));
    size[b] = size[b]! + toks[i]!.s;
    orig[b]!.push(...toks[i]!.orig);
  }
  const out: Tok[] = [];
  for (let i = 0; i < toks.length; i++) if (!into.has(i)) out.push({ x: acc[i]!.map((v) => v / size[i]!), s: size[i]!, orig: orig[i]! });
  return out;
}

const mergeCount = (n: number, keep: number) => Math.floor(n * (1 - keep) + 1e-9);
const evens = (n: number) => [...Array(n).keys()].filter((i) => i % 2 === 0);
const odds = (n: number) => [...Array(n).keys()].filter((i) => i % 2 === 1);

export interface ClipsRef {
  imgKeep: number;
  crossKeep: number;
  intraKeep: number;
  groups?: number[];
}

export function mergeClips(frames: ArrayLike<number>, t: number, p: number, c: number, o: ClipsRef) {
  let clips: Tok[][] = [];
  for (let f = 0; f < t; f++) {
    const toks = toRows(frames, p, c, f * p * c).map((x, q) => ({ x, s: 1, orig: [f * p + q] }));
    clips.push(mergeStep(toks, evens(p), odds(p), Math.min(mergeCount(p, o.imgKeep), Math.floor(p / 2))));
  }
  for (let round = 0; ; round++) {
    let g: number;
    if (o.groups === undefined) {
      if (clips.length <= 1) break;
      g = 2;
    } else {
      if (round >= o.groups.length) break;
      g = o.groups[round]!;
    }
    const next: Tok[][] = [];
    for (let c0 = 0; c0 < clips.length; c0 += g) {
      const group = clips.slice(c0, c0 + g);
      if (group.length === 1) {
        next.push(group[0]!);
        continue;
      }
      const joined: Tok[] = [];
      const aSet: number[] = [];
      const bSet: number[] = [];
      group.forEach((clip, ci) =>
        clip.forEach((tok) => {
          (ci % 2 === 1 ? aSet : bSet).push(joined.length);
          joined.push(tok);
        }),
      );
      const crossed = mergeStep(joined, aSet, bSet, Math.min(mergeCount(joined.length, o.crossKeep), aSet.length));
      const n2 = crossed.length;
      next.push(mergeStep(crossed, evens(n2), odds(n2), Math.min(mergeCount(n2, o.intraKeep), Math.floor(n2 / 2))));
    }
    clips = next;
  }
  const flat = clips.flat();
  const assignment = new Int32Array(t * p);
  flat.forEach((tok, row) => tok.orig.forEach((i) => (assignment[i] = row)));
  return {
    x: Float32Array.from(flat.flatMap((tok) => tok.x)),
    sizes: Float32Array.from(flat.map((tok) => tok.s)),
    assignment,
    clipLengths: Int32Array.from(clips.map((cl) => cl.length)),
  };
}

// --- FastV ---------------------------------------------------------------------------------

/** [heads, N, N] -> [N]: average attention each key receives over all queries and heads. */
export function receivedAttention(attention: ArrayLike<number>, heads: number, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let h = 0; h < heads; h++) for (let i = 0; i < n; i++) s += attention[(h * n + i) * n + j]!;
    out[j] = s / (heads * n);
  }
  return out;
}
