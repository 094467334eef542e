/**
 * Model-level DFloat11: compress / rebuild whole safetensors models, verify and inspect
 * them, open published DFloat11 checkpoints, and decode transformer blocks on demand.
 */
export { compressModel, type CompressModelOptions, type CompressModelResult } from './compress-model.js';
export { decompressModel, type DecompressModelOptions, type DecompressModelResult } from './decompress-model.js';
export { verifyModel, type VerifyModelResult } from './verify.js';
export type { Mismatch } from './restore.js';
export { inspectModel, type ModelReport, type UnitReport, type InspectOptions } from './inspect.js';
export { CompressedModel, type CompressedModelOptions, type DecodedBlock, type TensorView, type DeviceBytes } from './compressed-model.js';
export type { PlacementOption } from './placement.js';
export { openCatalog, type ModelCatalog, type UnitInfo, type UnitMember, type DFloat11Config } from './catalog.js';
export { llamaShapes } from './llama.js';
export {
  planModel,
  DEFAULT_MIN_STANDALONE_ELEMENTS,
  DEFAULT_BLOCK_PATTERN,
  UNIT_BUFFERS,
  type ModelPlan,
  type PlannedUnit,
  type PlanOptions,
} from './plan.js';
export type { ModelProgress, ModelTaskOptions } from './progress.js';
export { FORMAT_VERSION as MODEL_FORMAT_VERSION } from './manifest.js';
export { benchCodec, type BenchCodecResult } from './bench-codec.js';
