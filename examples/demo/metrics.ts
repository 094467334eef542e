/** How a run's next-token distributions compare with the reference run's, step by step. */
import { argmax } from '../llama/model.js';

export interface Agreement {
  steps: number;
  /** Steps whose logits are bit-identical to the reference (every f32 bit pattern equal). */
  identicalSteps: number;
  /** Fraction of steps whose most likely next token is the reference's. */
  top1: number;
  /** Mean over steps of KL(p_ref || p), nats. */
  meanKL: number;
  maxKL: number;
  /** Largest |logit - reference logit| over all steps. */
  maxAbsDiff: number;
  /** Steps before the first top-1 disagreement: how long a free greedy run stays identical. */
  samePrefix: number;
}

function logSoftmax(logits: Float32Array, out: Float64Array): void {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i]! - lse;
}

/** KL(p || q) from log-probabilities. */
export function klDivergence(logP: Float64Array, logQ: Float64Array): number {
  let kl = 0;
  for (let i = 0; i < logP.length; i++) {
    const p = Math.exp(logP[i]!);
    if (p > 0) kl += p * (logP[i]! - logQ[i]!);
  }
  return Math.max(0, kl);
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  if (x.length !== y.length) return false;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

/** Accumulates the comparison one step at a time (the reference logits are kept per step). */
export class AgreementMeter {
  #steps = 0;
  #identical = 0;
  #top1 = 0;
  #kl = 0;
  #maxKL = 0;
  #maxAbs = 0;
  #prefix = -1;
  readonly #lp: Float64Array;
  readonly #lq: Float64Array;

  constructor(readonly reference: readonly Float32Array[]) {
    const vocab = reference[0]?.length ?? 0;
    this.#lp = new Float64Array(vocab);
    this.#lq = new Float64Array(vocab);
  }

  add(logits: Float32Array): void {
    const ref = this.reference[this.#steps];
    if (!ref) throw new Error(`the reference run has only ${this.reference.length} steps`);
    if (sameBits(ref, logits)) this.#identical++;
    const agree = argmax(ref) === argmax(logits);
    if (agree) this.#top1++;
    else if (this.#prefix < 0) this.#prefix = this.#steps;
    logSoftmax(ref, this.#lp);
    logSoftmax(logits, this.#lq);
    const kl = klDivergence(this.#lp, this.#lq);
    this.#kl += kl;
    this.#maxKL = Math.max(this.#maxKL, kl);
    for (let i = 0; i < ref.length; i++) this.#maxAbs = Math.max(this.#maxAbs, Math.abs(ref[i]! - logits[i]!));
    this.#steps++;
  }

  result(): Agreement {
    const n = this.#steps;
    return {
      steps: n,
      identicalSteps: this.#identical,
      top1: n ? this.#top1 / n : 0,
      meanKL: n ? this.#kl / n : 0,
      maxKL: this.#maxKL,
      maxAbsDiff: this.#maxAbs,
      samePrefix: this.#prefix < 0 ? n : this.#prefix,
    };
  }
}
