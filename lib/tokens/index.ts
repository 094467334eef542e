/** Token merging and pruning: ToMe, DyCoke, HoliTom, FastV. */
export { SourceMap } from './source-map.js';
export {
  attentionBias,
  maxMergeable,
  mergeSchedule,
  mergeTokens,
  mergeTokensSync,
  scheduleTokens,
  type MergeResult,
  type MergeScheduleSpec,
  type MergeTokensOptions,
  type ProtectedTokens,
} from './tome.js';
export {
  densityPeakClusters,
  segmentFrames,
  temporalMerge,
  type DyCokeOptions,
  type HoliTomOptions,
  type TemporalMergeOptions,
  type TemporalMergeResult,
} from './temporal.js';
export {
  DynamicKVPruner,
  meanAttention,
  mergeByAttention,
  pruneByAttention,
  type MergeByAttentionOptions,
  type MergeByAttentionResult,
  type DynamicKVPrunerOptions,
  type KVPruneStep,
  type PruneByAttentionOptions,
  type PruneResult,
  type TokenSpan,
} from './prune.js';
