/** Dense helpers of the reference token passes (plain loops over Float32Array rows). */

/** Cosine similarity of rows i and j of a row-major [*, c] array (0 when either is a zero vector). */
export function cosineRows(a: Float32Array, i: number, b: Float32Array, j: number, c: number): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  const oi = i * c;
  const oj = j * c;
  for (let k = 0; k < c; k++) {
    const x = a[oi + k]!;
    const y = b[oj + k]!;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

/** Cosine similarity of two whole vectors. */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let k = 0; k < a.length; k++) {
    dot += a[k]! * b[k]!;
    na += a[k]! * a[k]!;
    nb += b[k]! * b[k]!;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

/**
 * Indices 0..n-1 ordered by value with a deterministic tie rule (lower index first).
 * `descending` puts the largest values first.
 */
export function rankIndices(values: ArrayLike<number>, descending: boolean): number[] {
  const idx = Array.from({ length: values.length }, (_, i) => i);
  idx.sort((p, q) => {
    const d = descending ? values[q]! - values[p]! : values[p]! - values[q]!;
    return d !== 0 ? d : p - q;
  });
  return idx;
}
