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
