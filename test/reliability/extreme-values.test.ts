/**
 * Finite inputs at the top of the f32 range: rejected with a typed error where they would turn
 * into NaN (KV append of 3e38, ToMe on +-3e38, attention whose logits overflow), never NaN.
 */
import { describe, expect, it } from 'vitest';

import { InferzipError } from '../../lib/errors.js';
import { QuantizedKVCache, denseAttentionSync, type KVScheme } from '../../lib/kvquant/index.js';
import { tensor } from '../../lib/tensor.js';
import { mergeTokensSync } from '../../lib/tokens/index.js';
import { kvMaxAbs } from '../../lib/validate.js';

const H = 2;
const d = 16;
const filled = (n: number, f: (i: number) => number): Float32Array => Float32Array.from({ length: n }, (_, i) => f(i));

function typedOrFinite(run: () => { data: Float32Array }): 'typed' | 'finite' {
  try {
    const out = run();
    expect(out.data.every((x) => Number.isFinite(x))).toBe(true);
    return 'finite';
  } catch (err) {
    expect(err).toBeInstanceOf(InferzipError);
    expect((err as InferzipError).code).toBe('INVALID_ARGUMENT');
    return 'typed';
  }
}

describe.each(['kivi', 'vidkv', 'zipcache', 'fp8'] as KVScheme[])('KV cache %s with extreme finite values', (scheme) => {
  it('append just over the limit is INVALID_ARGUMENT', () => {
    using c = QuantizedKVCache.create({ scheme, heads: H, headDim: d, groupSize: 8, residualLength: 8 });
    const over = tensor(
      'f32',
      [H, 20, d],
      filled(H * 20 * d, (i) => (i === 7 ? kvMaxAbs(scheme) * 1.01 : 1)),
    );
    expect(() => c.appendSync(over, over)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('element 7') }),
    );
  });

  it('append of +-3e38 is INVALID_ARGUMENT (it used to store NaN silently)', () => {
    using c = QuantizedKVCache.create({ scheme, heads: H, headDim: d, groupSize: 8, residualLength: 8 });
    const k = tensor(
      'f32',
      [H, 20, d],
      filled(H * 20 * d, () => 3e38),
    );
    const v = tensor(
      'f32',
      [H, 20, d],
      filled(H * 20 * d, (i) => (i % 2 ? 3e38 : -3e38)),
    );
    expect(() => c.appendSync(k, v)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(c.tokens).toBe(0);
  });

  it('values at the accepted limit keep the cache finite; attention is finite or a typed overflow error', () => {
    using c = QuantizedKVCache.create({ scheme, heads: H, headDim: d, groupSize: 8, residualLength: 8 });
    const big = kvMaxAbs(scheme);
    c.appendSync(
      tensor(
        'f32',
        [H, 20, d],
        filled(H * 20 * d, (i) => (i % 3 ? big : -big)),
      ),
      tensor(
        'f32',
        [H, 20, d],
        filled(H * 20 * d, (i) => (i % 2 ? big : -big)),
      ),
    );
    const { k, v } = c.dequantizeSync();
    expect(k.data.every((x) => Number.isFinite(x))).toBe(true);
    expect(v.data.every((x) => Number.isFinite(x))).toBe(true);
    typedOrFinite(() =>
      c.attentionSync(
        tensor(
          'f32',
          [H, 1, d],
          filled(H * d, () => 1),
        ),
      ),
    );
    // a query that makes the logits overflow: typed error, not NaN
    expect(
      typedOrFinite(() =>
        c.attentionSync(
          tensor(
            'f32',
            [H, 1, d],
            filled(H * d, () => 3e38),
          ),
          { scale: 1e38 },
        ),
      ),
    ).toBeDefined();
  });
});

describe('dense attention and ToMe', () => {
  it('denseAttention with logits beyond f32 is finite or INVALID_ARGUMENT', () => {
    const k = tensor(
      'f32',
      [H, 4, d],
      filled(H * 4 * d, (i) => (i % 2 ? 3e38 : -3e38)),
    );
    const v = tensor(
      'f32',
      [H, 4, d],
      filled(H * 4 * d, (i) => (i % 2 ? 3e38 : -3e38)),
    );
    typedOrFinite(() =>
      denseAttentionSync(
        tensor(
          'f32',
          [H, 1, d],
          filled(H * d, () => 3e38),
        ),
        k,
        v,
        { scale: 1e38 },
      ),
    );
  });

  it('mergeTokens on +-3e38 is INVALID_ARGUMENT (it returned NaN)', () => {
    const x = tensor(
      'f32',
      [8, 4],
      filled(32, (i) => (i % 3 ? 3e38 : -3e38)),
    );
    expect(typedOrFinite(() => mergeTokensSync(x, { r: 2 }).tokens as { data: Float32Array })).toBe('typed');
  });
});
