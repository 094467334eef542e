// The end-to-end demo in its short form: compress + verify the bundled model, stream its
// blocks from the compressed file (logits must be bit-identical to plain BF16), and run
// the quantized KV caches.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;

describe('npm start (end-to-end demo)', () => {
  it('runs 32 tokens: verified file, bit-identical streamed logits, every KV scheme reported', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'examples/demo.ts', '--tokens', '32', '--json', '--device', 'cpu'], {
      cwd: root,
      encoding: 'utf8',
      timeout: 120_000,
    });
    const report = JSON.parse(out);
    expect(report.model.verified).toBe(true);
    expect(report.model.compressedBytes).toBeLessThan(report.model.bf16Bytes * 0.72);
    expect(report.streamed.bitIdentical).toBe(true);
    expect(report.streamed.stepsCompared).toBe(32);
    expect(report.plain.firstTokens).toEqual([461, 461, 401, 401, 401, 461, 378, 455, 473, 456]);
    expect(report.kv.map((k: { scheme: string }) => k.scheme)).toEqual(['kivi', 'vidkv', 'zipcache', 'fp8']);
    for (const k of report.kv) {
      expect(k.agreement).toBeGreaterThan(0);
      expect(k.agreement).toBeLessThanOrEqual(1);
      expect(k.kvBytesPerToken).toBeLessThan(report.plain.kvBytesPerToken);
      expect(Number.isFinite(k.meanKl)).toBe(true);
    }
  });
});
