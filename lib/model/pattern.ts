/**
 * DFloat11 configs name their block units with Python regexes in `pattern_dict`
 * (`model\.layers\.\d+`). A hostile config could hold a pattern that makes a backtracking
 * engine run for minutes (`a*a*a*a*a*a*a*a*a*a*b`), so patterns are never given to RegExp:
 * they compile to a small NFA of the forms published configs use (literals, escapes, `.`,
 * `\d \w \s` and their negations, `[...]` classes, `? * +`, top-level `|`) and match in
 * time linear in name length x pattern length. Anything else is UNSUPPORTED.
 * @internal
 */
import { InferzipError } from '../errors.js';

type Test = (ch: string) => boolean;
interface Atom {
  test: Test;
  /** '1' once, '?' optional, '*' any number. ('+' compiles to the atom then the atom '*'.) */
  quant: '1' | '?' | '*';
}

const MAX_PATTERN = 300;

const CLASS_ESCAPES: Record<string, Test> = {
  d: (c) => c >= '0' && c <= '9',
  w: (c) => /[A-Za-z0-9_]/.test(c),
  s: (c) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v',
};

function escapeTest(e: string): Test | undefined {
  const lower = CLASS_ESCAPES[e.toLowerCase()];
  if (lower) return e === e.toLowerCase() ? lower : (c) => !lower(c);
  if (/[A-Za-z0-9]/.test(e)) return undefined; // \b, \1, \x.. and friends
  return (c) => c === e;
}

function unsupported(pattern: string, where: string, what: string): never {
  throw new InferzipError(
    'UNSUPPORTED',
    `${where}: pattern_dict key ${JSON.stringify(pattern.slice(0, 80))} uses ${what}; inferzip accepts literals, escapes, '.', \\d \\w \\s, [classes], ? * + and top-level |`,
  );
}

function parseClass(p: string, i: number, pattern: string, where: string): { test: Test; end: number } {
  let j = i + 1;
  const negate = p[j] === '^';
  if (negate) j++;
  const parts: Test[] = [];
  let first = true;
  while (j < p.length && (p[j] !== ']' || first)) {
    first = false;
    let lo: string;
    if (p[j] === '\\') {
      const t = escapeTest(p[j + 1] ?? '');
      if (!t) unsupported(pattern, where, `the escape \\${p[j + 1] ?? ''}`);
      if (CLASS_ESCAPES[(p[j + 1] ?? '').toLowerCase()]) {
        parts.push(t);
        j += 2;
        continue;
      }
      lo = p[j + 1]!;
      j += 2;
    } else {
      lo = p[j]!;
      j++;
    }
    if (p[j] === '-' && j + 1 < p.length && p[j + 1] !== ']') {
      let hi = p[j + 1]!;
      j += 2;
      if (hi === '\\') {
        hi = p[j]!;
        j++;
      }
      const [a, b] = [lo, hi];
      parts.push((c) => c >= a && c <= b);
    } else {
      const ch = lo;
      parts.push((c) => c === ch);
    }
  }
  if (j >= p.length) unsupported(pattern, where, 'an unterminated [class]');
  const test: Test = (c) => parts.some((t) => t(c)) !== negate;
  return { test, end: j + 1 };
}

function compileAlternative(p: string, pattern: string, where: string): Atom[] {
  const atoms: Atom[] = [];
  let i = 0;
  while (i < p.length) {
    const ch = p[i]!;
    let test: Test;
    if (ch === '\\') {
      const t = escapeTest(p[i + 1] ?? '');
      if (!t) unsupported(pattern, where, `the escape \\${p[i + 1] ?? ''}`);
      test = t;
      i += 2;
    } else if (ch === '[') {
      const c = parseClass(p, i, pattern, where);
      test = c.test;
      i = c.end;
    } else if (ch === '.') {
      test = (c) => c !== '\n';
      i++;
    } else if ('()*+?{}^$'.includes(ch)) {
      unsupported(
        pattern,
        where,
        ch === '(' || ch === ')' ? 'groups' : ch === '{' || ch === '}' ? 'counted repeats {n,m}' : `'${ch}' out of place`,
      );
    } else {
      test = (c) => c === ch;
      i++;
    }
    const q = p[i];
    if (q === '?' || q === '*' || q === '+') {
      i++;
      if (p[i] === '?' || p[i] === '+') unsupported(pattern, where, 'lazy or possessive quantifiers');
    }
    if (q === '+') atoms.push({ test: test!, quant: '1' }, { test: test!, quant: '*' });
    else atoms.push({ test: test!, quant: q === '?' || q === '*' ? q : '1' });
  }
  return atoms;
}

/** Full-match test of one compiled alternative: NFA simulation, no backtracking. */
function matchAtoms(atoms: readonly Atom[], s: string): boolean {
  const m = atoms.length;
  let current = new Uint8Array(m + 1);
  let next = new Uint8Array(m + 1);
  const close = (set: Uint8Array): void => {
    for (let i = 0; i < m; i++) if (set[i] && atoms[i]!.quant !== '1') set[i + 1] = 1;
  };
  current[0] = 1;
  close(current);
  for (const ch of s) {
    next.fill(0);
    for (let i = 0; i < m; i++) {
      if (!current[i] || !atoms[i]!.test(ch)) continue;
      if (atoms[i]!.quant === '*') next[i] = 1;
      else next[i + 1] = 1;
    }
    close(next);
    [current, next] = [next, current];
  }
  return current[m] === 1;
}

/** A compiled pattern_dict key: `test(name)` is Python's re.fullmatch(pattern, name). */
export interface UnitPattern {
  readonly source: string;
  test(name: string): boolean;
}

export function compileUnitPattern(pattern: string, where: string): UnitPattern {
  if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > MAX_PATTERN) {
    throw new InferzipError('CORRUPT_DATA', `${where}: pattern_dict keys must be 1 to ${MAX_PATTERN} characters`);
  }
  let body = pattern;
  if (body.startsWith('^')) body = body.slice(1);
  if (body.endsWith('$') && !body.endsWith('\\$')) body = body.slice(0, -1);
  const alternatives = body.split('|').map((a) => compileAlternative(a, pattern, where));
  return { source: pattern, test: (name) => alternatives.some((atoms) => matchAtoms(atoms, name)) };
}
