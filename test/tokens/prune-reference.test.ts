// The native FastV / DyCoke KV / HoliTom inner-LLM passes against the TypeScript
// reference they replaced (test/tokens/reference/prune.ts): same arithmetic, so the
// results must be bit-identical, ties included (attention values are quantized so
// equal weights and equal similarities occur often).
import { describe, expect, it } from 'vitest';

import { castFloat, tensor, type DType, type Tensor } from '../../lib/tensor.js';
import {
  DynamicKVPruner,
  meanAttention,
  mergeByAttention,
  mergeByAttentionSync,
  pruneByAttention,
  pruneByAttentionSync,
} from '../../lib/tokens/index.js';
import { expectSameArray, expectSameTensor } from './exact.js';
import { rng } from './random.js';
import * as ref from './reference/prune.js';

function attentionFor(rand: () => number, heads: number, n: number, levels: number): Tensor<'f32'> | Float32Array {
  const data = Float32Array.from({ length: heads * n }, () => Math.floor(rand() * levels) / levels);
  return heads === 1 && rand() < 0.5 ? data : tensor('f32', heads === 1 ? [n] : [heads, n], data);
}

function span(rand: () => number, n: number): [number, number] {
  const a = Math.floor(rand() * (n + 1));
  const b = Math.floor(rand() * (n + 1));
  return [Math.min(a, b), Math.max(a, b)];
}

describe('native pruning equals the reference', () => {
  it('meanAttention', () => {
    const rand = rng(11);
    for (const [h, n] of [
      [1, 5],
      [3, 17],
      [7, 300],
      [12, 1000],
    ] as const) {
      const att = tensor(
        'f32',
        [h, n],
        Float32Array.from({ length: h * n }, () => rand()),
      );
      expectSameArray(meanAttention(att), ref.meanAttention(att));
    }
  });

  it('pruneByAttention over shapes, dtypes, heads, spans and ties', async () => {
    const rand = rng(12);
    const dtypes: DType[] = ['f32', 'bf16', 'f16', 'i32', 'u8', 'i64'];
    for (let trial = 0; trial < 60; trial++) {
      const n = 1 + Math.floor(rand() * (trial < 40 ? 40 : 800));
      const c = 1 + Math.floor(rand() * 9);
      const rows = rand() < 0.3 ? 1 + Math.floor(rand() * 3) : 0;
      const dtype = dtypes[trial % dtypes.length]!;
      const size = (rows || 1) * n * c;
      const base = tensor(
        'f32',
        rows ? [rows, n, c] : [n, c],
        Float32Array.from({ length: size }, () => rand() * 4 - 2),
      );
      const tokens: Tensor =
        dtype === 'f32' || dtype === 'bf16' || dtype === 'f16'
          ? castFloat(base, dtype)
          : dtype === 'i64'
            ? tensor(
                'i64',
                base.shape,
                BigInt64Array.from(base.data, (v) => BigInt(Math.round(v * 1000))),
              )
            : dtype === 'i32'
              ? tensor(
                  'i32',
                  base.shape,
                  Int32Array.from(base.data, (v) => Math.round(v * 1e6)),
                )
              : tensor(
                  'u8',
                  base.shape,
                  Uint8Array.from(base.data, (v) => Math.round((v + 2) * 50)),
                );
      const att = attentionFor(rand, 1 + Math.floor(rand() * 4), n, trial % 2 ? 4 : 1000);
      const sp = span(rand, n);
      const options = rand() < 0.5 ? { span: sp, keep: Math.floor(rand() * (sp[1] - sp[0] + 1)) } : { span: sp, ratio: rand() };
      const want = ref.pruneByAttention(tokens, att, options);
      const got = trial % 2 ? await pruneByAttention(tokens, att, options) : pruneByAttentionSync(tokens, att, options);
      expectSameArray(got.kept, want.kept);
      expectSameArray(got.dropped, want.dropped);
      expectSameTensor(got.tokens, want.tokens);
    }
  });

  it('DynamicKVPruner steps, drift and reuse', async () => {
    const rand = rng(13);
    for (let trial = 0; trial < 10; trial++) {
      const n = 20 + Math.floor(rand() * 500);
      const start = Math.floor(rand() * (n - 1));
      const sp: [number, number] = [start, start + 1 + Math.floor(rand() * (n - start - 1))];
      const options = { span: sp, pruneRatio: rand() * 0.99, threshold: 0.5 + rand() * 0.5 };
      const mine = new DynamicKVPruner(options);
      const theirs = new ref.DynamicKVPruner(options);
      const heads = 1 + Math.floor(rand() * 3);
      let att = attentionFor(rand, heads, n, 6);
      for (let step = 0; step < 12; step++) {
        // mostly small drifts, sometimes a jump
        if (rand() < 0.3) att = attentionFor(rand, heads, n, 6);
        else {
          const d = (att instanceof Float32Array ? att : att.data).slice();
          d[Math.floor(rand() * d.length)] = rand();
          att = att instanceof Float32Array ? d : tensor('f32', att.shape, d);
        }
        const want = theirs.update(att);
        const got = step % 2 ? await mine.step(att) : mine.stepSync(att);
        expect(got.recomputed).toBe(want.recomputed);
        expect(Object.is(got.similarity, want.similarity)).toBe(true);
        expectSameArray(got.kept, want.kept);
        expect(Array.from(mine.attendMask(n))).toEqual(Array.from(theirs.attendMask(n)));
      }
    }
  });

  it('mergeByAttention with sizes, duplicate rows (similarity ties) and float dtypes', async () => {
    const rand = rng(14);
    for (let trial = 0; trial < 30; trial++) {
      const n = 2 + Math.floor(rand() * (trial < 20 ? 60 : 700));
      const c = 1 + Math.floor(rand() * 40);
      const x = Float32Array.from({ length: n * c }, () => rand() * 2 - 1);
      // copy some rows (and scaled copies) so several kept tokens are equally similar
      for (let i = 0; i < n / 4; i++) {
        const from = Math.floor(rand() * n);
        const to = Math.floor(rand() * n);
        const scale = rand() < 0.5 ? 1 : 2;
        for (let k = 0; k < c; k++) x[to * c + k] = x[from * c + k]! * scale;
      }
      if (trial % 5 === 0) x.fill(0, 0, c); // a zero row: similarity 0 to everything
      const dtype = (['f32', 'bf16', 'f16'] as const)[trial % 3]!;
      const tokens = castFloat(tensor('f32', [n, c], x), dtype);
      const att = attentionFor(rand, 1 + Math.floor(rand() * 3), n, trial % 2 ? 5 : 1000);
      let sp = span(rand, n);
      if (sp[1] - sp[0] < 2) sp = [0, n];
      const keep = 1 + Math.floor(rand() * (sp[1] - sp[0]));
      const sizes = rand() < 0.5 ? Float32Array.from({ length: n }, () => 1 + Math.floor(rand() * 5)) : undefined;
      const options = { span: sp, keep, ...(sizes ? { sizes } : {}) };
      const want = ref.mergeByAttention(tokens, att, options);
      const got = trial % 2 ? await mergeByAttention(tokens, att, options) : mergeByAttentionSync(tokens, att, options);
      expectSameArray(got.kept, want.kept);
      expectSameArray(got.dropped, want.dropped);
      expectSameArray(got.assignment, want.assignment);
      expectSameArray(got.sizes, want.sizes);
      expectSameTensor(got.tokens, want.tokens);
    }
  });
});
