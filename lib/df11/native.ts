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

export interface NativeEncodeOptions {
  threads?: number;
  maxCodeLength?: number;
}

declare module '../native.js' {
  interface NativeAddon {
    df11Encode(tensors: Uint16Array[], options?: NativeEncodeOptions): NativeEncodedUnit;
    df11EncodeAsync(tensors: Uint16Array[], options?: NativeEncodeOptions): Promise<NativeEncodedUnit>;
    df11Decode(unit: NativeUnitParts, out: Uint16Array | NativeBuffer, threads?: number): void;
    df11DecodeAsync(unit: NativeUnitParts, out: Uint16Array | NativeBuffer, threads?: number): Promise<void>;
    df11SimulateKernel(unit: NativeUnitParts, out: Uint16Array): void;
    df11Histogram(data: Uint16Array): Float64Array;
  }
}
