export { type SafetensorsDType, SAFETENSORS_ELEMENT_SIZE, tensorDType, safetensorsDType, isSafetensorsDType } from './dtypes.js';
export { MAX_HEADER_BYTES, type MetadataPosition, type SafetensorsEntry } from './header.js';
export { SafetensorsFile, type SafetensorsReader } from './reader.js';
export { ShardedSafetensors, openSafetensors } from './sharded.js';
export { SafetensorsBuffer, readSafetensorsBuffer, serializeSafetensors } from './buffer.js';
export { writeSafetensors, writeSafetensorsSync, writeFileAtomic, type WriteOptions } from './writer.js';
export type { SafetensorsInput, SafetensorsWriteEntry } from './encode.js';
