// Runs the README's TypeScript quick start, so the documentation cannot rot.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('../..', import.meta.url).pathname;

describe('README quick start', () => {
  it('runs as written', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Quick start'));
    const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
    expect(code, 'README has a ts block under Quick start').toBeTruthy();
    const file = join(mkdtempSync(join(tmpdir(), 'iz-readme-')), 'quickstart.mts');
    writeFileSync(file, code!.replaceAll("from 'inferzip'", `from '${join(root, 'lib/index.ts')}'`));
    const out = execFileSync(process.execPath, ['--import', 'tsx', file], { cwd: root, encoding: 'utf8' });
    expect(out).toMatch(/^(cpu|cuda): /);
    expect(out).toContain('47 tensors; model.embed_tokens.weight');
  });

  it('gives the two set-up commands', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    expect(readme).toMatch(/```sh\nnpm install\nnpm test\n```/);
  });
});

describe('npm start', () => {
  it('runs the demo the start script names', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const args = pkg.scripts.start!.split(/\s+/);
    expect(args[0]).toBe('node');
    const out = execFileSync(process.execPath, args.slice(1), { cwd: root, encoding: 'utf8' });
    expect(out.trim().length).toBeGreaterThan(0);
  });
});
