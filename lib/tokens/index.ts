export { mergeTokens, mergeTokensSync, maxMergeR, attentionBias, mergeSchedule, type MergeOptions, type MergeResult } from './tome.js';
export { pruneByAttention, DynamicKVPruner, attentionScores, type PruneOptions, type PruneResult, type DynamicKVPrunerOptions, type PrunerUpdate } from './fastv.js';
export { temporalMerge, segmentFrames, type TemporalMergeOptions, type TemporalMergeResult, type DyCokeOptions, type HoliTomOptions } from './temporal.js';
