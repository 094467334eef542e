/** Native functions of token merging (see native/napi/tokens.cpp). */
import type { DeviceKind } from '../backend.js';

export interface NativeTomeOptions {
  batch: number;
  n: number;
  c: number;
  cm: number;
  r: number;
  keepOrder: boolean;
  device: DeviceKind;
}

export interface NativeTomeResult {
  x: Float32Array;
  sizes: Float32Array;
  assign: Int32Array;
}

declare module '../native.js' {
  interface NativeAddon {
    tomeMergeSync(x: Float32Array, metric: Float32Array, sizes: Float32Array | null, protect: Uint8Array | null, options: NativeTomeOptions): NativeTomeResult;
    tomeMerge(x: Float32Array, metric: Float32Array, sizes: Float32Array | null, protect: Uint8Array | null, options: NativeTomeOptions): Promise<NativeTomeResult>;
    rowCosine(a: Float32Array, b: Float32Array, rows: number, channels: number): Float32Array;
  }
}
