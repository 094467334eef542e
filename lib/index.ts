/**
 * inferzip: lossless BF16 weight compression (DFloat11), mixed-precision KV-cache
 * quantization and token merging / pruning, on CUDA or the C++ CPU backend.
 *
 * This file is the whole public API: every name is listed here on purpose. Anything not
 * exported here is internal and may change in any release.
 * @packageDocumentation
 */

// --- errors, backend, tensors -------------------------------------------------------------
export { InferzipError, type InferzipErrorCode } from './errors.js';
export { backend, activeDevice, setDevice, setThreads, type BackendInfo, type DeviceKind, type GpuDevice } from './backend.js';
export {
  tensor,
  shapeSize,
  elementSize,
  isDType,
  toFloat32,
  castFloat,
  f32ToBf16,
  bf16ToF32,
  f32ToF16,
  f16ToF32,
  f32ToBf16Bits,
  bf16BitsToF32,
  f32ToF16Bits,
  f16BitsToF32,
  fromNdarray,
  toNdarray,
  DTYPES,
  type DType,
  type Tensor,
  type TypedArrayFor,
  type DTypeArrayMap,
  type NdArrayLike,
} from './tensor.js';
export { DeviceTensor, type DeviceOptions } from './device-tensor.js';

// --- safetensors files ----------------------------------------------------------------------
export {
  openSafetensors,
  SafetensorsFile,
  ShardedSafetensors,
  SafetensorsBuffer,
  readSafetensorsBuffer,
  serializeSafetensors,
  writeSafetensors,
  writeSafetensorsSync,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsReader,
  type SafetensorsInput,
  type SafetensorsWriteEntry,
  type WriteOptions,
} from './safetensors/index.js';

// --- weights: DFloat11 units and models -----------------------------------------------------
export {
  compress,
  compressSync,
  decompress,
  decompressSync,
  exponentEntropy,
  exponentHistogram,
  unitToSafetensorsEntries,
  unitFromSafetensorsEntries,
  unitMetadata,
  type CompressOptions,
  type DecompressOptions,
  type TensorsInput,
  type CompressedUnit,
  type UnitBuffers,
  type UnitSlice,
  type UnitStats,
  type UnitEntry,
} from './df11/index.js';
export {
  compressModel,
  decompressModel,
  verifyModel,
  inspectModel,
  CompressedModel,
  openCatalog,
  llamaShapes,
  type CompressModelOptions,
  type CompressModelResult,
  type DecompressModelResult,
  type VerifyModelResult,
  type Mismatch,
  type ModelReport,
  type UnitReport,
  type InspectOptions,
  type CompressedModelOptions,
  type DecodedBlock,
  type TensorView,
  type DeviceBytes,
  type ModelCatalog,
  type UnitInfo,
  type UnitMember,
  type DFloat11Config,
  type ModelProgress,
  type ModelTaskOptions,
} from './model/index.js';

// --- KV cache -------------------------------------------------------------------------------
export {
  QuantizedKVCache,
  QuantizedKV,
  quantizeKV,
  quantizeKVSync,
  dequantizeKV,
  dequantizeKVSync,
  denseAttention,
  denseAttentionSync,
  kvCodecs,
  KV_SCHEMES,
  type AppendOptions,
  type AttentionOptions,
  type KVCacheMemory,
  type QuantizeKVOptions,
  type KVScheme,
  type KVQuantOptions,
  type KVCacheOptions,
  type ResolvedKVOptions,
} from './kvquant/index.js';

// --- tokens ---------------------------------------------------------------------------------
export {
  mergeTokens,
  mergeTokensSync,
  mergeSchedule,
  scheduleTokens,
  maxMergeable,
  attentionBias,
  SourceMap,
  mergeTemporal,
  mergeTemporalSync,
  pruneByAttention,
  pruneByAttentionSync,
  mergeByAttention,
  mergeByAttentionSync,
  meanAttention,
  DynamicKVPruner,
  type MergeResult,
  type MergeScheduleSpec,
  type MergeTokensOptions,
  type ProtectedTokens,
  type DyCokeOptions,
  type HoliTomOptions,
  type MergeTemporalOptions,
  type MergeTemporalResult,
  type MergeByAttentionOptions,
  type MergeByAttentionResult,
  type DynamicKVPrunerOptions,
  type KVPruneStep,
  type PruneByAttentionOptions,
  type PruneResult,
  type TokenSpan,
} from './tokens/index.js';
