/**
 * A bounded run (FUZZ_CASES, default 120) of the mutation fuzzer (test/fuzz/mutation.ts): every damaged compressed model
 * and saved KV cache gives a typed error or the original output, through decompressModel,
 * verifyModel, CompressedModel and QuantizedKVCache.load + attention. CI runs it longer
 * (scripts/mutation-fuzz.ts).
 */
import { describe, expect, it } from 'vitest';

import { createFuzzer } from './mutation.js';

describe('mutation fuzzer', () => {
  it('120 seeded cases: zero silent differences', async () => {
    const fuzzer = await createFuzzer(20261207);
    try {
      const c = await fuzzer.run(Number(process.env.FUZZ_CASES ?? 120));
      console.log(
        `mutation fuzzer: ${c.cases} cases, ${c.checks} checks, ${c.typedErrors} typed errors, ${c.identical} identical, ${c.silentDifferences} silent differences`,
      );
      expect(c.failures).toEqual([]);
      expect(c.silentDifferences).toBe(0);
      expect(c.typedErrors).toBeGreaterThan(0);
      expect(c.checks).toBeGreaterThanOrEqual(c.cases);
    } finally {
      fuzzer.dispose();
    }
  });
});
