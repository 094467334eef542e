#!/usr/bin/env node
// The CommonJS build, for `require('inferzip')` on every Node the package supports: require()
// of an ES module needs Node 20.19 / 22.12 (a flag before), and engines says >= 20.17.
// Each dist/**/*.js (tsc's ESM output) becomes dist/cjs/**/*.js, file by file, so relative
// paths (the parse worker, the package root) stay what they were; dist/cjs/package.json says
// "commonjs", and the .d.ts files are copied beside them so TypeScript reads them as CommonJS
// declarations. The CLI stays ESM only (a bin is run, never required).
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { transformSync } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const out = join(dist, 'cjs');

function walk(dir, acc = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (p !== out && p !== join(dist, 'cli')) walk(p, acc);
    } else acc.push(p);
  }
  return acc;
}

/** A relative specifier that leaves dist/ (../types/binding.js) must still reach the same file from dist/cjs/. */
function fixOutsideSpecifiers(text, from, to) {
  return text.replace(/(from\s+|import\()(['"])(\.{1,2}\/[^'"]+)\2/g, (m, lead, q, spec) => {
    const target = resolve(dirname(from), spec);
    if (target.startsWith(dist + sep)) return m;
    let rel = relative(dirname(to), target).split(sep).join('/');
    if (!rel.startsWith('.')) rel = `./${rel}`;
    return `${lead}${q}${rel}${q}`;
  });
}

rmSync(out, { recursive: true, force: true });
let files = 0;
for (const file of walk(dist)) {
  const target = join(out, relative(dist, file));
  if (file.endsWith('.js')) {
    const { code } = transformSync(readFileSync(file, 'utf8'), {
      loader: 'js',
      format: 'cjs',
      platform: 'node',
      target: 'node20',
      sourcefile: relative(root, file),
      // import.meta does not exist in CommonJS: the file's own URL is built from __filename.
      define: { 'import.meta.url': '__inferzipModuleUrl' },
      banner: "const __inferzipModuleUrl = require('node:url').pathToFileURL(__filename).href;",
    });
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, fixOutsideSpecifiers(code, file, target));
    files++;
  } else if (file.endsWith('.d.ts')) {
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, fixOutsideSpecifiers(readFileSync(file, 'utf8'), file, target));
  }
}
writeFileSync(join(out, 'package.json'), '{ "type": "commonjs" }\n');
process.stderr.write(`[inferzip] CommonJS build: ${files} files in ${relative(root, out)}\n`);
