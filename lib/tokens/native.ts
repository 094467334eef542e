/** The token part of the addon's surface (declared in types/binding.d.ts). */
export type {
  NativeTomeHostResult,
  NativeTomeDeviceResult,
  NativeTomeHostArgs,
  NativeTomeDeviceArgs,
  NativePruneResult,
  NativeKVStepResult,
  NativeAttentionMergeResult,
  NativeTemporalResult,
  NativePruneArgs,
  NativeKVStepArgs,
  NativeAttentionMergeArgs,
  NativeDyCokeArgs,
  NativeHoliTomArgs,
} from '../../types/binding.js';
