// A plain, obviously-correct JavaScript ToMe step (written from the paper) to check the
// native implementation against. Deliberately simple: no tiling, no threads.
export function referenceMerge(x: number[][], r: number, opts: { sizes?: number[]; protect?: number[]; keepOrder?: boolean } = {}) {
  const n = x.length;
  const sizes = opts.sizes ?? x.map(() => 1);
  const prot = new Set(opts.protect ?? []);
  const norm = (v: number[]) => {
    const l = Math.sqrt(v.reduce((s, a) => s + a * a, 0));
    return v.map((a) => (l > 0 ? a / l : 0));
  };
  const A = x.map((_, i) => i).filter((i) => i % 2 === 0);
  const B = x.map((_, i) => i).filter((i) => i % 2 === 1);
  const best = new Map<number, { b: number; s: number }>();
  for (const a of A) {
    let bb = -1;
    let bs = -Infinity;
    for (const b of B) {
      if (prot.has(b)) continue;
      const na = norm(x[a]!);
      const nb = norm(x[b]!);
      const s = na.reduce((acc, v, k) => acc + v * nb[k]!, 0);
      if (bb < 0 || s > bs) (bs = s), (bb = b);
    }
    best.set(a, { b: bb, s: prot.has(a) ? -Infinity : bs });
  }
  const order = [...A].sort((p, q) => best.get(q)!.s - best.get(p)!.s || p - q);
  const merged = new Set(order.slice(0, r));
  const survivors = opts.keepOrder
    ? x.map((_, i) => i).filter((i) => !merged.has(i))
    : [...A.filter((a) => !merged.has(a)), ...B];
  const slot = new Map(survivors.map((t, k) => [t, k]));
  const assign = x.map((_, i) => (merged.has(i) ? slot.get(best.get(i)!.b)! : slot.get(i)!));
  const out = survivors.map(() => new Array<number>(x[0]!.length).fill(0));
  const outSizes = survivors.map(() => 0);
  x.forEach((row, i) => {
    row.forEach((v, k) => (out[assign[i]!]![k]! += v * sizes[i]!));
    outSizes[assign[i]!]! += sizes[i]!;
  });
  out.forEach((row, o) => row.forEach((_, k) => (row[k]! /= outSizes[o]!)));
  return { x: out, sizes: outSizes, assign };
}
