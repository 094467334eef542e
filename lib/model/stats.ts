/** Exponent statistics of BF16 weights: the histogram, its entropy and the lossless bound. */

/** Shannon entropy of the histogram, in bits per symbol (0 for an empty one). */
export function entropyBits(hist: ArrayLike<number>): number {
  let total = 0;
  for (let e = 0; e < hist.length; e++) total += hist[e]!;
  if (total === 0) return 0;
  let h = 0;
  for (let e = 0; e < hist.length; e++) {
    const c = hist[e]!;
    if (c > 0) h -= (c / total) * Math.log2(c / total);
  }
  return h;
}

/** Sparse [exponent, count] pairs of a histogram (how the manifest stores it). */
export function sparseHistogram(hist: Float64Array): [number, number][] {
  const out: [number, number][] = [];
  for (let e = 0; e < 256; e++) if (hist[e]! > 0) out.push([e, hist[e]!]);
  return out;
}

export function denseHistogram(pairs: readonly (readonly [number, number])[]): Float64Array {
  const hist = new Float64Array(256);
  for (const [e, c] of pairs) hist[e]! += c;
  return hist;
}
