/**
 * DFloat11: lossless BF16 weight compression (Huffman-coded exponents, verbatim
 * sign+mantissa), compatible with DFloat11 v0.5.0 files. Encoder and decoders are native
 * (multi-threaded CPU; CUDA kernel when decoding into GPU memory).
 */
export type { CompressedUnit, UnitBuffers, UnitSlice, UnitStats } from './unit.js';
export { unitBufferBytes } from './unit-buffers.js';
export {
  compress,
  compressSync,
  decompress,
  decompressSync,
  simulateKernelDecode,
  exponentEntropy,
  exponentHistogram,
  type CompressOptions,
  type DecompressOptions,
  type TensorsInput,
} from './codec.js';
export {
  unitToSafetensorsEntries,
  unitFromSafetensorsEntries,
  unitManifest,
  unitManifestKey,
  unitMetadata,
  type UnitEntry,
  type UnitManifest,
} from './serialize.js';
