// TopV (pruneByTransport) on DeviceTensors. A 'cpu' DeviceTensor runs the CPU backend and
// must equal the host path bit for bit. A 'cuda' one runs cuda/tokens/transport.cu (cost
// matrix, Sinkhorn, scores) with the CPU's arithmetic and summation order: on inputs whose
// scores are well separated it keeps the same tokens; its f64 scores differ from the CPU's at
// most where CUDA's exp differs from libm's in the last bit, so the f32 scores agree within
// 1e-6 relative (on the emulated device, which runs libm, bit for bit). Kept rows stay on
// the input's device. CUDA cases skip visibly when no CUDA device answers.
import { describe, expect, it } from 'vitest';

import { nativeCall, type InferzipError } from '../../lib/errors.js';
import { native } from '../../lib/native.js';
import { castFloat, tensor, type Tensor } from '../../lib/tensor.js';
import { pruneByTransport, pruneByTransportSync, type PruneByTransportOptions } from '../../lib/tokens/index.js';
import { codeOf, codeOfAsync, errorOf } from '../errors.js';
import {
  emulated,
  expectClose,
  expectSameBits,
  expectSameRows,
  hasCuda,
  randn,
  separatedKeep,
  twoCuda,
  expectSameSelection,
  Uploads,
} from './device-helpers.js';
import { rng } from './random.js';
import type { FloatDType } from '../../lib/validate.js';

interface Case {
  visual: Tensor<FloatDType>;
  target?: Tensor<FloatDType>;
  text?: Tensor<FloatDType>;
  opts: PruneByTransportOptions;
  n: number;
}

const DTYPES = ['f32', 'bf16', 'f16'] as const;

/** Random TopV inputs: grid, targets and/or text, weights, eps, iterations, dtype, batch. */
function randomCase(rand: () => number, trial: number, maxSide = 6, maxC = 12): Case {
  const h = 1 + Math.floor(rand() * maxSide);
  const w = 1 + Math.floor(rand() * maxSide);
  const n = h * w;
  const c = 1 + Math.floor(rand() * maxC);
  const batch = trial % 4 === 3 ? 2 : 0;
  const rows = batch || 1;
  const dtype = DTYPES[trial % 3]!;
  const shape = (r: number) => (batch ? [batch, r, c] : [r, c]);
  const t = (r: number) => castFloat(tensor('f32', shape(r), randn(rand, rows * r * c)), dtype);
  const l = rand() < 0.5 ? 1 + Math.floor(rand() * 5) : 0;
  return {
    visual: t(n),
    target: rand() < 0.5 ? t(n) : undefined,
    text: l ? t(l) : undefined,
    n,
    opts: {
      keep: Math.floor(rand() * (n + 1)),
      grid: [h, w],
      recover: rand() < 0.3 ? rand() : 0,
      alpha: 0.5 + rand(),
      beta: rand() * 0.5,
      gamma: rand() * 0.5,
      eps: 0.05 + rand() * 0.3,
      iters: 1 + Math.floor(rand() * 20),
    },
  };
}

/** The case's options with target/text as DeviceTensors of `up`. */
function deviceOpts(c: Case, up: Uploads, extra: PruneByTransportOptions = {}): PruneByTransportOptions {
  return { ...c.opts, ...extra, target: up.put(c.target), text: up.put(c.text) };
}

function hostOpts(c: Case, extra: PruneByTransportOptions = {}): PruneByTransportOptions {
  return { ...c.opts, ...extra, target: c.target, text: c.text };
}

describe('pruneByTransport on DeviceTensors', () => {
  it("'cpu' DeviceTensors give the host result bit for bit (targets, text, grids, recovery, dtypes, batches; sync and async)", async () => {
    const rand = rng(501);
    for (let trial = 0; trial < 24; trial++) {
      const c = randomCase(rand, trial);
      const up = new Uploads('cpu');
      const dv = up.put(c.visual);
      const opts = deviceOpts(c, up);
      const got = trial % 2 ? await pruneByTransport(dv, opts) : pruneByTransportSync(dv, opts);
      const want = pruneByTransportSync(c.visual, hostOpts(c));
      expectSameSelection(got, want, 'cpu');
      up.dispose();
    }
  });

  it.skipIf(!hasCuda)(
    "'cuda' keeps the CPU's tokens on well-separated scores, scores within 1e-6 relative, kept rows bit for bit (sync and async)",
    async () => {
      const rand = rng(502);
      let cases = 0;
      for (let trial = 0; trial < 12; trial++) {
        const c = randomCase(rand, trial, 7, 24);
        if (c.n < 2) continue;
        const up = new Uploads('cuda');
        const dv = up.put(c.visual);
        // every token's score: the whole vector agrees
        const all = pruneByTransportSync(c.visual, hostOpts(c, { keep: c.n, recover: 0 }));
        const allDev = await pruneByTransport(dv, deviceOpts(c, up, { keep: c.n, recover: 0 }));
        expect(Array.from(allDev.kept)).toEqual(Array.from(all.kept));
        if (emulated) expectSameBits(allDev.scores, all.scores);
        else expectClose(allDev.scores, all.scores, 1e-6);
        allDev.tokens.dispose();
        // a kept count whose cut sits in a wide gap of every batch item's ranking
        const batch = c.visual.shape.length === 3 ? c.visual.shape[0]! : 1;
        const recover = c.opts.recover ?? 0;
        const pick = separatedKeep(all.scores, batch, c.n, (k) => k - Math.floor(k * recover + 1e-9));
        if (!(pick.gap > 1e-4)) {
          up.dispose();
          continue;
        }
        cases++;
        const got =
          trial % 2
            ? await pruneByTransport(dv, deviceOpts(c, up, { keep: pick.keep }))
            : pruneByTransportSync(dv, deviceOpts(c, up, { keep: pick.keep }));
        const want = pruneByTransportSync(c.visual, hostOpts(c, { keep: pick.keep }));
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
    const rand = rng(503);
    const visual = tensor('f32', [12, 8], randn(rand, 96));
    const text = tensor('f32', [3, 8], randn(rand, 24));
    const one = new Uploads('cuda:1');
    const zero = new Uploads('cuda:0');
    const res = pruneByTransportSync(one.put(visual), { keep: 5, text: one.put(text), grid: [3, 4] });
    const want = pruneByTransportSync(visual, { keep: 5, text, grid: [3, 4] });
    expect(res.tokens.device).toBe('cuda:1');
    expect(Array.from(res.kept)).toEqual(Array.from(want.kept));
    expectSameRows(res.tokens, want.tokens);
    res.tokens.dispose();
    expect(codeOf(() => pruneByTransportSync(one.put(visual), { keep: 5, text: zero.put(text) }))).toBe('DEVICE_MISMATCH');
    one.dispose();
    zero.dispose();
  });

  it('host and device tensors mixed are INVALID_ARGUMENT; two devices are DEVICE_MISMATCH', async () => {
    const rand = rng(504);
    const visual = tensor('f32', [6, 4], randn(rand, 24));
    const text = tensor('f32', [2, 4], randn(rand, 8));
    const cpu = new Uploads('cpu');
    expect(codeOf(() => pruneByTransportSync(visual, { keep: 2, text: cpu.put(text) }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => pruneByTransportSync(cpu.put(visual), { keep: 2, text }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => pruneByTransportSync(cpu.put(visual), { keep: 2, target: visual }))).toBe('INVALID_ARGUMENT');
    if (hasCuda) {
      const gpu = new Uploads('cuda');
      const err = errorOf(() => pruneByTransportSync(cpu.put(visual), { keep: 2, text: gpu.put(text) }));
      expect(err.code).toBe('DEVICE_MISMATCH');
      expect(err.message).toMatch(/visual is on cpu but text is on cuda:0/);
      expect(await codeOfAsync(() => pruneByTransport(gpu.put(visual), { keep: 2, target: cpu.put(visual) }))).toBe('DEVICE_MISMATCH');
      gpu.dispose();
    }
    cpu.dispose();
  });

  describe.each([
    ['cpu', false],
    ['cuda', !hasCuda],
  ] as const)('hostile inputs on %s', (device, skip) => {
    it.skipIf(skip)('NaN/Inf in visual, target or text is INVALID_ARGUMENT with the CPU path message, sync and async', async () => {
      const rand = rng(505);
      const data = randn(rand, 2 * 9 * 4);
      const up = new Uploads(device);
      const cpuUp = new Uploads('cpu');
      for (const bad of [NaN, Infinity, -Infinity]) {
        const x = data.slice();
        x[41] = bad; // batch item 1, element 5
        const dirty = tensor('f32', [2, 9, 4], x);
        const clean = tensor('f32', [2, 9, 4], data);
        const smallText = tensor('f32', [2, 1, 4], x.slice(36, 44));
        for (const [visual, opts] of [
          [dirty, {}],
          [clean, { target: dirty }],
          [clean, { text: smallText }],
        ] as const) {
          const onDevice = (u: Uploads): PruneByTransportOptions => ({
            keep: 3,
            grid: [3, 3],
            ...('target' in opts ? { target: u.put(opts.target) } : {}),
            ...('text' in opts ? { text: u.put(opts.text) } : {}),
          });
          const e = errorOf(() => pruneByTransportSync(up.put(visual), onDevice(up)));
          expect(e.code).toBe('INVALID_ARGUMENT');
          // the same message as the CPU backend gives for the same DeviceTensors on 'cpu'
          expect(e.message).toBe(errorOf(() => pruneByTransportSync(cpuUp.put(visual), onDevice(cpuUp))).message);
          expect(await codeOfAsync(() => pruneByTransport(up.put(visual), onDevice(up)))).toBe('INVALID_ARGUMENT');
          // the host path rejects it too
          expect(codeOf(() => pruneByTransportSync(visual, { keep: 3, grid: [3, 3], ...opts }))).toBe('INVALID_ARGUMENT');
        }
        // keep 0 still checks the visual tokens
        expect(codeOf(() => pruneByTransportSync(up.put(dirty), { keep: 0 }))).toBe('INVALID_ARGUMENT');
      }
      up.dispose();
      cpuUp.dispose();
    });

    it.skipIf(skip)('bad dtypes, shapes and disposed tensors are typed errors', async () => {
      const up = new Uploads(device);
      const visual = up.put(tensor('f32', [4, 2], Float32Array.from([1, 0, 0, 1, 1, 1, 0.5, 0.5])));
      const ints = up.put(tensor('i32', [4, 2], new Int32Array(8)));
      expect(codeOf(() => pruneByTransportSync(ints as never, { keep: 1 }))).toBe('DTYPE_MISMATCH');
      expect(codeOf(() => pruneByTransportSync(visual, { keep: 1, text: ints as never }))).toBe('DTYPE_MISMATCH');
      expect(codeOf(() => pruneByTransportSync(visual, { keep: 1, target: up.put(tensor('f32', [3, 2])) }))).toBe('SHAPE_MISMATCH');
      expect(codeOf(() => pruneByTransportSync(visual, { keep: 1, text: up.put(tensor('f32', [2, 3])) }))).toBe('SHAPE_MISMATCH');
      expect(codeOf(() => pruneByTransportSync(up.put(tensor('f32', [8])), { keep: 1 }))).toBe('SHAPE_MISMATCH');
      expect(codeOf(() => pruneByTransportSync(up.put(tensor('f32', [0, 2])), { keep: 0 }))).toBe('SHAPE_MISMATCH');
      expect(codeOf(() => pruneByTransportSync(visual, { keep: 1, grid: [3, 3] }))).toBe('SHAPE_MISMATCH');
      const gone = up.put(tensor('f32', [4, 2]));
      gone.dispose();
      await expect(pruneByTransport(gone, { keep: 1 })).rejects.toMatchObject({ code: 'DISPOSED' });
      up.dispose();
    });

    it.skipIf(skip)('the native entry point rejects hostile sizes and dtypes', () => {
      const up = new Uploads(device);
      const small = up.put(tensor('f32', [4, 2]));
      const base = {
        visual: small.buffer,
        visualDtype: 'f32',
        batch: 1,
        n: 4,
        c: 2,
        gridH: 2,
        gridW: 2,
        alpha: 1,
        beta: 0.25,
        gamma: 0.25,
        eps: 0.1,
        iters: 3,
        keep: 2,
        recover: 0,
      };
      const code = (change: object) => {
        try {
          nativeCall(() => native().tokensPruneByTransportDevice({ ...base, ...change }));
        } catch (e) {
          return (e as InferzipError).code;
        }
        return 'no error';
      };
      expect(code({})).toBe('no error');
      expect(code({ n: 1000, gridH: 1000, gridW: 1 })).toBe('SHAPE_MISMATCH'); // 1000 tokens over an 8-float buffer
      expect(code({ batch: 3 })).toBe('SHAPE_MISMATCH');
      expect(code({ c: 2147483647, n: 2147483647, gridH: 2147483647, gridW: 1, keep: 0 })).toBe('SHAPE_MISMATCH');
      expect(code({ visualDtype: 'i8' })).toBe('DTYPE_MISMATCH');
      expect(code({ text: small.buffer, textDtype: 'f32', textRows: 5 })).toBe('SHAPE_MISMATCH');
      expect(code({ text: small.buffer, textDtype: 'f16', textRows: 8 })).toBe('no error');
      expect(code({ target: small.buffer })).toBe('INVALID_ARGUMENT'); // no targetDtype
      expect(code({ gridH: 3 })).toBe('SHAPE_MISMATCH');
      expect(code({ eps: 0 })).toBe('INVALID_ARGUMENT');
      expect(code({ visual: new Float32Array(8) })).toBe('INVALID_ARGUMENT');
      up.dispose();
    });

    it.skipIf(skip)('an async call leaves the event loop free', async () => {
      const rand = rng(506);
      const n = device === 'cpu' ? 576 : 144;
      const c = device === 'cpu' ? 128 : 32;
      const up = new Uploads(device);
      const side = Math.sqrt(n);
      const visual = up.put(tensor('f32', [n, c], randn(rand, n * c)));
      let ticks = 0;
      let done = false;
      const spin = () => {
        if (done) return;
        ticks++;
        setImmediate(spin);
      };
      const work = pruneByTransport(visual, { ratio: 0.25, grid: [side, side], iters: 20 }).then((r) => {
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
