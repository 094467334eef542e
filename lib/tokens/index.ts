/** Token merging and pruning: ToMe, DyCoke, HoliTom, FastV, TopV, Zero-TPrune, TempMe. */
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
  mergeTemporal,
  mergeTemporalSync,
  type DyCokeOptions,
  type HoliTomOptions,
  type MergeTemporalOptions,
  type MergeTemporalResult,
} from './temporal.js';
export {
  DynamicKVPruner,
  meanAttention,
  mergeByAttention,
  mergeByAttentionSync,
  pruneByAttention,
  pruneByAttentionSync,
  type MergeByAttentionOptions,
  type MergeByAttentionResult,
  type DynamicKVPrunerOptions,
  type KVPruneStep,
  type PruneByAttentionOptions,
  type PruneResult,
  type TokenSpan,
} from './prune.js';
export {
  mergeClips,
  mergeClipsSync,
  pruneByAttentionGraph,
  pruneByAttentionGraphSync,
  pruneByTransport,
  pruneByTransportSync,
  type KeepCount,
  type MergeClipsOptions,
  type MergeClipsResult,
  type PruneByAttentionGraphOptions,
  type PruneByTransportOptions,
  type ScoredPruneResult,
} from './reduce.js';
