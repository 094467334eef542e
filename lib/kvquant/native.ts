/** The KV-cache part of the addon's surface (declared in types/binding.d.ts). */
export type {
  NativeKvStats,
  NativeKvOptions,
  NativeKvCacheHandle,
  NativeKvAppendArgs,
  NativeKvAttentionArgs,
  NativeDenseAttentionArgs,
} from '../../types/binding.js';

/** Plane names in native order (native/shared/kvquant/layout.h). */
export const PLANE_NAMES = [
  'keyBlocks',
  'keyCodes',
  'keyParams',
  'valueBlocks',
  'valueCodes',
  'valueParams',
  'index',
  'salientValues',
] as const;
export type PlaneName = (typeof PLANE_NAMES)[number];
