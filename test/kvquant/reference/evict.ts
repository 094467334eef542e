/**
 * Plain TypeScript reference of H2O / D2O KV eviction (working spec kv-evict.md) for one
 * KV head over dense f32 keys and values: accumulated attention scores, the budget and
 * recent-window rule, D2O's layer budgets and its token-level merging of evicted tokens
 * into their most similar kept token. It is the oracle a cache integration must equal;
 * QuantizedKVCache's eviction is held to it in test/kvquant/evict.test.ts.
 */

export interface EvictionOptions {
  method: 'h2o' | 'd2o';
  /** Fraction of the prefill length P in (0, 1), or an integer token count >= 1. */
  budget: number;
  /** Fraction of B in (0, 1), or an integer count >= 0. Default 0.5. */
  recent?: number;
  /** D2O's EMA weight of the merge threshold. Default 0.5. */
  emaBeta?: number;
}

/** B and R from the options and the prefill length P (throws on invalid options). */
export function resolveBudget(o: EvictionOptions, p: number): { b: number; r: number; h: number } {
  const { budget } = o;
  const recent = o.recent ?? 0.5;
  const frac = (x: number) => x > 0 && x < 1;
  if (!Number.isFinite(budget) || budget <= 0 || (!frac(budget) && !Number.isInteger(budget))) throw new Error(`invalid budget ${budget}`);
  if (!Number.isFinite(recent) || recent < 0 || (!frac(recent) && !Number.isInteger(recent))) throw new Error(`invalid recent ${recent}`);
  if (!frac(budget) && !frac(recent) && recent > budget) throw new Error('recent exceeds budget');
  const b = frac(budget) ? Math.max(1, Math.floor(budget * p + 1e-9)) : budget;
  const r = frac(recent) ? Math.floor(recent * b + 1e-9) : Math.min(recent, b);
  return { b, r, h: b - r };
}

const dot = (x: number[], y: number[]) => x.reduce((s, v, i) => s + v * y[i]!, 0);
function cosine(x: number[], y: number[]): number {
  const nx = Math.sqrt(dot(x, x));
  const ny = Math.sqrt(dot(y, y));
  return nx > 0 && ny > 0 ? dot(x, y) / (nx * ny) : 0;
}

/** One KV head's kept tokens and eviction state. */
export class EvictingHead {
  positions: number[] = [];
  keys: number[][] = [];
  values: number[][] = [];
  scores: number[] = [];
  tau: number | undefined;
  /** Population variance of the scores right after the prefill attention (D2O's density). */
  density = Number.NaN;
  prefill = 0;
  b = 0;
  r = 0;
  private calls = 0;

  constructor(readonly options: EvictionOptions) {}

  append(position: number, k: number[], v: number[]): void {
    this.positions.push(position);
    this.keys.push([...k]);
    this.values.push([...v]);
    this.scores.push(0);
  }

  /**
   * Causal attention of `queries` (rows with their absolute positions) over the kept tokens,
   * logits q.k / sqrt(d); adds every probability to the attended token's score, then runs one
   * eviction round (D2O skips the round of its first call: budgets are allocated first).
   */
  attend(queries: { position: number; q: number[] }[]): number[][] {
    const d = queries[0]!.q.length;
    const out: number[][] = [];
    for (const { position, q } of queries) {
      const seen = this.positions.map((p, j) => (p <= position ? j : -1)).filter((j) => j >= 0);
      const logits = seen.map((j) => dot(q, this.keys[j]!) / Math.sqrt(d));
      const m = Math.max(...logits);
      const e = logits.map((l) => Math.exp(l - m));
      const z = e.reduce((s, x) => s + x, 0);
      const o = new Array<number>(d).fill(0);
      seen.forEach((j, i) => {
        const p = e[i]! / z;
        this.scores[j] = this.scores[j]! + p;
        for (let c = 0; c < d; c++) o[c] = o[c]! + p * this.values[j]![c]!;
      });
      out.push(o);
    }
    if (this.calls++ === 0) {
      this.prefill = this.positions.length;
      const mean = this.scores.reduce((s, x) => s + x, 0) / this.scores.length;
      this.density = this.scores.reduce((s, x) => s + (x - mean) ** 2, 0) / this.scores.length;
      ({ b: this.b, r: this.r } = resolveBudget(this.options, this.prefill));
      if (this.options.method === 'd2o') return out;
    }
    this.round();
    return out;
  }

  /** D2O: take a layer budget (from allocateD2OBudgets) and run the skipped round. */
  allocate(b: number, r: number): void {
    this.b = b;
    this.r = r;
    this.round();
  }

  round(): void {
    const n = this.positions.length;
    if (n <= this.b) return;
    const idx = this.positions.map((_, j) => j);
    const recent = new Set(idx.slice(n - this.r));
    const rest = idx
      .filter((j) => !recent.has(j))
      .sort((x, y) => (this.scores[x] !== this.scores[y] ? this.scores[y]! - this.scores[x]! : this.positions[x]! - this.positions[y]!));
    const keep = new Set([...recent, ...rest.slice(0, this.b - this.r)]);
    const kept = idx.filter((j) => keep.has(j));
    const evicted = idx.filter((j) => !keep.has(j));
    if (this.options.method === 'd2o' && evicted.length > 0) this.merge(evicted, kept);
    this.positions = kept.map((j) => this.positions[j]!);
    this.keys = kept.map((j) => this.keys[j]!);
    this.values = kept.map((j) => this.values[j]!);
    this.scores = kept.map((j) => this.scores[j]!);
  }

  private merge(evicted: number[], kept: number[]): void {
    const beta = this.options.emaBeta ?? 0.5;
    const best = evicted.map((e) => {
      let c = -1;
      let m = -Infinity;
      for (const j of kept) {
        const u = cosine(this.keys[e]!, this.keys[j]!);
        if (u > m) [m, c] = [u, j];
      }
      return { e, c, m };
    });
    const mu = best.reduce((s, x) => s + x.m, 0) / best.length;
    this.tau = this.tau === undefined ? mu : beta * mu + (1 - beta) * this.tau;
    const groups = new Map<number, { e: number; w: number }[]>();
    for (const x of best) if (x.m >= this.tau) groups.set(x.c, [...(groups.get(x.c) ?? []), { e: x.e, w: Math.exp(x.m) }]);
    const keys = this.keys.map((r) => [...r]);
    const values = this.values.map((r) => [...r]);
    for (const [c, ms] of groups) {
      const den = Math.E + ms.reduce((s, x) => s + x.w, 0);
      for (const [src, dst] of [
        [this.keys, keys],
        [this.values, values],
      ] as const) {
        dst[c] = src[c]!.map((x, i) => (Math.E * x + ms.reduce((s, m) => s + m.w * src[m.e]![i]!, 0)) / den);
      }
    }
    this.keys = keys;
    this.values = values;
  }
}

/** D2O layer budgets from the layers' densities (lower density -> more budget). */
export function allocateD2OBudgets(densities: number[], b: number, r: number, p: number): { b: number; r: number }[] {
  const l = densities.length;
  if (b >= p) return densities.map(() => ({ b, r }));
  const lo = Math.min(...densities);
  const hi = Math.max(...densities);
  const norm = densities.map((d) => (hi > lo ? (d - lo) / (hi - lo) : 0));
  const e = norm.map((x) => Math.exp(-x));
  const z = e.reduce((s, x) => s + x, 0);
  return e.map((x) => {
    const bl = Math.min(p, Math.max(1, Math.floor((l * b * x) / z + 1e-9)));
    const rl = Math.floor((bl * r) / b);
    return { b: bl, r: rl };
  });
}
