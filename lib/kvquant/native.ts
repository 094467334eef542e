/** The native functions of KV-cache quantization (native/napi/kvquant.cpp). */
import type { NativeBuffer } from '../native.js';
import type { ResolvedKVOptions } from './options.js';

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
}

export interface NativeKvPlaneState {
  stride: number;
  data: Uint8Array;
}

export interface NativeKvState {
  tokens: number;
  quantizedKeys: number;
  quantizedValues: number;
  finalized: boolean;
  anomalousChosen: boolean;
  channelOrder: Int16Array;
  units: Float64Array;
  residualK: Float32Array;
  residualV: Float32Array;
  residualScore: Float32Array;
  residualCount: Float32Array;
  planes: NativeKvPlaneState[];
}

/** Options as the addon reads them (resolved and validated in TypeScript; fp8Format 0 = e4m3, 1 = e5m2). */
export type NativeKvOptions = Omit<ResolvedKVOptions, 'fp8Format'> & { fp8Format: number };

/** A native KV cache; its operations are the kv* functions below, taking it as `cache`. */
export interface NativeKvCacheHandle {
  finalize(): void;
  stats(): NativeKvStats;
  plane(args: { index: number }): { buffer: NativeBuffer; stride: number } | null;
  getState(): NativeKvState;
  setState(state: NativeKvState): void;
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

type KVPair = { k: Float32Array; v: Float32Array };

declare module '../native.js' {
  interface NativeAddon {
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
  }
}

/** Plane names in native order (native/shared/kvquant/layout.h). */
export const PLANE_NAMES = ['keyBlocks', 'keyCodes', 'keyParams', 'valueBlocks', 'valueCodes', 'valueParams', 'index', 'salientValues'] as const;
export type PlaneName = (typeof PLANE_NAMES)[number];
