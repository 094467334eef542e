#!/usr/bin/env node
// Mechanical rewrite of a .cu file into C++ that the host compiler builds against
// cuda/emulate/cuda_runtime.h (INFERZIP_CUDA=emulate). Three constructs change, nothing else:
//   K<<<grid, block[, smem[, stream]]>>>(args)  ->  ::iz_emu::Config(grid, block, smem, stream).At(__FILE__, __LINE__).Run("K", K, args)
//   __shared__ T name[N]...;                    ->  IZ_EMU_SHARED(T, name, [N]...);
//   extern __shared__ [__align__(n)] T name[];  ->  IZ_EMU_EXTERN_SHARED(T, name);
// Line breaks are kept and a #line directive names the original file, so compiler errors,
// emulator messages (__FILE__/__LINE__) and sanitizer reports point at the .cu source.
//   node cuda/emulate/rewrite.mjs <in.cu> <out.cpp> [display-name]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

const [input, output, display = input] = process.argv.slice(2);
if (!input || !output) {
  process.stderr.write('usage: rewrite.mjs <in.cu> <out.cpp> [display-name]\n');
  process.exit(2);
}
const src = readFileSync(input, 'utf8');

function fail(msg, at) {
  const line = src.slice(0, at).split('\n').length;
  process.stderr.write(`${display}:${line}: rewrite.mjs: ${msg}\n`);
  process.exit(1);
}

// Blank out comments and string literals (same length, newlines kept) so the scanners below
// only see code; edits are applied to the original text at the same offsets.
function codeOnly(text) {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const n = text[i + 1];
    if (c === '/' && n === '/') {
      const end = text.indexOf('\n', i);
      const stop = end < 0 ? text.length : end;
      out += ' '.repeat(stop - i);
      i = stop;
    } else if (c === '/' && n === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? text.length : end + 2;
      out += text.slice(i, stop).replace(/[^\n]/g, ' ');
      i = stop;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < text.length && text[j] !== c) j += text[j] === '\\' ? 2 : 1;
      out += c + ' '.repeat(Math.max(0, j - i - 1)) + (j < text.length ? c : '');
      i = j + 1;
    } else {
      out += c;
      i += 1;
    }
  }
  return out;
}

const code = codeOnly(src);
const edits = []; // [start, end, replacement]

// Matching close for the bracket at `open` in `code`.
function matching(open) {
  const pairs = { '(': ')', '[': ']', '{': '}' };
  const stack = [];
  for (let i = open; i < code.length; i++) {
    const c = code[i];
    if (pairs[c]) stack.push(pairs[c]);
    else if (c === ')' || c === ']' || c === '}') {
      if (stack.pop() !== c) fail(`unbalanced '${c}'`, i);
      if (stack.length === 0) return i;
    }
  }
  fail('unclosed bracket', open);
}

// 1. Launches.
let launches = 0;
for (let at = code.indexOf('<<<'); at >= 0; at = code.indexOf('<<<', at + 3)) {
  const before = code.slice(0, at);
  const m = /([A-Za-z_][\w:]*(?:\s*<[^<>;()]*>)?)\s*$/.exec(before);
  if (!m) fail('a <<< launch without a kernel name before it', at);
  const nameStart = at - m[0].length;
  const name = m[1].replace(/\s+/g, '');
  const close = code.indexOf('>>>', at + 3);
  if (close < 0) fail('<<< without >>>', at);
  const cfg = code.slice(at + 3, close); // comments blanked: the launch is joined onto one line
  let p = close + 3;
  while (/\s/.test(code[p])) p++;
  if (code[p] !== '(') fail(`launch of ${name} without an argument list`, at);
  const end = matching(p);
  const args = code.slice(p + 1, end);
  if (/["']/.test(args)) fail('string literals in launch arguments are not supported', at);
  const hasArgs = args.trim().length > 0;
  const repl = `::iz_emu::Config(${cfg}).At(__FILE__, __LINE__).Run("${name}", ${name}${hasArgs ? `, ${args}` : ''})`;
  edits.push([nameStart, end + 1, repl]);
  launches++;
  at = end;
}

// 2. extern __shared__ arrays.
const externRe =
  /extern\s+__shared__\s+((?:__align__\s*\(\s*\d+\s*\)\s*|alignas\s*\(\s*\d+\s*\)\s*)*)([A-Za-z_][\w:\s<>,*]*?)\s*([A-Za-z_]\w*)\s*\[\s*\]\s*;/g;
for (let m; (m = externRe.exec(code));) {
  const type = m[2].trim();
  edits.push([m.index, m.index + m[0].length, `IZ_EMU_EXTERN_SHARED(${type}, ${m[3]});`]);
}

// 3. Static __shared__ declarations (one declarator each).
const sharedRe =
  /(?<!extern\s+)__shared__\s+((?:__align__\s*\(\s*\d+\s*\)\s*)*)([A-Za-z_][\w:\s<>,*]*?)\s*\b([A-Za-z_]\w*)\s*((?:\[[^\]]*\]\s*)*);/g;
for (let m; (m = sharedRe.exec(code));) {
  if (edits.some(([s, e]) => m.index >= s && m.index < e)) continue;
  if (/\bextern\s+$/.test(code.slice(Math.max(0, m.index - 20), m.index))) continue;
  const type = m[2].trim();
  if (type.includes(',')) fail('one __shared__ declarator per statement, please', m.index);
  const dims = src.slice(m.index + m[0].length - 1 - m[4].length, m.index + m[0].length - 1).trim();
  edits.push([m.index, m.index + m[0].length, `IZ_EMU_SHARED(${type}, ${m[3]}, ${dims});`]);
}

// A bare __shared__ left over would compile to nonsense: refuse it.
{
  const covered = (i) => edits.some(([s, e]) => i >= s && i < e);
  for (let at = code.indexOf('__shared__'); at >= 0; at = code.indexOf('__shared__', at + 1)) {
    if (!covered(at)) fail('a __shared__ declaration this rewrite does not understand', at);
  }
}

edits.sort((a, b) => b[0] - a[0]);
let out = src;
for (const [s, e, r] of edits) {
  // Keep the line count: the replacement goes on the first line, the rest stay empty.
  const newlines = src.slice(s, e).split('\n').length - 1;
  out = out.slice(0, s) + r.replace(/\n/g, ' ') + '\n'.repeat(newlines) + out.slice(e);
}
const header = `// Generated by cuda/emulate/rewrite.mjs from ${display} (${launches} launches). Do not edit.\n#line 1 "${display}"\n`;
mkdirSync(dirname(output), { recursive: true });
// Launch-time checks of inferzip's struct arguments (found by ADL at the end of the file).
const footer = launches ? '\n#include "cuda/emulate/arg_checks.h"\n' : '';
writeFileSync(output, header + out + footer);
