/**
 * How a TypeScript operation crosses into native code: one definition, two runners.
 *
 * Every public `xxx` / `xxxSync` pair is built by {@link defineOp} from one body: `prepare`
 * validates and builds the native arguments on the calling thread, the native call runs
 * (on a libuv worker for `xxx`, inline for `xxxSync`), and `finish` shapes the result.
 * Ops on one object (a KV cache, a model's decode buffer) go through a {@link CallQueue} so
 * they run in call order even when the caller does not await.
 * @internal
 */
import { markAsUntransferable } from 'node:worker_threads';

import { InferzipError, nativeAwait, nativeCall } from './errors.js';

/** One operation: validation and result shaping shared by its async and sync runners. */
export interface OpSpec<A extends unknown[], P, N, R> {
  /** Names the operation in error messages ('mergeTokens'). */
  readonly name: string;
  /** Validates the arguments and builds what the native call needs (throws InferzipError). */
  prepare(...args: A): P;
  /** The native call on the calling thread. */
  sync(prepared: P): N;
  /** The native call on a worker thread. */
  async(prepared: P): Promise<N>;
  /** Builds the public result from the native one. */
  finish(result: N, prepared: P): R;
}

/** The two runners built from one {@link OpSpec}. */
export interface Op<A extends unknown[], R> {
  /** Runs the native work off the main thread. */
  run(...args: A): Promise<R>;
  /** Runs the native work on the calling thread (blocks the event loop). */
  runSync(...args: A): R;
}

export function defineOp<A extends unknown[], P, N, R>(spec: OpSpec<A, P, N, R>): Op<A, R> {
  return {
    async run(...args: A): Promise<R> {
      const p = spec.prepare(...args);
      const n = await runPinned(p, spec.name, () => spec.async(p));
      return spec.finish(n, p);
    },
    runSync(...args: A): R {
      const p = spec.prepare(...args);
      return spec.finish(
        nativeCall(() => spec.sync(p), spec.name),
        p,
      );
    },
  };
}

/**
 * Serializes the operations of one object in call order. `run` chains after every earlier
 * call (a failed one does not block the next); sync operations call `assertIdle` first, since
 * they cannot wait and must not race the worker that owns the object's native state.
 */
export class CallQueue {
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;

  /**
   * Starts `fn` after every earlier call of this queue has settled; at once when none is
   * pending, so a call made before `dispose()` still reaches the native object.
   */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const idle = this.#pending === 0;
    this.#pending++;
    const result = idle ? startNow(fn) : this.#tail.then(fn, fn);
    this.#tail = result.then(
      () => this.#pending--,
      () => this.#pending--,
    );
    return result;
  }

  /** True while an async operation queued here has not settled. */
  get busy(): boolean {
    return this.#pending > 0;
  }

  /** Throws BUSY when an async operation of this object is still running. */
  assertIdle(what: string): void {
    if (this.#pending > 0) {
      throw new InferzipError(
        'BUSY',
        `${what}: an async operation on this object has not finished; await it before calling the synchronous variant`,
      );
    }
  }
}

function startNow<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn();
  } catch (err) {
    return Promise.reject(err);
  }
}

const MAX_PIN_DEPTH = 3;

/** The buffers one async call pinned, with their sizes when it started. */
export class Pins {
  readonly #buffers: [ArrayBuffer, number][] = [];

  add(buffer: ArrayBufferLike): void {
    // SharedArrayBuffers cannot be detached.
    if (!(buffer instanceof ArrayBuffer) || this.#buffers.some(([b]) => b === buffer)) return;
    markAsUntransferable(buffer);
    this.#buffers.push([buffer, buffer.byteLength]);
  }

  /**
   * Throws when a pinned buffer was detached while the call ran. Marking does not stop
   * `ArrayBuffer.prototype.transfer()` (Node >= 22): the native work then read or wrote memory
   * that now belongs to another ArrayBuffer, so its result cannot be trusted.
   */
  check(context: string): void {
    for (const [buffer, bytes] of this.#buffers) {
      const detached = (buffer as { detached?: boolean }).detached === true || (bytes > 0 && buffer.byteLength === 0);
      if (detached) {
        throw new InferzipError(
          'INVALID_ARGUMENT',
          `${context}: an ArrayBuffer this call was using (${bytes} bytes) was detached while it ran (ArrayBuffer.prototype.transfer() or a transfer list); the result is discarded. Transfer a buffer only after the call's promise settles.`,
        );
      }
    }
  }
}

/**
 * Keeps the memory of every ArrayBuffer in `value` (typed arrays, Buffers, DataViews, arrays
 * and plain objects of them, 3 levels deep) from being detached by a transfer while native
 * code reads or writes it on a worker thread. Node has no per-call pin, so the buffer is
 * marked untransferable for good: a later postMessage / structuredClone transfer copies it
 * (Node 20) or throws DataCloneError (Node >= 21) instead of freeing memory in use.
 * `ArrayBuffer.prototype.transfer()` ignores the mark (Node >= 22): call `check` on the
 * returned Pins when the work is done (or use {@link runPinned}).
 */
export function pinForAsync(value: unknown, pins = new Pins(), depth = 0): Pins {
  if (value === null || typeof value !== 'object' || depth > MAX_PIN_DEPTH) return pins;
  if (ArrayBuffer.isView(value)) {
    pins.add(value.buffer);
  } else if (value instanceof ArrayBuffer) {
    pins.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) pinForAsync(v, pins, depth + 1);
  } else {
    const proto = Object.getPrototypeOf(value) as unknown;
    if (proto === Object.prototype || proto === null) {
      for (const v of Object.values(value)) pinForAsync(v, pins, depth + 1);
    }
  }
  return pins;
}

/**
 * Runs async native work that uses the buffers in `value`: pins them, turns native errors into
 * InferzipErrors naming `context`, and rejects (discarding the result) when one of the buffers
 * was detached while the work ran.
 */
export async function runPinned<T>(value: unknown, context: string, work: () => Promise<T>): Promise<T> {
  const pins = pinForAsync(value);
  const result = await nativeAwait(work, context);
  pins.check(context);
  return result;
}
