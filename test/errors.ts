// Helpers for asserting inferzip's typed errors by their stable code.
import { expect } from 'vitest';

import { InferzipError } from '../lib/index.js';

/** The InferzipError `fn` throws (fails the test if it throws anything else or nothing). */
export function errorOf(fn: () => unknown): InferzipError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InferzipError);
    return e as InferzipError;
  }
  throw new Error('expected an InferzipError');
}

/** The code of the InferzipError `fn` throws, or undefined when it throws nothing. */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InferzipError);
    return (e as InferzipError).code;
  }
  return undefined;
}

/** codeOf for async functions. */
export async function codeOfAsync(fn: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InferzipError);
    return (e as InferzipError).code;
  }
  return undefined;
}
