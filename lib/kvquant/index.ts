/**
 * Mixed-precision KV-cache quantization (KIVI, VidKV, ZipCache-style saliency, FP8) with
 * attention computed from packed codes. Bit layout: native/shared/kvquant/layout.h.
 */
import { native } from '../native.js';
import './native.js';

export {
  QuantizedKVCache,
  allocateD2OBudgets,
  type AppendOptions,
  type AttentionOptions,
  type KVCacheMemory,
  type KVEvictionState,
} from './cache.js';
export { QuantizedKV, quantizeKV, quantizeKVSync, dequantizeKV, dequantizeKVSync, type QuantizeKVOptions } from './quantize.js';
export { denseAttention, denseAttentionSync } from './attention.js';
export {
  KV_SCHEMES,
  type KVScheme,
  type KVQuantOptions,
  type KVCacheOptions,
  type KVEvictionOptions,
  type ResolvedKVEviction,
  type ResolvedKVOptions,
} from './options.js';
export { PLANE_NAMES, type PlaneName } from './native.js';

/**
 * The scalar codecs every scheme is built from, run through the same shared code as the
 * kernels (useful for checking a port against inferzip's bit layout).
 * @example
 * const { bytes, values } = kvCodecs.fp8(new Float32Array([0.1, 448]), 'e4m3');
 */
export const kvCodecs = {
  /** Packs b-bit codes little-endian into 32-bit words (element j at bit b*j). */
  packCodes: (codes: Uint32Array, bits: number): Uint32Array => native().kvPackCodes({ codes, bits }),
  /** Uniform asymmetric quantization of one group (round half to even, f16 scale and min). */
  quantizeGroup: (values: Float32Array, bits: number) => native().kvQuantizeGroup({ values, bits }),
  /** Ternary (1.58-bit) codes: s = mean|x|, q = sign(x) if |x| > s/2 else 0. */
  ternary: (values: Float32Array) => native().kvTernary({ values }),
  /** 1-bit codes: +scale for x >= 0, else -scale. */
  signCodes: (values: Float32Array, scale: number): Float32Array => native().kvSignCodes({ values, scale }),
  /** FP8 encode (round to nearest even, saturating) and decode. */
  fp8: (values: Float32Array, format: 'e4m3' | 'e5m2') => native().kvFp8({ values, format: format === 'e4m3' ? 0 : 1 }),
};
