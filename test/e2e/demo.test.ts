// `npm start` in its short scripted form: the whole pipeline runs and reports honestly.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

import { KV_SCHEMES } from '../../lib/index.js';
import { parseArgs } from '../../examples/demo/args.js';
import { formatMarkdown, formatSvg, formatText } from '../../examples/demo/report.js';
import type { DemoReport } from '../../examples/demo/run.js';

const exec = promisify(execFile);
const root = new URL('../..', import.meta.url).pathname;
const demo = (...args: string[]) =>
  exec(process.execPath, ['--import', 'tsx', 'examples/demo.ts', ...args], { cwd: root, maxBuffer: 1 << 24 });

describe('npm start (examples/demo.ts)', () => {
  it('--tokens 32 --json: verified, streamed logits bit-identical, every KV scheme measured', async () => {
    const { stdout } = await demo('--tokens', '32', '--json');
    const r = JSON.parse(stdout) as DemoReport;
    expect(r.tokens).toBe(32);
    expect(r.verify.ok).toBe(true);
    expect(r.streamed.bitIdentical).toBe(true);
    expect(r.streamed.bitIdenticalSteps).toBe(32);
    expect(r.streamed.tokens).toEqual(r.bf16.tokens);
    expect(r.bf16.tokens).toHaveLength(32);
    expect(r.files.compressedBytes).toBeLessThan(r.files.bf16Bytes);
    expect(r.files.bitsPerWeight).toBeGreaterThanOrEqual(r.files.entropyBound);
    expect(r.files.bitsPerWeight).toBeLessThan(16);
    expect(r.decode.bytesPerSecond).toBeGreaterThan(0);
    expect(r.f32.top1Agreement).toBeGreaterThan(0.5); // F32 vs BF16 weights: close, not equal
    expect(r.f32.meanKL).toBeGreaterThan(0);
    expect(r.kv.map((k) => k.scheme)).toEqual([...KV_SCHEMES]);
    for (const k of r.kv) {
      expect(k.available, `${k.scheme}: ${k.error}`).toBe(true);
      expect(k.top1Agreement).toBeGreaterThanOrEqual(0);
      expect(k.top1Agreement).toBeLessThanOrEqual(1);
      expect(k.meanKL).toBeGreaterThanOrEqual(0);
      expect(k.quantizedTokens).toBe(32); // --residual 32 by default: the 32nd token flushes the window
      expect(k.bytesPerToken).toBeLessThan(r.denseKvBytesPerToken);
      expect(k.packedBytesPerToken).toBeGreaterThan(0);
      expect(k.packedBytesPerToken).toBeLessThan(r.denseKvBytesPerToken);
    }
    // (4) H2O / D2O on the fp8 cache: prompt 16 (prefill), 16 decode steps, budgets of the prompt
    expect(r.eviction.prompt).toBe(16);
    expect(r.eviction.rows.map((e) => `${e.method} ${e.budget}`)).toEqual(['none 1', 'h2o 0.5', 'h2o 0.25', 'd2o 0.5', 'd2o 0.25']);
    const kept = r.eviction.rows.map((e) => e.keptTokens);
    expect(kept.slice(0, 3)).toEqual([32, 8, 4]); // h2o: every layer holds B; nothing evicted without a policy
    expect(kept[3]).toBeLessThanOrEqual(8); // d2o: layer budgets sum to at most L*B
    expect(kept[4]).toBeLessThanOrEqual(4);
    for (const e of r.eviction.rows) {
      expect(e.top1Agreement).toBeGreaterThanOrEqual(0);
      expect(e.top1Agreement).toBeLessThanOrEqual(1);
      expect(e.meanKL).toBeGreaterThanOrEqual(0);
    }
    const text = formatText(r);
    expect(text).toContain('fp8 + h2o 50% (keeps 8.0)');
    expect(text).toContain('bit-identical 32/32 steps');
    expect(formatMarkdown(r)).toContain('| (2) | streamed, DFloat11 |');
    expect(formatSvg(r)).toMatch(/^<svg[\s\S]*<\/svg>\n$/);
  }, 120_000);

  it('--kv none runs without KV rows; bad options exit 2 with the usage', async () => {
    const { stdout } = await demo('--tokens', '4', '--kv', 'none', '--json');
    expect((JSON.parse(stdout) as DemoReport).kv).toEqual([]);
    await expect(demo('--tokens', '0')).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--tokens must be an integer in 1..511'),
    });
  }, 60_000);

  it('parses options strictly', () => {
    expect(parseArgs([])).toMatchObject({ tokens: 256, kv: [...KV_SCHEMES], residual: 32, device: 'auto', json: false });
    expect(parseArgs(['--tokens=8', '--kv', 'fp8,kivi', '--device', 'cpu'])).toMatchObject({
      tokens: 8,
      kv: ['fp8', 'kivi'],
      device: 'cpu',
    });
    expect(() => parseArgs(['--kv', 'int3'])).toThrow(/unknown scheme 'int3'/);
    expect(() => parseArgs(['--tokens', '512'])).toThrow(/1\.\.511/);
    expect(() => parseArgs(['--tokens', '1.5'])).toThrow(/1\.\.511/);
    expect(() => parseArgs(['--residual', '33'])).toThrow(/multiple of 32/);
    expect(() => parseArgs(['--device', 'tpu'])).toThrow(/cpu, cuda or auto/);
    expect(() => parseArgs(['--frobnicate'])).toThrow(/unknown option/);
    expect(() => parseArgs(['--tokens'])).toThrow(/needs a value/);
  });
});
