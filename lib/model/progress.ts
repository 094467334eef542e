/** Progress reports and cancellation shared by the model-level operations. */
import { InferzipError } from '../errors.js';

export interface ModelProgress {
  readonly phase: 'compress' | 'decompress' | 'verify';
  /** Bytes of the original model processed so far, and in all. */
  readonly bytesDone: number;
  readonly bytesTotal: number;
  /** Compressed units finished so far, and in all. */
  readonly unitsDone: number;
  readonly unitsTotal: number;
  /** The unit or file just finished, when there is one. */
  readonly current?: string;
}

export interface ModelTaskOptions {
  /** Called after each unit / tensor / file (synchronously; keep it cheap). */
  onProgress?: (progress: ModelProgress) => void;
  /** CPU threads for the codec (0 or unset: all cores). */
  threads?: number;
  /** Cancels the operation; nothing is left at the output path. */
  signal?: AbortSignal;
}

export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    // An InferzipError given as the reason is passed on; anything else (the default AbortError
    // DOMException, a string) becomes ABORTED with the reason as its cause.
    const reason: unknown = signal.reason;
    if (reason instanceof InferzipError) throw reason;
    throw new InferzipError(
      'ABORTED',
      `operation aborted${reason instanceof Error ? `: ${reason.message}` : reason === undefined ? '' : `: ${String(reason)}`}`,
      { cause: reason },
    );
  }
}

export { checkThreads } from '../validate.js';
