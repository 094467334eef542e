import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

import { KV_SCHEMES, backend } from '../../lib/index.js';
import { kvChartSvg } from '../../examples/demo/chart.js';
import { AgreementMeter } from '../../examples/demo/metrics.js';
import { UsageError, parseOptions } from '../../examples/demo/options.js';
import { formatMarkdown, formatText } from '../../examples/demo/report.js';
import type { DemoReport } from '../../examples/demo/run.js';

const run = promisify(execFile);
const root = new URL('../../', import.meta.url).pathname;

async function demo(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const r = await run(process.execPath, ['--import', 'tsx', 'examples/demo.ts', ...args], { cwd: root, timeout: 240_000 });
    return { ...r, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

describe('npm start (examples/demo.ts)', () => {
  it('runs 32 tokens and reports streamed logits bit-identical, every KV scheme measured', async () => {
    const { stdout, code, stderr } = await demo('--tokens', '32', '--json', '--device', 'cpu', '--residual', '32');
    expect(code, stderr).toBe(0);
    const r = JSON.parse(stdout) as DemoReport;
    expect(r.tokens).toBe(32);
    expect(r.bitIdentical).toBe(true);
    expect(r.firstTokens.slice(0, 3)).toEqual([461, 461, 401]);
    expect(r.weights.verify.ok).toBe(true);
    expect(r.weights.compressedBytes).toBeLessThan(r.weights.bf16Bytes * 0.75);
    expect(r.weights.bitsPerWeight).toBeGreaterThanOrEqual(r.weights.entropyBound);
    expect(r.weights.decodeBytesPerSecond).toBeGreaterThan(0);
    expect(r.weights.streamingBytes.compressed).toBeLessThan(r.weights.bf16Bytes);
    const two = r.runs.find((x) => x.id === '2')!;
    expect(two.agreement).toMatchObject({ steps: 32, identicalSteps: 32, top1: 1, meanKL: 0, maxAbsDiff: 0 });
    for (const scheme of KV_SCHEMES) {
      const row = r.runs.find((x) => x.id === scheme)!;
      expect(row.status, row.error).toBe('ok');
      expect(row.agreement!.steps).toBe(32);
      expect(row.agreement!.top1).toBeGreaterThan(0.5);
      expect(row.agreement!.meanKL).toBeGreaterThanOrEqual(0);
      // below the f32 cache (the newest 32 tokens stay f32, so kivi values are not quantized yet)
      expect(row.kvBytesPerToken!).toBeLessThan(r.kvConfig.f32BytesPerToken);
    }
    // the report renders from the same object
    expect(formatText(r)).toContain('bit-identical 32/32');
    expect(formatMarkdown(r, 'demo-kv.svg')).toContain('![KV bytes per token');
    const svg = kvChartSvg(r);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.match(/<circle /g)).toHaveLength(1 + KV_SCHEMES.length);
  }, 240_000);

  it.skipIf(backend().devices.length > 0)('says in one line that --device cuda has no device here (exit 1)', async () => {
    const { code, stderr } = await demo('--tokens', '4', '--device', 'cuda');
    expect(code).toBe(1);
    expect(stderr).toMatch(/^demo failed: NO_DEVICE: /);
  }, 60_000);

  it('exits 2 with the usage on a bad option', async () => {
    const { code, stderr } = await demo('--kv', 'kivi,nope');
    expect(code).toBe(2);
    expect(stderr).toContain("unknown KV scheme 'nope'");
  }, 60_000);
});

describe('demo options', () => {
  it('parses the documented flags', () => {
    expect(parseOptions(['--tokens', '16', '--kv', 'fp8,kivi', '--device=cpu', '--json'])).toMatchObject({ tokens: 16, kv: ['fp8', 'kivi'], device: 'cpu', json: true });
    expect(parseOptions(['--kv', 'none'])).toMatchObject({ kv: [] });
    expect(parseOptions(['--help'])).toBe('help');
  });
  it.each([
    [['--tokens', '0'], /--tokens needs an integer in \[1, 512\]/],
    [['--tokens', '1e3'], /--tokens/],
    [['--tokens'], /--tokens/],
    [['--device', 'tpu'], /--device must be/],
    [['--residual', '48'], /multiple of 32/],
    [['--frobnicate'], /unknown option/],
  ])('rejects %j', (argv, msg) => {
    expect(() => parseOptions(argv)).toThrow(UsageError);
    expect(() => parseOptions(argv)).toThrow(msg);
  });
});

describe('AgreementMeter', () => {
  it('scores identical logits as bit-identical with zero KL, and a flipped top-1 as disagreement', () => {
    const a = Float32Array.from([1, 2, 3, 0]);
    const b = Float32Array.from([1, 3.5, 3, 0]);
    const m = new AgreementMeter([a, a, a]);
    m.add(a.slice());
    m.add(b);
    m.add(a.slice());
    const r = m.result();
    expect(r).toMatchObject({ steps: 3, identicalSteps: 2, samePrefix: 1, maxAbsDiff: 1.5 });
    expect(r.top1).toBeCloseTo(2 / 3);
    // KL(p_a || p_b) for the one differing step, by hand
    const sm = (x: number[]) => { const e = x.map(Math.exp); const s = e.reduce((u, v) => u + v); return e.map((v) => v / s); };
    const p = sm([1, 2, 3, 0]), q = sm([1, 3.5, 3, 0]);
    const kl = p.reduce((s, pi, i) => s + pi * Math.log(pi / q[i]!), 0);
    expect(r.meanKL).toBeCloseTo(kl / 3, 10);
    expect(r.maxKL).toBeCloseTo(kl, 10);
  });
});
