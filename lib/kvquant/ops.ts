/** The KV-cache operations as one definition each (lib/ops.ts), shared by the cache classes. */
import { native } from '../native.js';
import { defineOp } from '../ops.js';
import type { NativeKvAppendArgs, NativeKvAttentionArgs, NativeKvCacheHandle } from './native.js';
import './native.js';

export const appendOp = defineOp({
  name: 'kv append',
  prepare: (args: NativeKvAppendArgs) => args,
  sync: (a) => native().kvAppend(a),
  async: (a) => native().kvAppendAsync(a),
  finish: () => undefined,
});

export const attentionOp = defineOp({
  name: 'kv attention',
  prepare: (args: NativeKvAttentionArgs) => args,
  sync: (a) => native().kvAttention(a),
  async: (a) => native().kvAttentionAsync(a),
  finish: (out: Float32Array) => out,
});

export const dequantizeOp = defineOp({
  name: 'kv dequantize',
  prepare: (cache: NativeKvCacheHandle) => ({ cache }),
  sync: (a) => native().kvDequantize(a),
  async: (a) => native().kvDequantizeAsync(a),
  finish: (kv: { k: Float32Array; v: Float32Array }) => kv,
});
