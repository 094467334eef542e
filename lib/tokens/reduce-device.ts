/**
 * The DeviceTensor side of TopV (pruneByTransport) and Zero-TPrune (pruneByAttentionGraph):
 * checks of device tensors, the native device options, and the result whose kept rows stay
 * on the inputs' device. A 'cpu' DeviceTensor runs the CPU backend, 'cuda:N' the CUDA
 * kernels on that GPU (cuda/tokens/transport.cu, graph.cu); the kept indices and scores
 * come back to the host. The option checks shared with host tensors stay in reduce.ts.
 * @internal
 */
import { DeviceTensor } from '../device-tensor.js';
import { InferzipError, check } from '../errors.js';
import type { DType } from '../tensor.js';
import type { NativeDeviceScoredSelection, NativeGraphDeviceOptions, NativeTransportDeviceOptions } from './native.js';
import { FLOAT_DTYPES, type FloatDType } from '../validate.js';

/** A [batch?, rows, C] float DeviceTensor and its dims. */
export interface DeviceRows {
  t: DeviceTensor;
  batch: number;
  batched: boolean;
  n: number;
  c: number;
}

/** Checks a float DeviceTensor of one of the given ranks (DISPOSED, DTYPE_MISMATCH, SHAPE_MISMATCH). */
export function deviceFloat(value: DeviceTensor, name: string, ranks: readonly number[]): DeviceTensor {
  if (value.disposed) throw new InferzipError('DISPOSED', `${name} is a disposed DeviceTensor`);
  check(FLOAT_DTYPES.includes(value.dtype as FloatDType), `${name} must be f32, f16 or bf16, got ${value.dtype}`, 'DTYPE_MISMATCH');
  check(
    ranks.includes(value.shape.length),
    `${name} must have ${ranks.join(' or ')} dimensions, got shape [${value.shape.join(', ')}]`,
    'SHAPE_MISMATCH',
  );
  return value;
}

/** [batch?, rows, C] float DeviceTensor -> its dims. */
export function deviceRows3(value: DeviceTensor, name: string): DeviceRows {
  const t = deviceFloat(value, name, [2, 3]);
  const batched = t.shape.length === 3;
  const batch = batched ? t.shape[0]! : 1;
  const n = t.shape[batched ? 1 : 0]!;
  const c = t.shape[batched ? 2 : 1]!;
  check(batch > 0 && n > 0 && c > 0, `${name} is empty (shape [${t.shape.join(', ')}]); pass at least one token`, 'SHAPE_MISMATCH');
  return { t, batch, batched, n, c };
}

/** INVALID_ARGUMENT unless `other` is on the same side (host or device) as the main input. */
export function sameSide(main: string, mainIsDevice: boolean, name: string, other: unknown): void {
  if (other === undefined || other instanceof DeviceTensor === mainIsDevice) return;
  throw new InferzipError(
    'INVALID_ARGUMENT',
    mainIsDevice
      ? `${main} is a DeviceTensor, so ${name} must be one too (DeviceTensor.from(${name}, { device: ... }))`
      : `${main} is a host tensor but ${name} is a DeviceTensor: pass both on the same side (download() or DeviceTensor.from)`,
  );
}

type DeviceTensorFields<K extends string> = { [P in K]: DeviceTensor['buffer'] } & { [P in `${K}Dtype`]: string };

function fields<K extends string>(key: K, t: DeviceTensor): DeviceTensorFields<K> {
  return { [key]: t.buffer, [`${key}Dtype`]: t.dtype } as DeviceTensorFields<K>;
}

/** The native TopV device options: the checked numeric options plus the buffers. */
export function transportDeviceOptions(
  params: Omit<NativeTransportDeviceOptions, 'visual' | 'visualDtype' | 'target' | 'targetDtype' | 'text' | 'textDtype'>,
  visual: DeviceTensor,
  target: DeviceTensor | undefined,
  text: DeviceTensor | undefined,
): NativeTransportDeviceOptions {
  return {
    ...params,
    ...fields('visual', visual),
    ...(target ? fields('target', target) : {}),
    ...(text ? fields('text', text) : {}),
  };
}

/** The native Zero-TPrune device options. */
export function graphDeviceOptions(
  params: Omit<NativeGraphDeviceOptions, 'tokens' | 'tokensDtype' | 'attention' | 'attentionDtype'>,
  tokens: DeviceTensor,
  attention: DeviceTensor,
): NativeGraphDeviceOptions {
  return { ...params, ...fields('tokens', tokens), ...fields('attention', attention) };
}

/** The selection with the kept rows as a DeviceTensor [batch?, K, C] on the input's device. */
export function deviceScoredResult<D extends DType>(
  input: DeviceTensor<D>,
  v: { batch: number; c: number; batched: boolean },
  k: number,
  res: NativeDeviceScoredSelection,
): { tokens: DeviceTensor<D>; kept: Int32Array; dropped: Int32Array; scores: Float32Array } {
  const tokens = new DeviceTensor(input.dtype, v.batched ? [v.batch, k, v.c] : [k, v.c], res.tokens);
  return { tokens, kept: res.kept, dropped: res.dropped, scores: res.scores };
}
