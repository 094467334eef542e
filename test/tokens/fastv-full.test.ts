// FastV with the full attention matrix [heads, N, N]: the paper's criterion (average
// attention each token receives from all queries and heads of layer K) against the plain
// reference, the last-token form unchanged, a known answer and hostile shapes.
import { describe, expect, it } from 'vitest';

import { InferzipError } from '../../lib/errors.js';
import { tensor } from '../../lib/tensor.js';
import { pruneByAttention, pruneByAttentionSync } from '../../lib/tokens/index.js';
import { rng } from './random.js';
import * as prune from './reference/prune.js';
import * as ref from './reference/reduce.js';

describe('pruneByAttention with a full [heads, N, N] matrix', () => {
  it('equals ranking by the reference received attention, sync and async', async () => {
    const rand = rng(401);
    for (let trial = 0; trial < 20; trial++) {
      const n = 1 + Math.floor(rand() * 60);
      const heads = 1 + Math.floor(rand() * 4);
      // quantized values so equal weights (ties) happen
      const a = Float32Array.from({ length: heads * n * n }, () => Math.floor(rand() * 8) / 8);
      const x = tensor(
        'f32',
        [n, 3],
        Float32Array.from({ length: n * 3 }, () => rand()),
      );
      const start = Math.floor(rand() * n);
      const options = { span: [start, n] as [number, number], ratio: rand() };
      const weights = ref.receivedAttention(a, heads, n);
      const want = prune.pruneByAttention(x, weights, options);
      const att = tensor('f32', [heads, n, n], a);
      const got = trial % 2 ? await pruneByAttention(x, att, options) : pruneByAttentionSync(x, att, options);
      expect(Array.from(got.kept)).toEqual(Array.from(want.kept));
      expect(Array.from(got.tokens.data)).toEqual(Array.from(want.tokens.data));
    }
  });

  it('a known answer: causal attention where the last token disagrees with the average', () => {
    // 4 tokens, 1 head, causal rows. Token 1 gets much attention from queries 1-2, the last
    // query attends mostly to token 2. Received: [ (1+.1+.1+.1)/4, (.9+.8+.1)/4, (.1+.7)/4, .1/4 ]
    const att = tensor('f32', [1, 4, 4], Float32Array.from([1, 0, 0, 0, 0.1, 0.9, 0, 0, 0.1, 0.8, 0.1, 0, 0.1, 0.1, 0.7, 0.1]));
    const x = tensor('f32', [4, 1], Float32Array.from([0, 1, 2, 3]));
    expect(Array.from(pruneByAttentionSync(x, att, { keep: 2 }).kept)).toEqual([0, 1]);
    // the last-token form of the same layer keeps 2 and (tie at 0.1 -> lower index) 0
    const last = tensor('f32', [1, 4], Float32Array.from([0.1, 0.1, 0.7, 0.1]));
    expect(Array.from(pruneByAttentionSync(x, last, { keep: 2 }).kept)).toEqual([0, 2]);
  });

  it('ratio rounds the dropped count half up (L = 5, R = 0.5 drops 3)', () => {
    const att = tensor(
      'f32',
      [1, 5, 5],
      Float32Array.from({ length: 25 }, (_, i) => (i % 5) / 10),
    );
    const x = tensor('f32', [5, 1], Float32Array.from([0, 1, 2, 3, 4]));
    expect(Array.from(pruneByAttentionSync(x, att, { ratio: 0.5 }).kept)).toEqual([3, 4]);
  });

  it('hostile shapes and values: typed errors', async () => {
    const x = tensor('f32', [3, 1], Float32Array.from([0, 1, 2]));
    const bad = [
      tensor('f32', [1, 3, 4], new Float32Array(12)),
      tensor('f32', [2, 4, 4], new Float32Array(32)),
      tensor('i32', [1, 3, 3], new Int32Array(9)),
    ];
    for (const att of bad) {
      await expect(pruneByAttention(x, att as never, { keep: 1 })).rejects.toBeInstanceOf(InferzipError);
      expect(() => pruneByAttentionSync(x, att as never, { keep: 1 })).toThrow(InferzipError);
    }
    const nan = new Float32Array(9).fill(0.1);
    nan[4] = NaN;
    await expect(pruneByAttention(x, tensor('f32', [1, 3, 3], nan), { keep: 1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
