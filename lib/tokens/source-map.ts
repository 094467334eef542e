/**
 * SourceMap: which original tokens every merged token holds, across any number of
 * merge steps, and `unmerge` that spreads merged results back to the original tokens.
 */
import { DeviceTensor } from '../device-tensor.js';
import { check } from '../errors.js';
import { allocArray, assertTensor, tensor, type DType, type Tensor, type TypedArrayFor } from '../tensor.js';

/**
 * Which original tokens each merged token holds, composed across merge steps.
 * @example
 * const step = await mergeTokens(x, { r: 8 });
 * const full = step.source.unmerge(step.tokens); // back to the original token count
 */
export class SourceMap {
  /** Batch rows. */
  readonly batch: number;
  /** Tokens before the first merge step. */
  readonly original: number;
  /** Tokens now (after the last step). */
  readonly size: number;
  /** [batch, original]: the index of the current token that holds each original token. */
  readonly assignment: Int32Array;

  constructor(batch: number, original: number, size: number, assignment: Int32Array) {
    check(assignment.length === batch * original, `assignment must hold batch * original = ${batch * original} entries`, 'SHAPE_MISMATCH');
    for (let i = 0; i < assignment.length; i++) {
      check(assignment[i]! >= 0 && assignment[i]! < size, `assignment[${i}] = ${assignment[i]} is outside [0, ${size})`, 'CORRUPT_DATA');
    }
    this.batch = batch;
    this.original = original;
    this.size = size;
    this.assignment = assignment;
  }

  /** Every token holds only itself. */
  static identity(batch: number, n: number): SourceMap {
    const a = new Int32Array(batch * n);
    for (let b = 0; b < batch; b++) for (let i = 0; i < n; i++) a[b * n + i] = i;
    return new SourceMap(batch, n, n, a);
  }

  /** The map after one more step whose `dest` sends current token i of row b to dest[b * size + i]. */
  then(dest: Int32Array, sizeAfter: number): SourceMap {
    check(
      dest.length === this.batch * this.size,
      `dest must hold ${this.batch * this.size} entries (got ${dest.length})`,
      'SHAPE_MISMATCH',
    );
    const a = new Int32Array(this.assignment.length);
    for (let b = 0; b < this.batch; b++) {
      for (let i = 0; i < this.original; i++) a[b * this.original + i] = dest[b * this.size + this.assignment[b * this.original + i]!]!;
    }
    return new SourceMap(this.batch, this.original, sizeAfter, a);
  }

  /** Original tokens (ascending) that current token `index` of batch row `row` holds. */
  sourcesOf(index: number, row = 0): number[] {
    check(Number.isInteger(row) && row >= 0 && row < this.batch, `row must be in [0, ${this.batch})`);
    check(Number.isInteger(index) && index >= 0 && index < this.size, `index must be in [0, ${this.size})`);
    const out: number[] = [];
    for (let i = 0; i < this.original; i++) if (this.assignment[row * this.original + i] === index) out.push(i);
    return out;
  }

  /**
   * Spreads y [batch?, size, D] (one row per current token) back to [batch?, original, D]:
   * every original token receives the row of the token that holds it. A DeviceTensor is
   * gathered on the host and uploaded back to its device.
   */
  unmerge<T extends Tensor | DeviceTensor>(y: T): T {
    if (y instanceof DeviceTensor) {
      const host = this.unmerge(y.downloadSync());
      return DeviceTensor.fromSync(host, { device: y.device }) as T;
    }
    assertTensor(y, 'y');
    const shape = y.shape;
    const batched = shape.length === 3;
    check(
      shape.length === 2 || shape.length === 3,
      `y must be [tokens, D] or [batch, tokens, D], got [${shape.join(', ')}]`,
      'SHAPE_MISMATCH',
    );
    const rows = batched ? shape[0]! : 1;
    const tokens = shape[batched ? 1 : 0]!;
    const d = shape[batched ? 2 : 1]!;
    check(
      rows === this.batch && tokens === this.size,
      `y has ${rows} x ${tokens} tokens but the map expects ${this.batch} x ${this.size}`,
      'SHAPE_MISMATCH',
    );
    const src = y.data as unknown as { [i: number]: number | bigint };
    const out = allocArray(y.dtype, this.batch * this.original * d) as unknown as { [i: number]: number | bigint };
    for (let b = 0; b < this.batch; b++) {
      for (let i = 0; i < this.original; i++) {
        const from = (b * this.size + this.assignment[b * this.original + i]!) * d;
        const to = (b * this.original + i) * d;
        for (let k = 0; k < d; k++) out[to + k] = src[from + k]!;
      }
    }
    const outShape = batched ? [this.batch, this.original, d] : [this.original, d];
    return tensor(y.dtype as DType, outShape, out as unknown as TypedArrayFor<DType>) as T;
  }
}
