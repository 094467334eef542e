/**
 * inferzip: lossless BF16 weight compression (DFloat11), mixed-precision KV-cache
 * quantization and token merging, on CUDA or the C++ CPU backend.
 */
export { InferzipError, type InferzipErrorCode } from './errors.js';
export { backend, activeDevice, setDevice, setThreads, type BackendInfo, type DeviceKind, type GpuDevice } from './backend.js';
export * from './tensor.js';
export { DeviceTensor, type DeviceOptions } from './device-tensor.js';
export * from './safetensors/index.js';
export * from './df11/index.js';
export * from './model/index.js';
export * from './tokens/index.js';
// TopV, Zero-TPrune and TempMe, by name
export { mergeClips, mergeClipsSync, pruneByAttentionGraph, pruneByAttentionGraphSync, pruneByTransport, pruneByTransportSync } from './tokens/index.js';
export * from './kvquant/index.js';
