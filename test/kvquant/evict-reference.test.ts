// The H2O / D2O eviction reference (test/kvquant/reference/evict.ts) against the working
// spec's check vectors, and its budget rules. It is the oracle QuantizedKVCache's eviction is
// held to (evict.test.ts).
import { describe, expect, it } from 'vitest';

import { allocateD2OBudgets, EvictingHead, resolveBudget } from './reference/evict.js';
import { K, V } from './reference/evict-vectors.js';

function run(method: 'h2o' | 'd2o') {
  const head = new EvictingHead({ method, budget: 4 });
  for (let t = 0; t < 6; t++) head.append(t, K[t]!, V[t]!);
  head.attend(K.slice(0, 6).map((q, t) => ({ position: t, q })));
  if (method === 'd2o') head.allocate(head.b, head.r); // a lone cache: L = 1, B_l = B
  const kept = [[...head.positions]];
  const taus = [head.tau];
  let out: number[][] = [];
  for (let t = 6; t < 9; t++) {
    head.append(t, K[t]!, V[t]!);
    out = head.attend([{ position: t, q: K[t]! }]);
    kept.push([...head.positions]);
    taus.push(head.tau);
  }
  return { head, kept, taus, out };
}

describe('H2O / D2O eviction reference: the spec check vectors', () => {
  it('H2O: kept sets, final scores and the last output', () => {
    const { head, kept, out } = run('h2o');
    expect(kept).toEqual([
      [0, 1, 4, 5],
      [0, 1, 5, 6],
      [1, 5, 6, 7],
      [1, 5, 7, 8],
    ]);
    head.scores.forEach((s, i) => expect(s).toBeCloseTo([2.3115, 1.5099, 0.6884, 0.7795][i]!, 4));
    expect(out[0]![0]).toBeCloseTo(-0.5418, 4);
    expect(out[0]![1]).toBeCloseTo(-1.7148, 4);
  });

  it('D2O: same kept sets, thresholds and merged rows', () => {
    const { head, kept, taus } = run('d2o');
    expect(kept).toEqual([
      [0, 1, 4, 5],
      [0, 1, 5, 6],
      [1, 5, 6, 7],
      [1, 5, 7, 8],
    ]);
    [0.6053, 0.4299, 0.6622, 0.763].forEach((t, i) => expect(taus[i]).toBeCloseTo(t, 4));
    const k = [
      [-0.5264, -2],
      [1.3133, 2],
      [-2, -1],
      [1, -2],
    ];
    const v = [
      [1.4736, -1],
      [-0.1527, 0.8473],
      [2, 1],
      [-1, -2],
    ];
    head.keys.forEach((row, i) => row.forEach((x, c) => expect(x).toBeCloseTo(k[i]![c]!, 4)));
    head.values.forEach((row, i) => row.forEach((x, c) => expect(x).toBeCloseTo(v[i]![c]!, 4)));
  });

  it('budget rules and D2O layer budgets', () => {
    expect(resolveBudget({ method: 'h2o', budget: 0.5 }, 10)).toEqual({ b: 5, r: 2, h: 3 });
    expect(resolveBudget({ method: 'h2o', budget: 4, recent: 4 }, 10)).toEqual({ b: 4, r: 4, h: 0 });
    expect(resolveBudget({ method: 'h2o', budget: 0.01 }, 10)).toEqual({ b: 1, r: 0, h: 1 });
    for (const bad of [
      { budget: 0 },
      { budget: -1 },
      { budget: 1.5 },
      { budget: Number.NaN },
      { budget: 4, recent: -1 },
      { budget: 4, recent: 5 },
      { budget: 4, recent: 2.5 },
    ]) {
      expect(() => resolveBudget({ method: 'h2o', ...bad }, 10)).toThrow();
    }
    // flatter layers (lower density) get more; equal densities split evenly
    const alloc = allocateD2OBudgets([0.1, 0.5, 0.9], 10, 5, 100);
    expect(alloc[0]!.b).toBeGreaterThan(alloc[1]!.b);
    expect(alloc[1]!.b).toBeGreaterThan(alloc[2]!.b);
    expect(allocateD2OBudgets([0.3, 0.3], 10, 5, 100)).toEqual([
      { b: 10, r: 5 },
      { b: 10, r: 5 },
    ]);
    expect(allocateD2OBudgets([0.1, 0.9], 200, 100, 100)).toEqual([
      { b: 200, r: 100 },
      { b: 200, r: 100 },
    ]);
  });
});
