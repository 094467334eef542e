/** Exponent statistics of BF16 weights: the histogram, its entropy and the lossless bound. */

/** Adds the exponent histogram of BF16 bit patterns to `hist` (256 counters). */
export function addExponentHistogram(bits: Uint16Array, hist: Float64Array): void {
  const local = new Uint32Array(256);
  // Counted in u32 chunks so no counter can overflow, then folded into the f64 totals.
  const CHUNK = 1 << 30;
  for (let start = 0; start < bits.length; start += CHUNK) {
    local.fill(0);
    const end = Math.min(bits.length, start + CHUNK);
    for (let i = start; i < end; i++) local[(bits[i]! >> 7) & 0xff]!++;
    for (let e = 0; e < 256; e++) hist[e]! += local[e]!;
  }
}

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
