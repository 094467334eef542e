// The native addon's whole surface, declared by hand in one place (as node-llama-cpp and
// onnxruntime-node do): lib/native.ts types the loaded addon with NativeBinding. Every entry
// point takes one options object; `xxxAsync` runs the same work on a libuv worker.
// Keep in step with native/napi/**: a function missing here is a function lib/ cannot call.

/** Host or device memory owned by the addon (see DeviceTensor). */
export interface NativeBuffer {
  readonly bytes: number;
  readonly device: 'cpu' | 'cuda' | 'disposed';
  /** The CUDA device index (0 for host memory). */
  readonly deviceIndex: number;
  readonly disposed: boolean;
  /** Copies `source` into this buffer at byte `offset`. */
  upload(args: { source: ArrayBufferView | ArrayBuffer; offset?: number }): void;
  /** Copies this buffer from byte `offset` into `destination` (its whole length). */
  download(args: { destination: ArrayBufferView | ArrayBuffer; offset?: number }): void;
  uploadAsync(args: { source: ArrayBufferView | ArrayBuffer; offset?: number }): Promise<void>;
  downloadAsync(args: { destination: ArrayBufferView | ArrayBuffer; offset?: number }): Promise<void>;
  copyFrom(args: { source: NativeBuffer; dstOffset?: number; srcOffset?: number; bytes: number }): void;
  dispose(): void;
}

export interface NativeBackendInfo {
  cudaCompiled: boolean;
  cudaAvailable: boolean;
  reason: string;
  devices: { name: string; memory: number; computeCapability: string }[];
  cpuThreads: number;
  simd: 'avx512' | 'avx2' | 'portable';
  crc32: 'vpclmulqdq' | 'pclmulqdq' | 'portable';
  buildSystem?: string;
}

/** Memory the addon holds on one device ('cpu' first, then 'cuda:0', 'cuda:1', ...). */
export interface NativeMemoryStats {
  device: 'cpu' | `cuda:${number}`;
  bytes: number;
  peakBytes: number;
  allocations: number;
}

export interface NativeLimits {
  /** Most CPU threads one call may use. */
  maxThreads: number;
  /** Largest single allocation accepted (a guard against corrupt sizes). */
  maxAllocationBytes: number;
}

export interface NativeBinding {
  /** deviceIndex: the CUDA device (default 0; ignored for 'cpu'). */
  NativeBuffer: new (args: { device: 'cpu' | 'cuda'; deviceIndex?: number; bytes: number; zero?: boolean }) => NativeBuffer;
  backendInfo(): NativeBackendInfo;
  memoryStats(): NativeMemoryStats[];
  setThreads(args: { threads: number }): number;
  /** The limits the native layer enforces (read once by lib/limits.ts). */
  limits(): NativeLimits;
  /** zlib-compatible CRC-32 of `data`, continuing from `value` (default 0). */
  checksumCrc32(args: { data: ArrayBufferView; value?: number }): number;

  // df11
  df11Encode(args: NativeEncodeArgs): NativeEncodedUnit;
  df11EncodeAsync(args: NativeEncodeArgs): Promise<NativeEncodedUnit>;
  df11Decode(args: NativeDecodeArgs): void;
  df11DecodeAsync(args: NativeDecodeArgs): Promise<void>;
  df11SimulateKernel(args: { unit: NativeUnitParts; out: Uint16Array }): void;
  df11Histogram(args: { data: Uint16Array }): Float64Array;
  // kv
  KvCacheHandle: new (options: NativeKvOptions) => NativeKvCacheHandle;
  kvAppend(args: NativeKvAppendArgs): void;
  kvAppendAsync(args: NativeKvAppendArgs): Promise<void>;
  kvAttention(args: NativeKvAttentionArgs): Float32Array;
  kvAttentionAsync(args: NativeKvAttentionArgs): Promise<Float32Array>;
  kvDequantize(args: { cache: NativeKvCacheHandle }): KVPair;
  kvDequantizeAsync(args: { cache: NativeKvCacheHandle }): Promise<KVPair>;
  kvDenseAttention(args: NativeDenseAttentionArgs): Float32Array;
  kvDenseAttentionAsync(args: NativeDenseAttentionArgs): Promise<Float32Array>;
  kvPackCodes(args: { codes: Uint32Array; bits: number }): Uint32Array;
  kvQuantizeGroup(args: { values: Float32Array; bits: number }): { codes: Uint32Array; scale: number; min: number; values: Float32Array };
  kvTernary(args: { values: Float32Array }): { q: Int32Array; scale: number; values: Float32Array; packedBytes: number };
  kvSignCodes(args: { values: Float32Array; scale: number }): Float32Array;
  kvFp8(args: { values: Float32Array; format: number }): { bytes: Uint8Array; values: Float32Array };
  // tokens
  tokensTomeMerge(args: NativeTomeHostArgs): NativeTomeHostResult;
  tokensTomeMergeAsync(args: NativeTomeHostArgs): Promise<NativeTomeHostResult>;
  tokensTomeMergeDevice(args: NativeTomeDeviceArgs): NativeTomeDeviceResult;
  tokensTomeMergeDeviceAsync(args: NativeTomeDeviceArgs): Promise<NativeTomeDeviceResult>;
  tokensTomeBestMatch(args: { metric: Float32Array; protect?: Uint8Array; batch: number; n: number; cm: number }): {
    bestB: Int32Array;
    score: Float32Array;
  };
  // tokens
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
  tokensDensityPeakClusters(args: { x: Float32Array; c: number; ids: Int32Array; centres: number; knn: number }): {
    centres: Int32Array;
    label: Int32Array;
  };
  tokensPruneByTransport(args: NativeTransportOptions): NativeScoredSelection;
  tokensPruneByTransportAsync(args: NativeTransportOptions): Promise<NativeScoredSelection>;
  tokensPruneByAttentionGraph(args: NativeGraphOptions): NativeScoredSelection;
  tokensPruneByAttentionGraphAsync(args: NativeGraphOptions): Promise<NativeScoredSelection>;
  // TopV / Zero-TPrune on device memory (native/napi/tokens/reduce_device.cpp)
  tokensPruneByTransportDevice(args: NativeTransportDeviceOptions): NativeDeviceScoredSelection;
  tokensPruneByTransportDeviceAsync(args: NativeTransportDeviceOptions): Promise<NativeDeviceScoredSelection>;
  tokensPruneByAttentionGraphDevice(args: NativeGraphDeviceOptions): NativeDeviceScoredSelection;
  tokensPruneByAttentionGraphDeviceAsync(args: NativeGraphDeviceOptions): Promise<NativeDeviceScoredSelection>;
  tokensMergeClips(args: NativeClipOptions): NativeClipMergeResult;
  tokensMergeClipsAsync(args: NativeClipOptions): Promise<NativeClipMergeResult>;
  tokensMergeClipsDevice(args: NativeClipDeviceOptions): NativeClipDeviceResult;
  tokensMergeClipsDeviceAsync(args: NativeClipDeviceOptions): Promise<NativeClipDeviceResult>;
  tokensReceivedAttention(args: NativeAttentionArgs): Float32Array;
  tokensReceivedAttentionAsync(args: NativeAttentionArgs): Promise<Float32Array>;
}

// --- DFloat11 (native/napi/df11) ---

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

// --- KV cache (native/napi/kvquant) ---

export interface NativeKvStats {
  tokens: number;
  quantizedKeys: number;
  quantizedValues: number;
  /** Packed key codes + scales + metadata. */
  packedKeyBytes: number;
  packedValueBytes: number;
  /** f32 residual window. */
  residualBytes: number;
  /** Everything allocated (plane capacity grows by doubling). */
  capacityBytes: number;
  /** Token slots stored (>= tokens when eviction leaves slots other heads still keep). */
  slots: number;
  /** Eviction bookkeeping: positions, scores, live flags, thresholds (0 without eviction). */
  evictionBytes: number;
  /** Quantized key / value slots still kept, averaged over the KV heads (= quantizedKeys without eviction). */
  liveQuantizedKeys: number;
  liveQuantizedValues: number;
}

/** Eviction state of a cache (native/core/kvquant/evict.cpp). */
export interface NativeKvEvictState {
  /** P: tokens held at the first attention call; -1 before it. */
  prefill: number;
  /** B and R as resolved at the prefill (or allocated by allocateD2OBudgets). */
  budget: number;
  recent: number;
  allocated: boolean;
  /** Mean over streams of the variance of the scores right after the prefill attention. */
  density: number;
  /** Kept tokens per stream. */
  kept: number;
  /** [streams][kept] absolute positions and accumulated scores, ascending positions. */
  positions: Int32Array;
  scores: Float32Array;
  /** [streams] d2o merge thresholds (NaN: no round yet). */
  tau: Float32Array;
}

/** Options as the addon reads them: all required (resolved and validated in TypeScript). */
export interface NativeKvOptions {
  scheme: 'kivi' | 'vidkv' | 'zipcache' | 'fp8';
  bits: number;
  /** 0 = e4m3, 1 = e5m2 */
  fp8Format: number;
  groupSize: number;
  channelGroupSize: number;
  residualLength: number;
  anomalousFraction: number;
  salientFraction: number;
  lowFraction: number;
  probeFraction: number;
  seed: number;
  device: 'cpu' | 'cuda';
  /** The CUDA device of the cache (default 0). */
  deviceIndex?: number;
  batch: number;
  heads: number;
  headDim: number;
  evictMethod: 'none' | 'h2o' | 'd2o';
  evictBudget: number;
  evictRecent: number;
  /** 0 = head, 1 = layer */
  evictGranularity: number;
  evictBeta: number;
}

/** A native KV cache; its operations are the kv* functions below, taking it as `cache`. */
export interface NativeKvCacheHandle {
  finalize(): void;
  stats(): NativeKvStats;
  plane(args: { index: number }): { buffer: NativeBuffer; stride: number } | null;
  /** The saved form: core's named byte sections (native/core/kvquant/serialize.h). */
  serialize(): Record<string, Uint8Array>;
  /** Restores sections made by serialize() with the same options; throws CORRUPT_DATA. */
  deserialize(sections: Record<string, Uint8Array>): void;
  evictState(): NativeKvEvictState;
  /** d2o: takes a layer budget and runs the round skipped at the prefill. */
  evictAllocate(args: { budget: number; recent: number }): void;
  /** Tests, CUDA caches: mirror bytes that differ from the host planes; bytes eviction rounds uploaded vs whole planes. */
  mirrorCheck(): { differingBytes: number; roundUploadBytes: number; wholeUploadBytes: number; rounds: number };
  dispose(): void;
}

export interface NativeKvAppendArgs {
  cache: NativeKvCacheHandle;
  k: Float32Array;
  v: Float32Array;
  tokens: number;
  queries?: Float32Array;
  qHeads?: number;
  scores?: Float32Array;
}

export interface NativeKvAttentionArgs {
  cache: NativeKvCacheHandle;
  q: Float32Array;
  qHeads: number;
  queries: number;
  scale: number;
  causal: boolean;
}

export interface NativeDenseAttentionArgs {
  q: Float32Array;
  batch: number;
  qHeads: number;
  queries: number;
  k: Float32Array;
  v: Float32Array;
  heads: number;
  tokens: number;
  headDim: number;
  scale: number;
  causal: boolean;
}

export type KVPair = { k: Float32Array; v: Float32Array };

// --- tokens (native/napi/tokens) ---

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
export interface NativeAttentionArgs {
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
export interface NativeVideoArgs {
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

/** Native TempMe on device memory: tokens and sizes stay on the frames' device. */
export interface NativeClipDeviceResult {
  x: NativeBuffer;
  sizes: NativeBuffer;
  rows: number;
  assignment: Int32Array;
  clipLengths: Int32Array;
}

/** Options object of the native mergeClips on device memory (TempMe). */
export interface NativeClipDeviceOptions extends Omit<NativeClipOptions, 'frames'> {
  frames: NativeBuffer;
  dtype: 'f32' | 'f16' | 'bf16';
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

/** Native TopV / Zero-TPrune on device memory: the selection plus the kept rows on the inputs' device. */
export interface NativeDeviceScoredSelection extends NativeScoredSelection {
  /** Kept rows [batch, K, C] in the input's dtype. */
  tokens: NativeBuffer;
}

/** Options object of the native pruneByTransport on device memory (every buffer on one device). */
export interface NativeTransportDeviceOptions extends Omit<NativeTransportOptions, 'visual' | 'target' | 'text'> {
  visual: NativeBuffer;
  visualDtype: 'f32' | 'f16' | 'bf16' | string;
  target?: NativeBuffer;
  targetDtype?: 'f32' | 'f16' | 'bf16' | string;
  text?: NativeBuffer;
  textDtype?: 'f32' | 'f16' | 'bf16' | string;
}

/** Options object of the native pruneByAttentionGraph on device memory (both buffers on one device). */
export interface NativeGraphDeviceOptions extends Omit<NativeGraphOptions, 'tokens' | 'attention'> {
  tokens: NativeBuffer;
  tokensDtype: 'f32' | 'f16' | 'bf16' | string;
  attention: NativeBuffer;
  attentionDtype: 'f32' | 'f16' | 'bf16' | string;
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
