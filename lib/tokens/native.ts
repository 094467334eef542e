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

type PruneArgs = [attention: Float32Array, heads: number, n: number, start: number, end: number, keep: number, tokens: ArrayBufferView | null, batch: number, rowBytes: number];
type KVStepArgs = [attention: Float32Array, heads: number, n: number, start: number, end: number, previous: Float32Array | null, hasKept: boolean, keep: number, threshold: number];
type AttentionMergeArgs = [x: Float32Array, n: number, c: number, attention: Float32Array, heads: number, start: number, end: number, keep: number, sizes: Float32Array | null];
type DyCokeArgs = [x: Float32Array, t: number, p: number, c: number, keep: number, merge: boolean];
type HoliTomArgs = [x: Float32Array, t: number, p: number, c: number, tau: number, gridH: number, gridW: number, pool: number, keepRatio: number, attentionShare: number, knn: number, attention: Float32Array | null];

declare module '../native.js' {
  interface NativeAddon {
    meanAttention(attention: Float32Array, heads: number, n: number): Float32Array;
    pruneByAttention(...args: PruneArgs): NativePruneResult;
    pruneByAttentionAsync(...args: PruneArgs): Promise<NativePruneResult>;
    kvPruneStep(...args: KVStepArgs): NativeKVStepResult;
    kvPruneStepAsync(...args: KVStepArgs): Promise<NativeKVStepResult>;
    mergeByAttention(...args: AttentionMergeArgs): NativeAttentionMergeResult;
    mergeByAttentionAsync(...args: AttentionMergeArgs): Promise<NativeAttentionMergeResult>;
    dycokeMerge(...args: DyCokeArgs): NativeTemporalResult;
    dycokeMergeAsync(...args: DyCokeArgs): Promise<NativeTemporalResult>;
    holitomMerge(...args: HoliTomArgs): NativeTemporalResult;
    holitomMergeAsync(...args: HoliTomArgs): Promise<NativeTemporalResult>;
    segmentFrames(stable: Uint8Array, t: number, p: number): Int32Array;
    densityPeakClusters(x: Float32Array, c: number, ids: Int32Array, centres: number, knn: number): { centres: Int32Array; label: Int32Array };
  }
}

/** Native TopV / Zero-TPrune selection; batched results are concatenated row by row. */
export interface NativeScoredSelection {
  kept: Int32Array;
  dropped: Int32Array;
  scores: Float32Array;
}

/** Native TempMe result. */
export interface NativeClipMergeResult {
  x: Float32Array;
  sizes: Float32Array;
  assignment: Int32Array;
  clipLengths: Int32Array;
}

/** Options object of the native pruneByTransport (TopV). */
export interface NativeTransportOptions {
  visual: Float32Array;
  batch: number;
  n: number;
  c: number;
  target?: Float32Array;
  text?: Float32Array;
  textRows?: number;
  gridH: number;
  gridW: number;
  alpha: number;
  beta: number;
  gamma: number;
  eps: number;
  iters: number;
  keep: number;
  recover: number;
}

/** Options object of the native pruneByAttentionGraph (Zero-TPrune). */
export interface NativeGraphOptions {
  tokens: Float32Array;
  attention: Float32Array;
  batch: number;
  n: number;
  c: number;
  heads: number;
  iters: number;
  similarShare: number;
  keep: number;
}

/** Options object of the native mergeClips (TempMe). */
export interface NativeClipOptions {
  frames: Float32Array;
  batch?: number;
  t: number;
  p: number;
  c: number;
  imgKeep: number;
  crossKeep: number;
  intraKeep: number;
  groups?: Int32Array;
}

declare module '../native.js' {
  interface NativeAddon {
    pruneByTransport(o: NativeTransportOptions): NativeScoredSelection;
    pruneByTransportAsync(o: NativeTransportOptions): Promise<NativeScoredSelection>;
    pruneByAttentionGraph(o: NativeGraphOptions): NativeScoredSelection;
    pruneByAttentionGraphAsync(o: NativeGraphOptions): Promise<NativeScoredSelection>;
    mergeClips(o: NativeClipOptions): NativeClipMergeResult;
    mergeClipsAsync(o: NativeClipOptions): Promise<NativeClipMergeResult>;
    receivedAttention(o: { attention: Float32Array; heads: number; n: number }): Float32Array;
    receivedAttentionAsync(o: { attention: Float32Array; heads: number; n: number }): Promise<Float32Array>;
  }
}
