// pattern_dict keys match through a linear-time NFA (lib/model/pattern.ts), never RegExp.
import { describe, expect, it } from 'vitest';

import { compileUnitPattern } from '../../lib/model/pattern.js';
import { codeOf } from '../errors.js';

const names = [
  'model.layers.0',
  'model.layers.17',
  'model.layers.x',
  'model.layersA0',
  'model.embed_tokens',
  'lm_head',
  'transformer.h.3',
  'transformer.h.3.attn',
  'model.layers.',
  '',
  'a'.repeat(40),
];

describe('pattern_dict matcher', () => {
  it('agrees with a full-match RegExp on the forms published configs use', () => {
    const patterns = [
      'model\\.layers\\.\\d+',
      'model.layers.\\d+',
      'lm_head',
      'transformer\\.h\\.[0-9]+',
      'model\\.(?:x)'.replace('(?:x)', 'embed_tokens'),
      'model\\.layers\\.\\d*',
      'model\\.layers\\.\\w?',
      '[a-z_]+\\.h\\.\\d+|lm_head',
      '^model\\.layers\\.\\d+$',
      '[^.]+',
      '\\D+',
      'a*a*a*b',
    ];
    for (const p of patterns) {
      const ours = compileUnitPattern(p, 'test');
      const re = new RegExp(`^(?:${p.replace(/^\^/, '').replace(/\$$/, '')})$`);
      for (const n of names) expect(ours.test(n), `${p} on '${n}'`).toBe(re.test(n));
    }
  });

  it('a pattern that makes a backtracking engine run for minutes answers at once', () => {
    const hostile = compileUnitPattern(`${'a*'.repeat(30)}b`, 'test');
    // a backtracking engine tries ~C(60, 30) splits here; the NFA does 61 x 30 steps
    expect(hostile.test('a'.repeat(60))).toBe(false);
    expect(hostile.test(`${'a'.repeat(59)}b`)).toBe(true);
  });

  it('refuses groups, counted repeats, backreferences, lookarounds and lazy quantifiers', () => {
    for (const p of ['(a+)+$', 'a{2,}', '(a)\\1', '(?=a)a', 'a+?', 'model\\.layers\\.(\\d+', '[abc', '\\bword']) {
      expect(
        codeOf(() => compileUnitPattern(p, 'test')),
        p,
      ).toBe('UNSUPPORTED');
    }
    expect(codeOf(() => compileUnitPattern('x'.repeat(301), 'test'))).toBe('CORRUPT_DATA');
  });
});
