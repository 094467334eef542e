// Transferring (detaching) an input's or output's ArrayBuffer while an async call runs used
// to free memory that a worker thread was still reading or writing (SIGSEGV). Async calls
// now pin what they hand to native code (lib/ops.ts pinForAsync): the transfer copies
// (Node 20) or throws DataCloneError (Node >= 21), the call completes correctly, and the
// caller's buffer stays attached.
import { describe, expect, it } from 'vitest';

import {
  DeviceTensor,
  QuantizedKVCache,
  compress,
  compressSync,
  decompress,
  denseAttention,
  denseAttentionSync,
  f32ToBf16,
  mergeByAttention,
  mergeByAttentionSync,
  mergeTemporal,
  mergeTemporalSync,
  mergeTokens,
  mergeTokensSync,
  pruneByAttention,
  pruneByAttentionSync,
  tensor,
  type Tensor,
} from '../../lib/index.js';
import { rng } from '../tokens/random.js';

/** Tries to detach `view`'s buffer the way a hostile caller would; returns what happened. */
function tryTransfer(view: ArrayBufferView): 'copied' | 'refused' {
  try {
    const clone = structuredClone(view, { transfer: [view.buffer as ArrayBuffer] });
    expect(clone.byteLength).toBe(view.byteLength);
    return 'copied';
  } catch (err) {
    expect((err as Error).name).toBe('DataCloneError');
    return 'refused';
  }
}

function random(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
}

const f32 = (shape: number[], seed: number): Tensor<'f32'> =>
  tensor(
    'f32',
    shape,
    random(
      shape.reduce((a, b) => a * b, 1),
      seed,
    ),
  );

describe('async calls pin the buffers they use', () => {
  it('mergeTokens: detaching x mid-call neither crashes nor changes the result', async () => {
    const x = f32([2, 512, 64], 1);
    const want = mergeTokensSync(x, { r: 128 });
    const pending = mergeTokens(x, { r: 128 });
    tryTransfer(x.data);
    const got = await pending;
    expect(x.data.byteLength).toBe(2 * 512 * 64 * 4);
    expect(got.tokens.data).toEqual(want.tokens.data);
  });

  it('compress and decompress into out: inputs and outputs stay attached', async () => {
    const w = tensor('bf16', [256, 256], f32ToBf16(random(256 * 256, 2).map((v) => v * 0.02)));
    const pendingUnit = compress({ w });
    tryTransfer(w.data);
    const unit = await pendingUnit;
    expect(unit).toEqual(compressSync({ w }));
    const out = new Uint16Array(unit.totalElements);
    const pending = decompress(unit, { out });
    tryTransfer(out);
    tryTransfer(unit.buffers.encodedExponent);
    await pending;
    expect(out.byteLength).toBe(unit.totalElements * 2);
    expect(out).toEqual(w.data);
  });

  it('QuantizedKVCache.append and attention', async () => {
    const heads = 4;
    const headDim = 32;
    const k = f32([heads, 256, headDim], 3);
    const v = f32([heads, 256, headDim], 4);
    const q = f32([heads, 1, headDim], 5);
    const ref = QuantizedKVCache.create({ scheme: 'kivi', bits: 2, heads, headDim });
    ref.appendSync(k, v);
    const want = ref.attentionSync(q);
    const cache = QuantizedKVCache.create({ scheme: 'kivi', bits: 2, heads, headDim });
    const appended = cache.append(k, v);
    tryTransfer(k.data);
    tryTransfer(v.data);
    await appended;
    const pending = cache.attention(q);
    tryTransfer(q.data);
    expect((await pending).data).toEqual(want.data);
    ref.dispose();
    cache.dispose();
  });

  it('DeviceTensor.from, upload and download', async () => {
    const src = f32([1024], 6);
    const pendingFrom = DeviceTensor.from(src, { device: 'cpu' });
    tryTransfer(src.data);
    const d = await pendingFrom;
    const up = f32([1024], 7);
    const pendingUp = d.upload(up);
    tryTransfer(up.data);
    await pendingUp;
    expect(d.downloadSync().data).toEqual(up.data);
    d.dispose();
  });

  it('token pruning, temporal merging and dense attention', async () => {
    const tokens = f32([300, 32], 8);
    const attention = new Float32Array(random(300, 9).map(Math.abs));
    const prune = pruneByAttention(tokens, attention, { ratio: 0.5 });
    const merge = mergeByAttention(tokens, attention, { ratio: 0.5 });
    tryTransfer(tokens.data);
    tryTransfer(attention);
    expect((await prune).kept).toEqual(pruneByAttentionSync(tokens, attention, { ratio: 0.5 }).kept);
    expect((await merge).tokens.data).toEqual(mergeByAttentionSync(tokens, attention, { ratio: 0.5 }).tokens.data);

    const frames = f32([8, 64, 16], 10);
    const temporal = mergeTemporal(frames, { method: 'holitom' });
    tryTransfer(frames.data);
    expect((await temporal).tokens.data).toEqual(mergeTemporalSync(frames, { method: 'holitom' }).tokens.data);

    const [q, k, v] = [f32([2, 4, 16], 11), f32([2, 64, 16], 12), f32([2, 64, 16], 13)];
    const dense = denseAttention(q, k, v);
    for (const t of [q, k, v]) tryTransfer(t.data);
    expect((await dense).data).toEqual(denseAttentionSync(q, k, v).data);
  });
});

// ArrayBuffer.prototype.transfer() (Node >= 22) ignores the untransferable mark: it moves the
// memory out from under the call. The call must then reject instead of returning what it
// computed from (or wrote into) memory that another ArrayBuffer now owns. On Node 20 (no
// transfer()) these tests are skipped; CI runs this file on Node 22 too.
const hasTransfer = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function';
if (!hasTransfer) console.warn('[detach.test] ArrayBuffer.prototype.transfer() cases skipped: not in this Node version');

function moveOut(view: ArrayBufferView): ArrayBuffer {
  return (view.buffer as ArrayBuffer & { transfer(): ArrayBuffer }).transfer();
}

describe.runIf(hasTransfer)('ArrayBuffer.prototype.transfer() during an async call', () => {
  const rejectsDetached = async (pending: Promise<unknown>): Promise<void> => {
    await expect(pending).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/was detached while it ran/) });
  };

  it('mergeTokens, compress and the token passes reject; nothing is returned from moved memory', async () => {
    const x = f32([2, 512, 64], 21);
    const merging = mergeTokens(x, { r: 128 });
    new Float32Array(moveOut(x.data)).fill(7);
    await rejectsDetached(merging);

    const w = tensor('bf16', [128, 128], f32ToBf16(random(128 * 128, 22).map((v) => v * 0.02)));
    const compressing = compress({ w });
    moveOut(w.data);
    await rejectsDetached(compressing);

    const tokens = f32([300, 32], 23);
    const pruning = pruneByAttention(tokens, new Float32Array(300).fill(1), { ratio: 0.5 });
    moveOut(tokens.data);
    await rejectsDetached(pruning);
  });

  it('decompress into out and DeviceTensor.upload reject', async () => {
    const w = tensor('bf16', [128, 128], f32ToBf16(random(128 * 128, 24).map((v) => v * 0.02)));
    const unit = compressSync({ w });
    const out = new Uint16Array(unit.totalElements);
    const decoding = decompress(unit, { out });
    moveOut(out);
    await rejectsDetached(decoding);

    const d = DeviceTensor.fromSync(f32([1024], 25), { device: 'cpu' });
    const up = f32([1024], 26);
    const uploading = d.upload(up);
    moveOut(up.data);
    await rejectsDetached(uploading);
    d.dispose();
  });
});
