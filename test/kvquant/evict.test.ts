// H2O / D2O eviction on QuantizedKVCache: equality with the plain TypeScript reference
// (reference/evict.ts) on the spec's check vectors and on random inputs, invariants under
// every quantization scheme, D2O layer budgets, hostile options, save/load, sync/async twins
// and call order.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { backend } from '../../lib/backend.js';
import { allocateD2OBudgets, denseAttentionSync, QuantizedKVCache, type KVCacheOptions, type KVScheme } from '../../lib/index.js';
import { tensor, type Tensor } from '../../lib/tensor.js';
import { maxAbsDiff, randn } from './helpers.js';
import { allocateD2OBudgets as refBudgets, EvictingHead, type EvictionOptions } from './reference/evict.js';
import { K, V } from './reference/evict-vectors.js';

const dir = mkdtempSync(join(tmpdir(), 'iz-evict-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Rows of d=2 padded with zeros to head_dim 8 (dot products and cosines unchanged). */
function pad(rows: number[][]): Tensor<'f32'> {
  const out = new Float32Array(rows.length * 8);
  rows.forEach((r, i) => out.set(r, i * 8));
  return tensor('f32', [1, rows.length, 8], out);
}

/** Full precision: the residual window holds every token, so nothing is quantized. */
const exact = (eviction: KVCacheOptions['eviction'], heads = 1, headDim = 8): KVCacheOptions => ({
  scheme: 'fp8',
  heads,
  headDim,
  groupSize: 32,
  residualLength: 256,
  device: 'cpu',
  eviction,
});

/** The quantized caches of these tests: groups of 4 tokens, a short residual window, kivi on the CPU unless told. */
function small(o: Partial<KVCacheOptions> = {}): QuantizedKVCache {
  return QuantizedKVCache.create({ scheme: 'kivi', heads: 2, headDim: 16, groupSize: 4, residualLength: 8, device: 'cpu', ...o });
}

function positions(c: QuantizedKVCache): number[][] {
  const p = c.positions();
  const [, h, n] = p.shape as [number, number, number];
  return Array.from({ length: h }, (_, i) => Array.from(p.data.subarray(i * n, (i + 1) * n)));
}

describe('eviction on QuantizedKVCache: the spec check vectors', () => {
  for (const method of ['h2o', 'd2o'] as const) {
    it(`${method}: kept sets, scores, output and merged rows equal the spec`, () => {
      using c = QuantizedKVCache.create(exact({ method, budget: 4 }));
      const scale = 1 / Math.sqrt(2);
      c.appendSync(pad(K.slice(0, 6)), pad(V.slice(0, 6)));
      c.attentionSync(pad(K.slice(0, 6)), { scale });
      expect(c.eviction).toMatchObject({ prefill: 6, budgetTokens: 4, recentTokens: 2, allocated: false });
      const kept: number[][] = [];
      let out: Tensor<'f32'> | undefined;
      for (let t = 6; t < 9; t++) {
        c.appendSync(pad([K[t]!]), pad([V[t]!]));
        if (t === 6) kept.push(positions(c)[0]!.filter((p) => p < 6)); // the prefill round (d2o: at this append)
        out = c.attentionSync(pad([K[t]!]), { scale });
        kept.push(positions(c)[0]!);
        expect(c.tokens).toBe(4);
      }
      expect(kept).toEqual([
        [0, 1, 4, 5],
        [0, 1, 5, 6],
        [1, 5, 6, 7],
        [1, 5, 7, 8],
      ]);
      if (method === 'h2o') {
        const s = c.scores().data; // (d2o's merged keys change later scores; the random cases check those)
        [2.3115, 1.5099, 0.6884, 0.7795].forEach((x, i) => expect(s[i]).toBeCloseTo(x, 4));
        expect(out!.data[0]).toBeCloseTo(-0.5418, 4);
        expect(out!.data[1]).toBeCloseTo(-1.7148, 4);
      } else {
        const { k, v } = c.dequantizeSync();
        const rows = (x: Float32Array) => [0, 1, 2, 3].map((i) => [x[i * 8]!, x[i * 8 + 1]!]);
        const wantK = [
          [-0.5264, -2],
          [1.3133, 2],
          [-2, -1],
          [1, -2],
        ];
        const wantV = [
          [1.4736, -1],
          [-0.1527, 0.8473],
          [2, 1],
          [-1, -2],
        ];
        rows(k.data).forEach((r, i) => r.forEach((x, j) => expect(x).toBeCloseTo(wantK[i]![j]!, 3)));
        rows(v.data).forEach((r, i) => r.forEach((x, j) => expect(x).toBeCloseTo(wantV[i]![j]!, 3)));
      }
    });
  }
});

/** One run of a cache and the per-head references on the same random prompt and decode. */
function runBoth(method: 'h2o' | 'd2o', seed: number, o: Partial<EvictionOptions> & { budget: number }) {
  const heads = 2,
    d = 16,
    P = 24,
    steps = 12;
  const k = randn(heads * (P + steps) * d, seed);
  const v = randn(heads * (P + steps) * d, seed + 1);
  const q = randn(heads * (P + steps) * d, seed + 2);
  const rows = (x: Float32Array, t0: number, t1: number) => {
    const out = new Float32Array(heads * (t1 - t0) * d);
    for (let h = 0; h < heads; h++) out.set(x.subarray((h * (P + steps) + t0) * d, (h * (P + steps) + t1) * d), h * (t1 - t0) * d);
    return tensor('f32', [1, heads, t1 - t0, d], out);
  };
  const row = (x: Float32Array, h: number, t: number) => Array.from(x.subarray((h * (P + steps) + t) * d, (h * (P + steps) + t + 1) * d));
  const opts = { method, ...o };
  const refs = Array.from({ length: heads }, () => new EvictingHead(opts));
  using c = QuantizedKVCache.create(exact(opts, heads, d));
  c.appendSync(rows(k, 0, P), rows(v, 0, P));
  const outs: { cache: Float32Array; ref: number[][][] }[] = [];
  let out = c.attentionSync(rows(q, 0, P));
  let ref = refs.map((r, h) => {
    for (let t = 0; t < P; t++) r.append(t, row(k, h, t), row(v, h, t));
    return r.attend(Array.from({ length: P }, (_, t) => ({ position: t, q: row(q, h, t) })));
  });
  outs.push({ cache: out.data, ref });
  if (method === 'd2o') for (const r of refs) r.allocate(r.b, r.r);
  const kept: { cache: number[][]; ref: number[][] }[] = [];
  for (let t = P; t < P + steps; t++) {
    c.appendSync(rows(k, t, t + 1), rows(v, t, t + 1));
    out = c.attentionSync(rows(q, t, t + 1));
    ref = refs.map((r, h) => {
      r.append(t, row(k, h, t), row(v, h, t));
      return r.attend([{ position: t, q: row(q, h, t) }]);
    });
    outs.push({ cache: out.data, ref });
    kept.push({ cache: positions(c), ref: refs.map((r) => [...r.positions]) });
  }
  const { k: kc, v: vc } = c.dequantizeSync();
  return { c: { scores: c.scores().data, k: kc.data, v: vc.data, tokens: c.tokens }, refs, outs, kept, d };
}

describe('eviction equals the TypeScript reference on random inputs', () => {
  const cases: ['h2o' | 'd2o', Partial<EvictionOptions> & { budget: number }][] = [
    ['h2o', { budget: 0.5 }],
    ['h2o', { budget: 0.25, recent: 0.25 }],
    ['h2o', { budget: 7, recent: 0 }],
    ['h2o', { budget: 6, recent: 6 }],
    ['d2o', { budget: 0.5 }],
    ['d2o', { budget: 0.25, emaBeta: 0.8 }],
    ['h2o', { budget: 40 }],
  ];
  for (const [i, [method, o]] of cases.entries()) {
    it(`${method} ${JSON.stringify(o)}: kept sets, scores, outputs and rows`, () => {
      const { c, refs, outs, kept, d } = runBoth(method, 100 + i, o);
      for (const k of kept) expect(k.cache).toEqual(k.ref);
      for (const { cache, ref } of outs) expect(maxAbsDiff(cache, ref.flat(2))).toBeLessThan(1e-4);
      expect(
        maxAbsDiff(
          c.scores,
          refs.flatMap((r) => r.scores),
        ),
      ).toBeLessThan(1e-4);
      expect(
        maxAbsDiff(
          c.k,
          refs.flatMap((r) => r.keys.flat()),
        ),
      ).toBeLessThan(1e-4);
      expect(
        maxAbsDiff(
          c.v,
          refs.flatMap((r) => r.values.flat()),
        ),
      ).toBeLessThan(1e-4);
      expect(c.tokens).toBe(refs[0]!.positions.length);
      expect(c.k.length).toBe(2 * c.tokens * d);
    });
  }
});

describe('eviction composes with every quantization scheme', () => {
  const schemes: [KVScheme, 'h2o' | 'd2o'][] = [
    ['kivi', 'h2o'],
    ['kivi', 'd2o'],
    ['fp8', 'h2o'],
    ['fp8', 'd2o'],
    ['zipcache', 'h2o'],
    ['zipcache', 'd2o'],
    ['vidkv', 'h2o'],
  ];
  for (const [scheme, method] of schemes) {
    it(`${scheme} + ${method}: budget, recent window, attention over the kept tokens, bounded memory`, () => {
      const heads = 2,
        qHeads = 4,
        d = 32,
        P = 40,
        steps = 30;
      using c = small({ scheme, heads, headDim: d, eviction: { method, budget: 0.5 } });
      const B = 20,
        R = 10;
      let seed = 7;
      const kv = (n: number) =>
        [
          tensor('f32', [1, heads, n, d], randn(heads * n * d, seed++)),
          tensor('f32', [1, heads, n, d], randn(heads * n * d, seed++)),
        ] as const;
      const [k0, v0] = kv(P);
      c.appendSync(k0, v0);
      c.attentionSync(tensor('f32', [1, qHeads, P, d], randn(qHeads * P * d, seed++)));
      const mem: number[] = [];
      for (let t = P; t < P + steps; t++) {
        const [k, v] = kv(1);
        c.appendSync(k, v);
        const q = tensor('f32', [1, qHeads, 1, d], randn(qHeads * d, seed++));
        // the packed, masked path equals dense attention over the kept tokens, dequantized
        const { k: kd, v: vd } = c.dequantizeSync();
        const want = denseAttentionSync(q, kd, vd);
        const got = c.attentionSync(q);
        expect(maxAbsDiff(got.data, want.data)).toBeLessThan(2e-4);
        expect(c.tokens).toBe(B);
        const pos = positions(c);
        for (const p of pos) {
          expect(p).toHaveLength(B);
          for (let j = 1; j < p.length; j++) expect(p[j]!).toBeGreaterThan(p[j - 1]!);
          for (let r = 0; r < R; r++) expect(p).toContain(t - r); // the recent window is always kept
        }
        mem.push(c.memoryBytes);
      }
      // memory stops growing with the sequence: the last steps hold no more than a bounded amount
      const m = c.memory;
      expect(m.slots).toBeGreaterThanOrEqual(B);
      if (scheme === 'vidkv') {
        // vidkv's quantized slots are not reclaimed (value trits are ranked across blocks): only its residual rows are
        expect(m.slots).toBeLessThanOrEqual(P + steps);
        expect(m.liveQuantizedKeys).toBeLessThan(m.quantizedKeys); // the holes are visible, and cost bits per kept element
        return;
      }
      expect(m.slots).toBeLessThan(P + steps);
      expect(Math.max(...mem.slice(-10))).toBeLessThanOrEqual(Math.max(...mem.slice(0, 20)) * 1.5);
      using plain = small({ scheme, heads, headDim: d });
      seed = 7;
      const [pk, pv] = kv(P);
      plain.appendSync(pk, pv);
      for (let t = P; t < P + steps; t++) {
        const [k, v] = kv(1);
        plain.appendSync(k, v);
      }
      expect(c.memoryBytes).toBeLessThan(plain.memoryBytes);
    });
  }

  it("granularity 'layer' keeps one set for all heads", () => {
    using c = QuantizedKVCache.create({ ...exact({ method: 'h2o', budget: 0.3, granularity: 'layer' }, 3, 16) });
    c.appendSync(tensor('f32', [1, 3, 20, 16], randn(960, 1)), tensor('f32', [1, 3, 20, 16], randn(960, 2)));
    c.attentionSync(tensor('f32', [1, 3, 20, 16], randn(960, 3)));
    const p = positions(c);
    expect(p[0]).toHaveLength(6);
    expect(p[1]).toEqual(p[0]);
    expect(p[2]).toEqual(p[0]);
  });
});

describe('D2O layer budgets', () => {
  it('allocateD2OBudgets equals the reference and runs each layer round', () => {
    const L = 3,
      heads = 2,
      d = 16,
      P = 30;
    const caches = Array.from({ length: L }, () => QuantizedKVCache.create(exact({ method: 'd2o', budget: 0.4 }, heads, d)));
    try {
      caches.forEach((c, l) => {
        c.appendSync(
          tensor('f32', [1, heads, P, d], randn(heads * P * d, 10 + l, 0.5 + l)),
          tensor('f32', [1, heads, P, d], randn(heads * P * d, 20 + l)),
        );
        c.attentionSync(tensor('f32', [1, heads, P, d], randn(heads * P * d, 30 + l, 1 + l)));
        expect(c.tokens).toBe(P); // d2o skips the prefill round until its budget is allocated
      });
      const dens = caches.map((c) => c.density!);
      const want = refBudgets(dens, 12, 6, P);
      const got = allocateD2OBudgets(caches);
      expect(got).toEqual(want.map((x) => ({ budget: x.b, recent: x.r })));
      caches.forEach((c, l) => expect(c.tokens).toBe(got[l]!.budget));
      expect(got.reduce((s, x) => s + x.budget, 0)).toBeLessThanOrEqual(L * 12);
      expect(got.reduce((s, x) => s + x.budget, 0)).toBeGreaterThan(L * 12 - L);
      expect(() => allocateD2OBudgets(caches)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    } finally {
      for (const c of caches) c.dispose();
    }
  });

  it('refuses caches before their prefill attention or without d2o', () => {
    using a = QuantizedKVCache.create(exact({ method: 'd2o', budget: 0.5 }));
    using b = QuantizedKVCache.create(exact({ method: 'h2o', budget: 0.5 }));
    expect(() => allocateD2OBudgets([a])).toThrow(/prefill attention/);
    expect(() => allocateD2OBudgets([b])).toThrow(/no d2o eviction/);
    expect(() => allocateD2OBudgets([])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('hostile eviction options', () => {
  const bad: [unknown, string][] = [
    [{ method: 'h2o', budget: 0 }, 'budget'],
    [{ method: 'h2o', budget: -1 }, 'budget'],
    [{ method: 'h2o', budget: Number.NaN }, 'budget'],
    [{ method: 'h2o', budget: 1.5 }, 'budget'],
    [{ method: 'h2o', budget: '10' }, 'budget'],
    [{ method: 'h2o', budget: 4, recent: -1 }, 'recent'],
    [{ method: 'h2o', budget: 4, recent: 2.5 }, 'recent'],
    [{ method: 'h2o', budget: 4, recent: 5 }, 'exceeds budget'],
    [{ method: 'lru', budget: 4 }, 'method'],
    [{ budget: 4 }, 'method'],
    [{ method: 'h2o', budget: 4, granularity: 'token' }, 'granularity'],
    [{ method: 'd2o', budget: 4, emaBeta: 2 }, 'emaBeta'],
    [{ method: 'h2o', budget: 4, budgt: 3 }, "unknown key 'budgt'"],
    ['h2o', 'must be an object'],
  ];
  for (const [eviction, what] of bad) {
    it(`${JSON.stringify(eviction)} -> INVALID_ARGUMENT naming ${what}`, () => {
      expect(() => QuantizedKVCache.create({ heads: 1, headDim: 8, device: 'cpu', eviction: eviction as never })).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(what) }),
      );
    });
  }
  it('d2o with vidkv is UNSUPPORTED (its key blocks cannot be re-encoded)', () => {
    expect(() =>
      QuantizedKVCache.create({ scheme: 'vidkv', heads: 1, headDim: 8, device: 'cpu', eviction: { method: 'd2o', budget: 4 } }),
    ).toThrow(expect.objectContaining({ code: 'UNSUPPORTED' }));
  });
  it('a budget at least the prompt evicts nothing and equals the cache without eviction', () => {
    using a = small({ residualLength: 4, eviction: { method: 'h2o', budget: 64 } });
    using b = small({ residualLength: 4 });
    for (const c of [a, b]) c.appendSync(tensor('f32', [2, 20, 16], randn(640, 1)), tensor('f32', [2, 20, 16], randn(640, 2)));
    const q = tensor('f32', [2, 20, 16], randn(640, 3));
    expect(Array.from(a.attentionSync(q).data)).toEqual(Array.from(b.attentionSync(q).data));
    expect(a.tokens).toBe(20);
    expect(Array.from(a.positions().data.subarray(0, 20))).toEqual(Array.from({ length: 20 }, (_, i) => i));
  });
});

/** A prompt then decode steps, with a save/load at `saveAt` when given; returns every output. */
async function decode(mode: 'sync' | 'async' | 'unawaited', scheme: KVScheme, method: 'h2o' | 'd2o', saveAt = -1) {
  const heads = 2,
    d = 16,
    P = 16;
  let c = small({ scheme, heads, headDim: d, residualLength: 4, eviction: { method, budget: 0.5 } });
  const kv = (n: number, s: number) =>
    [tensor('f32', [heads, n, d], randn(heads * n * d, s)), tensor('f32', [heads, n, d], randn(heads * n * d, s + 1))] as const;
  const q = (n: number, s: number) => tensor('f32', [heads, n, d], randn(heads * n * d, s + 2));
  const outs: Float32Array[] = [];
  const steps: [number, number][] = [[P, 0], ...Array.from({ length: 10 }, (_, i) => [1, 10 * (i + 1)] as [number, number])];
  if (mode === 'unawaited') {
    const pending: Promise<Tensor<'f32'>>[] = [];
    for (const [n, s] of steps) {
      const [k, v] = kv(n, s);
      void c.append(k, v);
      pending.push(c.attention(q(n, s)));
    }
    for (const p of await Promise.all(pending)) outs.push(p.data);
  } else {
    for (const [i, [n, s]] of steps.entries()) {
      const [k, v] = kv(n, s);
      if (mode === 'sync') {
        c.appendSync(k, v);
        outs.push(c.attentionSync(q(n, s)).data);
      } else {
        await c.append(k, v);
        outs.push((await c.attention(q(n, s))).data);
      }
      if (i === saveAt) {
        const path = join(dir, `${scheme}-${method}.kv`);
        await c.save(path);
        c.dispose();
        c = await QuantizedKVCache.load(path, { device: 'cpu' });
      }
    }
  }
  const pos = Array.from(c.positions().data);
  const scores = Array.from(c.scores().data);
  c.dispose();
  return { outs, pos, scores };
}

describe('save/load, async twins and call order', () => {
  for (const [scheme, method] of [
    ['kivi', 'h2o'],
    ['zipcache', 'd2o'],
    ['fp8', 'd2o'],
  ] as const) {
    it(`${scheme} + ${method}: saving mid-decode and continuing matches bit for bit`, async () => {
      const a = await decode('sync', scheme, method);
      const b = await decode('async', scheme, method, 4);
      expect(b.outs).toEqual(a.outs);
      expect(b.pos).toEqual(a.pos);
      expect(b.scores).toEqual(a.scores);
    });
  }
  it('async equals sync, and unawaited calls run in call order', async () => {
    const a = await decode('sync', 'kivi', 'd2o');
    const b = await decode('async', 'kivi', 'd2o');
    const c = await decode('unawaited', 'kivi', 'd2o');
    expect(b.outs).toEqual(a.outs);
    expect(c.outs).toEqual(a.outs);
    expect(c.pos).toEqual(a.pos);
  });
  it('the saved eviction state survives: options, budget, prefill', async () => {
    using c = QuantizedKVCache.create(exact({ method: 'h2o', budget: 0.5, recent: 2 }));
    c.appendSync(pad(K.slice(0, 6)), pad(V.slice(0, 6)));
    c.attentionSync(pad(K.slice(0, 6)));
    const path = join(dir, 'state.kv');
    await c.save(path);
    using l = await QuantizedKVCache.load(path, { device: 'cpu' });
    expect(l.eviction).toEqual(c.eviction);
    expect(l.options.eviction).toEqual({ method: 'h2o', budget: 0.5, recent: 2, granularity: 'head', emaBeta: 0.5 });
    expect(positions(l)).toEqual(positions(c));
  });
});

const hasCuda = backend().devices.length > 0;
const trim = process.env.INFERZIP_TEST_TRIM === '1'; // CI's emulated GPU: fewer decode steps

describe('eviction on CUDA equals the CPU', () => {
  for (const [scheme, method] of [
    ['kivi', 'h2o'],
    ['fp8', 'd2o'],
    ['zipcache', 'd2o'],
  ] as const) {
    it.skipIf(!hasCuda)(`${scheme} + ${method}: kept sets, scores, outputs and rows`, () => {
      const heads = 2,
        qHeads = 4,
        d = 16,
        P = 24,
        steps = trim ? 4 : 12;
      const opts = { scheme, heads, headDim: d, eviction: { method, budget: 0.5 } } as const;
      using cpu = small(opts);
      using gpu = small({ ...opts, device: 'cuda' });
      let seed = 40;
      const next = (h: number, n: number) => tensor('f32', [h, n, d], randn(h * n * d, seed++));
      const k0 = next(heads, P),
        v0 = next(heads, P),
        q0 = next(qHeads, P);
      const outs = [cpu, gpu].map((c) => {
        c.appendSync(k0, v0);
        return c.attentionSync(q0).data;
      });
      expect(maxAbsDiff(outs[0]!, outs[1]!)).toBeLessThan(1e-4);
      for (let t = 0; t < steps; t++) {
        const k = next(heads, 1),
          v = next(heads, 1),
          q = next(qHeads, 1);
        const [oc, og] = [cpu, gpu].map((c) => {
          c.appendSync(k, v);
          return c.attentionSync(q).data;
        });
        expect(maxAbsDiff(oc!, og!)).toBeLessThan(1e-4);
        expect(positions(gpu)).toEqual(positions(cpu));
        expect(maxAbsDiff(gpu.scores().data, cpu.scores().data)).toBeLessThan(1e-4);
        expect(gpu.handle.mirrorCheck().differingBytes).toBe(0);
      }
      const a = cpu.dequantizeSync(),
        b = gpu.dequantizeSync();
      expect(maxAbsDiff(a.k.data, b.k.data)).toBeLessThan(1e-5);
      expect(maxAbsDiff(a.v.data, b.v.data)).toBeLessThan(1e-5);
      expect(gpu.memory.slots).toBe(cpu.memory.slots);
    });
  }
});

// A round uploads only the plane bytes it changed (merged rows, compacted records and the
// zeroed tails behind them): the device mirror must still equal the host planes whole, which
// is what uploading every plane whole after each round would leave there.
describe('eviction rounds on CUDA upload only what they changed', () => {
  const cases: [KVScheme, 'h2o' | 'd2o', 'head' | 'layer'][] = [
    ['kivi', 'h2o', 'head'],
    ['kivi', 'd2o', 'head'],
    ['kivi', 'd2o', 'layer'],
    ['fp8', 'h2o', 'head'],
    ['fp8', 'd2o', 'head'],
    ['zipcache', 'h2o', 'layer'],
    ['zipcache', 'd2o', 'head'],
    ['vidkv', 'h2o', 'head'],
  ];
  for (const [scheme, method, granularity] of cases) {
    it.skipIf(!hasCuda)(`${scheme} + ${method} (${granularity}): the mirror equals the host planes after every round`, async () => {
      const heads = 2,
        qHeads = 4,
        d = 16,
        P = 40,
        steps = trim ? 8 : 24;
      let c = small({ scheme, heads, headDim: d, device: 'cuda', eviction: { method, budget: 0.4, granularity } });
      try {
        let seed = 90;
        const next = (h: number, n: number) => tensor('f32', [h, n, d], randn(h * n * d, seed++));
        c.appendSync(next(heads, P), next(heads, P));
        c.attentionSync(next(qHeads, P));
        if (method === 'd2o') allocateD2OBudgets([c]); // the round skipped at the prefill
        let compacted = false;
        for (let t = 0; t < steps; t++) {
          if (t === steps >> 1) {
            // a loaded cache's mirror is uploaded from the saved planes; its rounds go on the same way
            const path = join(dir, `mirror-${scheme}-${method}-${granularity}.kv`);
            await c.save(path);
            c.dispose();
            c = await QuantizedKVCache.load(path, { device: 'cuda' });
            expect(c.handle.mirrorCheck().differingBytes).toBe(0);
          }
          const before = c.memory.quantizedKeys;
          c.appendSync(next(heads, 1), next(heads, 1));
          const appended = c.memory.quantizedKeys;
          c.attentionSync(next(qHeads, 1));
          compacted ||= c.memory.quantizedKeys < appended || c.memory.quantizedKeys < before;
          const m = c.handle.mirrorCheck();
          expect(m.differingBytes).toBe(0);
          expect(m.rounds).toBeGreaterThan(0);
        }
        const m = c.handle.mirrorCheck();
        expect(m.roundUploadBytes).toBeLessThan(m.wholeUploadBytes);
        // quantized blocks were compacted out (vidkv keeps its quantized slots)
        expect(compacted).toBe(scheme !== 'vidkv');
      } finally {
        c.dispose();
      }
    });
  }
});

describe('a long prefill runs in query slices with the same result', () => {
  it.each(hasCuda ? (['cpu', 'cuda'] as const) : (['cpu'] as const))(
    '%s: scores, kept sets and outputs equal the one-call prefill',
    (device) => {
      const heads = 2,
        qHeads = 4,
        d = 16,
        P = 40;
      const opts = { heads, headDim: d, device, eviction: { method: 'h2o', budget: 0.5 } } as const;
      const k = tensor('f32', [heads, P, d], randn(heads * P * d, 71));
      const v = tensor('f32', [heads, P, d], randn(heads * P * d, 72));
      const q = tensor('f32', [qHeads, P, d], randn(qHeads * P * d, 73));
      using whole = small(opts);
      whole.appendSync(k, v);
      const a = whole.attentionSync(q);
      using sliced = small(opts);
      sliced.appendSync(k, v);
      process.env.INFERZIP_KV_SCORE_SLICE_BYTES = String(2 * 2 * P * 4 * 3); // 3 queries per slice
      let b: Tensor<'f32'>;
      try {
        b = sliced.attentionSync(q);
      } finally {
        delete process.env.INFERZIP_KV_SCORE_SLICE_BYTES;
      }
      expect(maxAbsDiff(a.data, b.data)).toBeLessThan(1e-5);
      expect(positions(sliced)).toEqual(positions(whole));
      expect(maxAbsDiff(sliced.scores().data, whole.scores().data)).toBeLessThan(1e-5);
    },
  );
});
