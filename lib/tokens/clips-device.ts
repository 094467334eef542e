/**
 * TempMe (mergeClips) on a DeviceTensor: the frames stay where they are. On 'cpu' the CPU
 * backend runs on the addon's memory; on 'cuda:N' ImgMe and the intra-clip steps run as
 * batched ToMe steps and the cross-clip steps on TempMe's list kernels
 * (native/core/tokens/clips_device.cpp). Tokens and sizes come back as DeviceTensors on the
 * frames' device; the assignment and clip lengths (small integer maps) come back to the host.
 */
import { DeviceTensor } from '../device-tensor.js';
import { check } from '../errors.js';
import type { NativeClipDeviceOptions, NativeClipDeviceResult, NativeClipOptions } from './native.js';
import { SourceMap } from './source-map.js';
import { FLOAT_DTYPES, type FloatDType } from '../validate.js';

/** The dims and dtype of device frames [T, P, C] or [batch, T, P, C] (values are checked natively). */
export function deviceFrames(frames: DeviceTensor): { shape: readonly number[]; dtype: FloatDType } {
  void frames.buffer; // throws DISPOSED before anything else is read
  check(FLOAT_DTYPES.includes(frames.dtype as FloatDType), `frames must be f32, f16 or bf16, got ${frames.dtype}`, 'DTYPE_MISMATCH');
  check(
    frames.shape.length === 3 || frames.shape.length === 4,
    `frames must be [T, P, C] or [batch, T, P, C], got [${frames.shape.join(', ')}]`,
    'SHAPE_MISMATCH',
  );
  return { shape: frames.shape, dtype: frames.dtype as FloatDType };
}

/** The native options for device frames: the host options' numbers with the buffer and its dtype. */
export function clipDeviceArgs(frames: DeviceTensor, params: Omit<NativeClipOptions, 'frames'>): NativeClipDeviceOptions {
  return { ...params, frames: frames.buffer, dtype: frames.dtype as FloatDType };
}

/** Wraps the native device result: tokens [batch?, M, C] and sizes [batch * M] on the frames' device. */
export function clipDeviceResult(
  frames: DeviceTensor,
  res: NativeClipDeviceResult,
  p: { batch: number; batched: boolean; c: number; total: number },
) {
  const m = res.rows;
  return {
    tokens: new DeviceTensor(frames.dtype as FloatDType, p.batched ? [p.batch, m, p.c] : [m, p.c], res.x),
    sizes: new DeviceTensor('f32', [p.batch * m], res.sizes),
    assignment: res.assignment,
    clipLengths: res.clipLengths,
    source: new SourceMap(p.batch, p.total, m, res.assignment),
  };
}
