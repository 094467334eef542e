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

export interface NativeKvCacheHandle {
  append(k: Float32Array, v: Float32Array, tokens: number, queries: Float32Array | null, qHeads: number, scores: Float32Array | null): void;
  appendAsync(k: Float32Array, v: Float32Array, tokens: number, queries: Float32Array | null, qHeads: number, scores: Float32Array | null): Promise<void>;
  finalize(): void;
  attention(q: Float32Array, qHeads: number, queries: number, scale: number, causal: boolean): Float32Array;
  attentionAsync(q: Float32Array, qHeads: number, queries: number, scale: number, causal: boolean): Promise<Float32Array>;
  dequantize(): { k: Float32Array; v: Float32Array };
  dequantizeAsync(): Promise<{ k: Float32Array; v: Float32Array }>;
  stats(): NativeKvStats;
  plane(index: number): { buffer: NativeBuffer; stride: number } | null;
  getState(): NativeKvState;
  setState(state: NativeKvState): void;
  dispose(): void;
}

declare module '../native.js' {
  interface NativeAddon {
    KvCacheHandle: new (options: NativeKvOptions) => NativeKvCacheHandle;
    kvDenseAttention(
      q: Float32Array,
      batch: number,
      qHeads: number,
      queries: number,
      k: Float32Array,
      v: Float32Array,
      heads: number,
      tokens: number,
      headDim: number,
      scale: number,
      causal: boolean,
      async?: boolean,
    ): Float32Array | Promise<Float32Array>;
    kvPackCodes(codes: Uint32Array, bits: number): Uint32Array;
    kvQuantizeGroup(values: Float32Array, bits: number): { codes: Uint32Array; scale: number; min: number; values: Float32Array };
    kvTernary(values: Float32Array): { q: Int32Array; scale: number; values: Float32Array; packedBytes: number };
    kvSignCodes(values: Float32Array, scale: number): Float32Array;
    kvFp8(values: Float32Array, format: number): { bytes: Uint8Array; values: Float32Array };
  }
}

/** Plane names in native order (native/shared/kvquant/layout.h). */
export const PLANE_NAMES = ['keyBlocks', 'keyCodes', 'keyParams', 'valueBlocks', 'valueCodes', 'valueParams', 'index', 'salientValues'] as const;
export type PlaneName = (typeof PLANE_NAMES)[number];
