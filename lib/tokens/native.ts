/** The token-merging functions of the native addon (see native/napi/tokens.cpp). */
import type { NativeBuffer } from '../native.js';

/** Result of one native ToMe step on host arrays. */
export interface NativeTomeHostResult {
  x: Float32Array;
  sizes: Float32Array;
  dest: Int32Array;
}

/** Result of one native ToMe step on device memory. */
export interface NativeTomeDeviceResult {
  x: NativeBuffer;
  sizes: NativeBuffer;
  dest: NativeBuffer;
}

declare module '../native.js' {
  interface NativeAddon {
    tomeMerge(
      x: Float32Array, metric: Float32Array | null, sizes: Float32Array | null, protect: Uint8Array | null,
      batch: number, n: number, c: number, cm: number, r: number, keepOrder: boolean,
    ): NativeTomeHostResult;
    tomeMergeAsync(
      x: Float32Array, metric: Float32Array | null, sizes: Float32Array | null, protect: Uint8Array | null,
      batch: number, n: number, c: number, cm: number, r: number, keepOrder: boolean,
    ): Promise<NativeTomeHostResult>;
    tomeMergeDevice(
      x: NativeBuffer, metric: NativeBuffer | null, sizes: NativeBuffer | null, protect: Uint8Array | null,
      batch: number, n: number, c: number, cm: number, r: number, keepOrder: boolean, dtype: string,
    ): NativeTomeDeviceResult;
    tomeMergeDeviceAsync(
      x: NativeBuffer, metric: NativeBuffer | null, sizes: NativeBuffer | null, protect: Uint8Array | null,
      batch: number, n: number, c: number, cm: number, r: number, keepOrder: boolean, dtype: string,
    ): Promise<NativeTomeDeviceResult>;
    tomeBestMatch(metric: Float32Array, protect: Uint8Array | null, batch: number, n: number, cm: number): { bestB: Int32Array; score: Float32Array };
  }
}
