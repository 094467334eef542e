/** The addon functions behind lib/df11 (module augmentation of NativeAddon). */
import type { NativeBuffer } from '../native.js';

/** The buffers of a unit as the addon returns them. */
export interface NativeEncodedUnit {
  encodedExponent: Uint8Array;
  signMantissa: Uint8Array;
  luts: Uint8Array;
  outputPositions: Uint8Array;
  gaps: Uint8Array;
  splitPositions: BigInt64Array;
  encodedInputs: number[];
  rawInputs: number[];
  nElements: number;
  nTables: number;
  maxCodeLength: number;
  codeBits: number;
  entropyBits: number;
  histogram: Float64Array;
}

/** A unit buffer in host memory or in a NativeBuffer (host or CUDA memory). */
export type UnitBufferSource = Uint8Array | NativeBuffer;

/** The five buffers a decoder reads. */
export interface NativeUnitParts {
  luts: UnitBufferSource;
  encodedExponent: UnitBufferSource;
  signMantissa: UnitBufferSource;
  outputPositions: UnitBufferSource;
  gaps: UnitBufferSource;
}

export interface NativeEncodeArgs {
  tensors: Uint16Array[];
  threads?: number;
  maxCodeLength?: number;
}

/** Decodes `elements` BF16 words into `out` at element `offset` (defaults: all of out from 0). */
export interface NativeDecodeArgs {
  unit: NativeUnitParts;
  out: Uint16Array | NativeBuffer;
  offset?: number;
  elements?: number;
  threads?: number;
}

declare module '../native.js' {
  interface NativeAddon {
    df11Encode(args: NativeEncodeArgs): NativeEncodedUnit;
    df11EncodeAsync(args: NativeEncodeArgs): Promise<NativeEncodedUnit>;
    df11Decode(args: NativeDecodeArgs): void;
    df11DecodeAsync(args: NativeDecodeArgs): Promise<void>;
    df11SimulateKernel(args: { unit: NativeUnitParts; out: Uint16Array }): void;
    df11Histogram(args: { data: Uint16Array }): Float64Array;
  }
}
