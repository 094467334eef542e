// Zero-TPrune (pruneByAttentionGraph) on DeviceTensors. A 'cpu' DeviceTensor runs the CPU
// backend and must equal the host path bit for bit. A 'cuda' one runs cuda/tokens/graph.cu
// (PageRank rounds, head mean, S-stage similarities) with the CPU's arithmetic and order:
// the same kept tokens on inputs whose importances are well separated, importances within
// 1e-6 relative (bit for bit on the emulated device). Kept rows stay on the input's device.
// CUDA cases skip visibly when no CUDA device answers.
import { describe, expect, it } from 'vitest';

import { nativeCall, type InferzipError } from '../../lib/errors.js';
import { native } from '../../lib/native.js';
import { castFloat, tensor, type Tensor } from '../../lib/tensor.js';
import { pruneByAttentionGraph, pruneByAttentionGraphSync, type PruneByAttentionGraphOptions } from '../../lib/tokens/index.js';
import { codeOf, codeOfAsync, errorOf } from '../errors.js';
import {
  emulated,
  expectClose,
  expectSameBits,
  expectSameRows,
  hasCuda,
  randn,
  separatedKeep,
  softmaxRows,
  twoCuda,
  expectSameSelection,
  Uploads,
} from './device-helpers.js';
import { rng } from './random.js';
import type { FloatDType } from '../../lib/validate.js';

interface Case {
  tokens: Tensor<FloatDType>;
  attention: Tensor<FloatDType>;
  opts: PruneByAttentionGraphOptions;
  n: number;
  batch: number;
}

const DTYPES = ['f32', 'bf16', 'f16'] as const;

/** Random Zero-TPrune inputs: heads, batch, iterations, share, dtypes, a zero attention row now and then. */
function randomCase(rand: () => number, trial: number, maxN = 40, maxC = 10): Case {
  const n = 1 + Math.floor(rand() * maxN);
  const c = 1 + Math.floor(rand() * maxC);
  const heads = 1 + Math.floor(rand() * 4);
  const batch = trial % 4 === 3 ? 2 : 0;
  const rows = batch || 1;
  const a = softmaxRows(rand, rows * heads * n, n);
  if (trial % 5 === 2) a.fill(0, 0, n); // a zero row attends uniformly
  const dtype = DTYPES[trial % 3]!;
  const attDtype = DTYPES[(trial >> 1) % 3]!;
  return {
    tokens: castFloat(tensor('f32', batch ? [batch, n, c] : [n, c], randn(rand, rows * n * c)), dtype),
    attention: castFloat(tensor('f32', batch ? [batch, heads, n, n] : heads === 1 && rand() < 0.5 ? [n, n] : [heads, n, n], a), attDtype),
    n,
    batch: rows,
    opts: { keep: Math.floor(rand() * (n + 1)), iters: Math.floor(rand() * 40), similarShare: rand() },
  };
}

describe('pruneByAttentionGraph on DeviceTensors', () => {
  it("'cpu' DeviceTensors give the host result bit for bit (heads, batches, shares, dtypes, zero rows; sync and async)", async () => {
    const rand = rng(601);
    for (let trial = 0; trial < 24; trial++) {
      const c = randomCase(rand, trial);
      const up = new Uploads('cpu');
      const [dt, da] = [up.put(c.tokens), up.put(c.attention)];
      const got = trial % 2 ? await pruneByAttentionGraph(dt, da, c.opts) : pruneByAttentionGraphSync(dt, da, c.opts);
      const want = pruneByAttentionGraphSync(c.tokens, c.attention, c.opts);
      expectSameSelection(got, want, 'cpu');
      up.dispose();
    }
  });

  it.skipIf(!hasCuda)(
    "'cuda' keeps the CPU's tokens on well-separated importances, importances within 1e-6 relative, kept rows bit for bit (sync and async)",
    async () => {
      const rand = rng(602);
      let cases = 0;
      for (let trial = 0; trial < 12; trial++) {
        const c = randomCase(rand, trial, 48, 16);
        if (c.n < 2) continue;
        const up = new Uploads('cuda');
        const [dt, da] = [up.put(c.tokens), up.put(c.attention)];
        // every token's importance (no pruning): the whole vector agrees
        const all = pruneByAttentionGraphSync(c.tokens, c.attention, { ...c.opts, keep: c.n });
        const allDev = await pruneByAttentionGraph(dt, da, { ...c.opts, keep: c.n });
        expect(Array.from(allDev.kept)).toEqual(Array.from(all.kept));
        if (emulated) expectSameBits(allDev.scores, all.scores);
        else expectClose(allDev.scores, all.scores, 1e-6);
        allDev.tokens.dispose();
        // the I stage's cut in a wide gap; the S stage then ranks similarities computed
        // with the CPU's sums (ties there go to the lower index on both)
        const share = c.opts.similarShare!;
        const pick = separatedKeep(all.scores, c.batch, c.n, (k) => k + Math.min(Math.floor((c.n - k) * share + 1e-9), k));
        if (!(pick.gap > 1e-4)) {
          up.dispose();
          continue;
        }
        cases++;
        const opts = { ...c.opts, keep: pick.keep };
        const got = trial % 2 ? await pruneByAttentionGraph(dt, da, opts) : pruneByAttentionGraphSync(dt, da, opts);
        const want = pruneByAttentionGraphSync(c.tokens, c.attention, opts);
        expect(got.tokens.device).toBe('cuda:0');
        expect(Array.from(got.kept)).toEqual(Array.from(want.kept));
        expect(Array.from(got.dropped)).toEqual(Array.from(want.dropped));
        expectClose(got.scores, want.scores, 1e-6);
        expectSameRows(got.tokens, want.tokens);
        got.tokens.dispose();
        up.dispose();
      }
      expect(cases).toBeGreaterThanOrEqual(6);
    },
  );

  it.skipIf(!twoCuda)('a tensor on cuda:1 runs there and its kept rows stay there; cuda:0 with cuda:1 is DEVICE_MISMATCH', () => {
    const rand = rng(603);
    const tokens = tensor('f32', [20, 6], randn(rand, 120));
    const attention = tensor('f32', [2, 20, 20], softmaxRows(rand, 40, 20));
    const one = new Uploads('cuda:1');
    const zero = new Uploads('cuda:0');
    const res = pruneByAttentionGraphSync(one.put(tokens), one.put(attention), { keep: 8 });
    const want = pruneByAttentionGraphSync(tokens, attention, { keep: 8 });
    expect(res.tokens.device).toBe('cuda:1');
    expect(Array.from(res.kept)).toEqual(Array.from(want.kept));
    expectSameRows(res.tokens, want.tokens);
    res.tokens.dispose();
    expect(codeOf(() => pruneByAttentionGraphSync(one.put(tokens), zero.put(attention), { keep: 8 }))).toBe('DEVICE_MISMATCH');
    one.dispose();
    zero.dispose();
  });

  it('host and device tensors mixed are INVALID_ARGUMENT; two devices are DEVICE_MISMATCH', async () => {
    const rand = rng(604);
    const tokens = tensor('f32', [6, 4], randn(rand, 24));
    const attention = tensor('f32', [6, 6], softmaxRows(rand, 6, 6));
    const cpu = new Uploads('cpu');
    expect(codeOf(() => pruneByAttentionGraphSync(tokens, cpu.put(attention) as never, { keep: 2 }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => pruneByAttentionGraphSync(cpu.put(tokens), attention as never, { keep: 2 }))).toBe('INVALID_ARGUMENT');
    if (hasCuda) {
      const gpu = new Uploads('cuda');
      const err = errorOf(() => pruneByAttentionGraphSync(cpu.put(tokens), gpu.put(attention), { keep: 2 }));
      expect(err.code).toBe('DEVICE_MISMATCH');
      expect(err.message).toMatch(/tokens is on cpu but attention is on cuda:0/);
      expect(await codeOfAsync(() => pruneByAttentionGraph(gpu.put(tokens), cpu.put(attention), { keep: 2 }))).toBe('DEVICE_MISMATCH');
      gpu.dispose();
    }
    cpu.dispose();
  });

  describe.each([
    ['cpu', false],
    ['cuda', !hasCuda],
  ] as const)('hostile inputs on %s', (device, skip) => {
    it.skipIf(skip)(
      'NaN/Inf tokens, NaN/Inf/negative attention are INVALID_ARGUMENT with the CPU path message, sync and async',
      async () => {
        const rand = rng(605);
        const tok = randn(rand, 2 * 8 * 3);
        const att = softmaxRows(rand, 2 * 2 * 8, 8);
        const up = new Uploads(device);
        const cpuUp = new Uploads('cpu');
        const cases: [Float32Array, Float32Array][] = [];
        for (const bad of [NaN, Infinity, -Infinity]) {
          const t = tok.slice();
          t[29] = bad; // batch item 1, element 5
          cases.push([t, att]);
          const a = att.slice();
          a[200] = bad; // batch item 1, element 72
          cases.push([tok, a]);
        }
        const neg = att.slice();
        neg[150] = -0.25; // batch item 1, element 22
        cases.push([tok, neg]);
        for (const [t, a] of cases) {
          const tt = tensor('f32', [2, 8, 3], t);
          const at = tensor('f32', [2, 2, 8, 8], a);
          const e = errorOf(() => pruneByAttentionGraphSync(up.put(tt), up.put(at), { keep: 3 }));
          expect(e.code).toBe('INVALID_ARGUMENT');
          expect(e.message).toBe(errorOf(() => pruneByAttentionGraphSync(cpuUp.put(tt), cpuUp.put(at), { keep: 3 })).message);
          expect(await codeOfAsync(() => pruneByAttentionGraph(up.put(tt), up.put(at), { keep: 3 }))).toBe('INVALID_ARGUMENT');
          expect(codeOf(() => pruneByAttentionGraphSync(tt, at, { keep: 3 }))).toBe('INVALID_ARGUMENT');
        }
        up.dispose();
        cpuUp.dispose();
      },
    );

    it.skipIf(skip)('bad dtypes, shapes, options and disposed tensors are typed errors', async () => {
      const up = new Uploads(device);
      const rand = rng(606);
      const tokens = up.put(tensor('f32', [6, 2], randn(rand, 12)));
      const att = up.put(tensor('f32', [6, 6], softmaxRows(rand, 6, 6)));
      const ints = up.put(tensor('i32', [6, 6], new Int32Array(36)));
      expect(codeOf(() => pruneByAttentionGraphSync(tokens, ints, { keep: 1 }))).toBe('DTYPE_MISMATCH');
      expect(codeOf(() => pruneByAttentionGraphSync(tokens, up.put(tensor('f32', [5, 5])), { keep: 1 }))).toBe('SHAPE_MISMATCH');
      expect(codeOf(() => pruneByAttentionGraphSync(tokens, up.put(tensor('f32', [6])), { keep: 1 }))).toBe('SHAPE_MISMATCH');
      expect(codeOf(() => pruneByAttentionGraphSync(up.put(tensor('f32', [1, 6, 2])), att, { keep: 1 }))).toBe('SHAPE_MISMATCH');
      expect(codeOf(() => pruneByAttentionGraphSync(tokens, att, { keep: 1, similarShare: 2 }))).toBe('INVALID_ARGUMENT');
      expect(codeOf(() => pruneByAttentionGraphSync(tokens, att, { keep: 1, iters: -1 }))).toBe('INVALID_ARGUMENT');
      const gone = up.put(tensor('f32', [6, 6]));
      gone.dispose();
      await expect(pruneByAttentionGraph(tokens, gone, { keep: 1 })).rejects.toMatchObject({ code: 'DISPOSED' });
      up.dispose();
    });

    it.skipIf(skip)('the native entry point rejects hostile sizes and dtypes', () => {
      const up = new Uploads(device);
      const tokens = up.put(tensor('f32', [4, 2]));
      const att = up.put(tensor('f32', [4, 4], new Float32Array(16).fill(0.25)));
      const base = {
        tokens: tokens.buffer,
        tokensDtype: 'f32',
        attention: att.buffer,
        attentionDtype: 'f32',
        batch: 1,
        n: 4,
        c: 2,
        heads: 1,
        iters: 5,
        similarShare: 0.5,
        keep: 2,
      };
      const code = (change: object) => {
        try {
          nativeCall(() => native().tokensPruneByAttentionGraphDevice({ ...base, ...change }));
        } catch (e) {
          return (e as InferzipError).code;
        }
        return 'no error';
      };
      expect(code({})).toBe('no error');
      expect(code({ heads: 2 })).toBe('SHAPE_MISMATCH'); // attention buffer too small
      expect(code({ n: 1000 })).toBe('SHAPE_MISMATCH');
      expect(code({ heads: 2147483647, n: 2147483647 })).toBe('SHAPE_MISMATCH');
      expect(code({ attentionDtype: 'f64' })).toBe('DTYPE_MISMATCH');
      expect(code({ attentionDtype: 'bf16' })).toBe('no error'); // 16 bf16 values fit in the 64 bytes
      expect(code({ similarShare: NaN })).toBe('INVALID_ARGUMENT');
      expect(code({ keep: 5 })).toBe('INVALID_ARGUMENT');
      expect(code({ attention: new Float32Array(16) })).toBe('INVALID_ARGUMENT');
      up.dispose();
    });

    it.skipIf(skip)('an async call leaves the event loop free', async () => {
      const rand = rng(607);
      const n = device === 'cpu' ? 512 : 96;
      const heads = device === 'cpu' ? 8 : 2;
      const up = new Uploads(device);
      const tokens = up.put(tensor('f32', [n, 32], randn(rand, n * 32)));
      const att = up.put(tensor('f32', [heads, n, n], softmaxRows(rand, heads * n, n)));
      let ticks = 0;
      let done = false;
      const spin = () => {
        if (done) return;
        ticks++;
        setImmediate(spin);
      };
      const work = pruneByAttentionGraph(tokens, att, { ratio: 0.25, iters: 30 }).then((r) => {
        done = true;
        return r;
      });
      setImmediate(spin);
      const res = await work;
      expect(res.kept.length).toBe(n / 4);
      expect(ticks).toBeGreaterThan(0);
      res.tokens.dispose();
      up.dispose();
    });
  });
});
