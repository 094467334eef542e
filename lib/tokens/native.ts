/** The token-merging and pruning functions of the native addon (native/napi/tokens.cpp, prune.cpp, temporal.cpp). */
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

/** Options of one native ToMe step on host arrays. */
export interface NativeTomeHostArgs {
  x: Float32Array;
  metric?: Float32Array;
  sizes?: Float32Array;
  /** 0/1 per token: never merged. */
  protect?: Uint8Array;
  batch: number;
  n: number;
  c: number;
  cm: number;
  r: number;
  keepOrder: boolean;
}

/** Options of one native ToMe step on device memory. */
export interface NativeTomeDeviceArgs extends Omit<NativeTomeHostArgs, 'x' | 'metric' | 'sizes'> {
  x: NativeBuffer;
  metric?: NativeBuffer;
  sizes?: NativeBuffer;
  dtype: 'f32' | 'f16' | 'bf16' | string;
}

declare module '../native.js' {
  interface NativeAddon {
    tokensTomeMerge(args: NativeTomeHostArgs): NativeTomeHostResult;
    tokensTomeMergeAsync(args: NativeTomeHostArgs): Promise<NativeTomeHostResult>;
    tokensTomeMergeDevice(args: NativeTomeDeviceArgs): NativeTomeDeviceResult;
    tokensTomeMergeDeviceAsync(args: NativeTomeDeviceArgs): Promise<NativeTomeDeviceResult>;
    tokensTomeBestMatch(args: { metric: Float32Array; protect?: Uint8Array; batch: number; n: number; cm: number }): { bestB: Int32Array; score: Float32Array };
  }
}

/** Native FastV selection (and row gather when tokens are passed). */
export interface NativePruneResult {
  kept: Int32Array;
  dropped: Int32Array;
  /** Gathered rows, same array type as the input. */
  tokens: ArrayBufferView | null;
}

/** One native DyCoke KV step; `kept` is null when the previous set is reused. */
export interface NativeKVStepResult {
  image: Float32Array;
  similarity: number;
  recomputed: boolean;
  kept: Int32Array | null;
}

/** Native HoliTom inner-LLM merge. */
export interface NativeAttentionMergeResult {
  x: Float32Array;
  sizes: Float32Array;
  assignment: Int32Array;
  kept: Int32Array;
  dropped: Int32Array;
}

/** Native DyCoke / HoliTom result; segments = [first0, last0, first1, last1, ...] (empty for DyCoke). */
export interface NativeTemporalResult {
  x: Float32Array;
  frame: Int32Array;
  position: Int32Array;
  sizes: Float32Array;
  assignment: Int32Array;
  segments: Int32Array;
}

/** Last-token attention [heads, n] as the native passes take it. */
interface NativeAttentionArgs {
  attention: Float32Array;
  heads: number;
  n: number;
}
export interface NativePruneArgs extends NativeAttentionArgs {
  start: number;
  end: number;
  keep: number;
  /** Rows to gather: batch x n rows of rowBytes bytes. */
  tokens?: ArrayBufferView;
  batch: number;
  rowBytes: number;
}
export interface NativeKVStepArgs extends NativeAttentionArgs {
  start: number;
  end: number;
  previous?: Float32Array;
  hasKept: boolean;
  keep: number;
  threshold: number;
}
export interface NativeAttentionMergeArgs extends NativeAttentionArgs {
  tokens: Float32Array;
  c: number;
  start: number;
  end: number;
  keep: number;
  sizes?: Float32Array;
}
interface NativeVideoArgs {
  /** [t, p, c] */
  frames: Float32Array;
  t: number;
  p: number;
  c: number;
}
export interface NativeDyCokeArgs extends NativeVideoArgs {
  keep: number;
  merge: boolean;
}
export interface NativeHoliTomArgs extends NativeVideoArgs {
  tau: number;
  gridH: number;
  gridW: number;
  pool: number;
  keepRatio: number;
  attentionShare: number;
  knn: number;
  attention?: Float32Array;
}

declare module '../native.js' {
  interface NativeAddon {
    tokensMeanAttention(args: NativeAttentionArgs): Float32Array;
    tokensPruneByAttention(args: NativePruneArgs): NativePruneResult;
    tokensPruneByAttentionAsync(args: NativePruneArgs): Promise<NativePruneResult>;
    tokensKvPruneStep(args: NativeKVStepArgs): NativeKVStepResult;
    tokensKvPruneStepAsync(args: NativeKVStepArgs): Promise<NativeKVStepResult>;
    tokensMergeByAttention(args: NativeAttentionMergeArgs): NativeAttentionMergeResult;
    tokensMergeByAttentionAsync(args: NativeAttentionMergeArgs): Promise<NativeAttentionMergeResult>;
    tokensDycokeMerge(args: NativeDyCokeArgs): NativeTemporalResult;
    tokensDycokeMergeAsync(args: NativeDyCokeArgs): Promise<NativeTemporalResult>;
    tokensHolitomMerge(args: NativeHoliTomArgs): NativeTemporalResult;
    tokensHolitomMergeAsync(args: NativeHoliTomArgs): Promise<NativeTemporalResult>;
    tokensSegmentFrames(args: { stable: Uint8Array; t: number; p: number }): Int32Array;
    tokensDensityPeakClusters(args: { x: Float32Array; c: number; ids: Int32Array; centres: number; knn: number }): { centres: Int32Array; label: Int32Array };
  }
}
