// Runs every TypeScript example in the README, so the documentation cannot rot.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'iz-readme-'));

/** [heading, code] of every ```ts block, in order. */
const blocks: [string, string][] = [];
{
  let heading = '';
  const re = /^(#{2,3} .*)$|```ts\n([\s\S]*?)```/gm;
  for (let m = re.exec(readme); m; m = re.exec(readme)) {
    if (m[1]) heading = m[1];
    else blocks.push([heading, m[2]!]);
  }
}

function run(code: string, i: number): string {
  const file = join(dir, `example${i}.mts`);
  writeFileSync(file, code.replaceAll("from 'inferzip'", `from '${join(root, 'lib/index.ts')}'`));
  return execFileSync(process.execPath, ['--import', 'tsx', file], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, INFERZIP_DEVICE: 'cpu' },
  });
}

describe('README examples', () => {
  it('has examples for every feature', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(6);
  });

  blocks.forEach(([heading, code], i) => {
    it(`runs example ${i + 1} (${heading.replace(/^#+ /, '')})`, () => {
      const out = run(code, i);
      if (heading === '## Quick start') {
        expect(out).toMatch(/^(cpu|cuda): /);
        expect(out).toMatch(/1 unit\(s\), \d+\.\d\d bits\/weight/);
        expect(out).toContain('verified: true');
        expect(out).toContain('model.layers.0 [ 64, 64 ]');
      }
    }, 120_000);
  });

  it('gives the two set-up commands', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    expect(readme).toMatch(/```sh\nnpm install\nnpm test\n```/);
  });
});

describe('npm start', () => {
  // test/e2e/demo.test.ts runs the demo itself; this keeps package.json pointing at it.
  it('runs examples/demo.ts through tsx', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe('node --import tsx examples/demo.ts');
    expect(existsSync(join(root, 'examples/demo.ts'))).toBe(true);
  });
});
