/** The CompressedUnit type: a DFloat11 unit's buffers, what it holds, and its statistics. */
import type { Tensor } from '../tensor.js';

/** The DFloat11 v0.5.0 buffers of one unit (names as in DFloat11 files). */
export interface UnitBuffers {
  /** Huffman codes of the exponents, MSB-first. */
  readonly encodedExponent: Uint8Array;
  /** Sign and mantissa bits, one byte per element. */
  readonly signMantissa: Uint8Array;
  /** Decode tables then the code-length row, (tables + 1) x 256 bytes. */
  readonly luts: Uint8Array;
  /** First element of every GPU block, u32 little-endian, blocks + 1 values. */
  readonly outputPositions: Uint8Array;
  /** 5-bit offset of the first code in every 8-byte chunk, MSB-first. */
  readonly gaps: Uint8Array;
  /** Element offsets between the concatenated tensors (tensors - 1 values). */
  readonly splitPositions: BigInt64Array;
}

/** Where one tensor of a unit lands in the decoded output (elements, not bytes). */
export interface UnitSlice {
  readonly name: string;
  readonly shape: readonly number[];
  /** First element in the decoded buffer. */
  readonly offset: number;
  /** Elements. */
  readonly length: number;
  /** True when the tensor is stored verbatim (it holds an exponent >= 240: |x| >= 2^113, Inf or NaN). */
  readonly raw: boolean;
}

/** Sizes and how close the code is to the entropy bound. Bits are per BF16 weight. */
export interface UnitStats {
  /** Elements coded by the unit (raw tensors excluded). */
  readonly encodedElements: number;
  /** Elements stored verbatim. */
  readonly rawElements: number;
  /** Exponent entropy H in bits (of the encoded elements). */
  readonly exponentEntropy: number;
  /** 8 + H: the best any exponent-only entropy coder can do. */
  readonly entropyBound: number;
  /** Huffman codes + sign/mantissa bytes, per encoded element. */
  readonly payloadBitsPerWeight: number;
  /** Every buffer of the unit (tables, gaps, positions included), per encoded element. */
  readonly bitsPerWeight: number;
  /** Bytes of all buffers (raw tensors excluded). */
  readonly compressedBytes: number;
  /** Bytes of the encoded tensors as BF16. */
  readonly originalBytes: number;
  readonly maxCodeLength: number;
  /** Decode tables (root + children), at most 17. */
  readonly tables: number;
  /** Names of tensors stored verbatim. */
  readonly rawTensors: readonly string[];
}

/** One compressed unit: a set of BF16 tensors sharing one code. Serializable (see unitToSafetensorsEntries). */
export interface CompressedUnit {
  readonly format: 'dfloat11';
  readonly buffers: UnitBuffers;
  /** Every tensor in input order; encoded ones first in the decoded layout, raw ones after. */
  readonly slices: readonly UnitSlice[];
  /** Tensors stored verbatim, by name. */
  readonly raw: Readonly<Record<string, Tensor<'bf16'>>>;
  /** Elements in the encoded stream. */
  readonly encodedElements: number;
  /** Elements of the whole decoded layout (encoded + raw). */
  readonly totalElements: number;
  readonly stats: UnitStats;
}
