/** The DFloat11 part of the addon's surface (declared in types/binding.d.ts). */
export type { NativeEncodedUnit, UnitBufferSource, NativeUnitParts, NativeEncodeArgs, NativeDecodeArgs } from '../../types/binding.js';
