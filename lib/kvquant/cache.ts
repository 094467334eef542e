/**
 * QuantizedKVCache: one layer's KV cache stored as packed codes plus a full-precision
 * residual window; attention is computed from the packed codes without materializing K or V.
 */
import { crc32 } from 'node:zlib';

import { deviceId, resolveDevice, type DeviceString } from '../backend.js';
import { InferzipError, check, nativeCall } from '../errors.js';
import { CallQueue } from '../ops.js';
import { appendOp, attentionOp, dequantizeOp } from './ops.js';
import { native } from '../native.js';
import { openSafetensors, writeSafetensors, type SafetensorsWriteEntry } from '../safetensors/index.js';
import { tensor, type Tensor } from '../tensor.js';
import type { NativeKvCacheHandle, NativeKvStats } from './native.js';
import { resolveOptions, toNative, type KVCacheOptions, type ResolvedKVEviction, type ResolvedKVOptions } from './options.js';
import { f32, kvPair, queryShape } from './shapes.js';
import { checkFiniteResult, checkMagnitude, kvMaxAbs } from '../validate.js';

export interface AppendOptions {
  /** Queries of the appended tokens [batch?, qHeads, tokens, head_dim], used as probe queries for saliency (zipcache, vidkv). Keys stand in when absent. */
  queries?: Tensor;
  /** Caller saliency score per token [batch?, heads, tokens] (zipcache, vidkv); replaces the probe-query score. */
  scores?: Tensor;
}

export interface AttentionOptions {
  /** Logit scale (default 1/sqrt(head_dim)). */
  scale?: number;
  /** Query i of n sees cached tokens up to position tokens - n + i (default true). */
  causal?: boolean;
}

/** Memory of the cache, bytes. */
export interface KVCacheMemory extends NativeKvStats {
  /** Bits stored per quantized key element, scales and metadata included. */
  keyBits: number;
  /** Bits stored per quantized value element, scales and metadata included. */
  valueBits: number;
}

const FORMAT = 'inferzip-kvcache';
const VERSION = '2';

export function statsOf(handle: NativeKvCacheHandle, o: ResolvedKVOptions): KVCacheMemory {
  const s = handle.stats();
  const per = o.batch * o.heads * o.headDim;
  return {
    ...s,
    // per kept element: with eviction, part-empty blocks that a kept token holds alive count here
    keyBits: s.liveQuantizedKeys ? (8 * s.packedKeyBytes) / (s.liveQuantizedKeys * per) : 0,
    valueBits: s.liveQuantizedValues ? (8 * s.packedValueBytes) / (s.liveQuantizedValues * per) : 0,
  };
}

function reshapeOut(data: Float32Array, shape: readonly number[]): Tensor<'f32'> {
  return tensor('f32', shape, data);
}

/**
 * One layer's KV cache stored as packed codes (KIVI, VidKV, ZipCache, FP8) plus a
 * full-precision residual window; attention reads the codes directly.
 * @example
 * using cache = QuantizedKVCache.create({ scheme: 'kivi', bits: 2, heads: 8, headDim: 128 });
 * await cache.append(k, v);
 * const out = await cache.attention(q);
 */
export class QuantizedKVCache implements Disposable {
  readonly options: Readonly<ResolvedKVOptions>;
  #handle: NativeKvCacheHandle | undefined;
  readonly #queue = new CallQueue();

  protected constructor(options: ResolvedKVOptions, handle: NativeKvCacheHandle) {
    this.options = Object.freeze({ ...options });
    this.#handle = handle;
  }

  /**
   * Creates an empty cache.
   * @example const cache = QuantizedKVCache.create({ scheme: 'kivi', heads: 8, headDim: 128 });
   */
  static create(options: KVCacheOptions): QuantizedKVCache {
    const resolved = resolveOptions(options, 128);
    const handle = nativeCall(() => new (native().KvCacheHandle)(toNative(resolved)), 'QuantizedKVCache.create');
    return new QuantizedKVCache(resolved, handle);
  }

  /** @internal */
  get handle(): NativeKvCacheHandle {
    const h = this.#handle;
    if (!h) throw new InferzipError('DISPOSED', 'this QuantizedKVCache was disposed');
    return h;
  }

  get disposed(): boolean {
    return !this.#handle;
  }

  /** Where the cache's device mirror lives and its kernels run: 'cpu' or 'cuda:N'. */
  get device(): 'cpu' | `cuda:${number}` {
    return deviceId(this.options.device, this.options.deviceIndex).label;
  }

  #appendArgs(k: Tensor, v: Tensor, opts: AppendOptions) {
    const shape = kvPair(k, v, this.options);
    let queries: Float32Array | undefined;
    let qHeads = 0;
    let scores: Float32Array | undefined;
    if (opts.queries !== undefined) {
      const qs = queryShape(opts.queries, this.options, 'queries');
      check(qs.tokens === shape.tokens, `queries have ${qs.tokens} tokens but k and v have ${shape.tokens}`, 'SHAPE_MISMATCH');
      queries = f32(opts.queries);
      qHeads = qs.heads;
    }
    if (opts.scores !== undefined) {
      const sc = opts.scores;
      check(sc && typeof sc === 'object' && 'shape' in sc, 'scores must be a tensor [batch?, heads, tokens]');
      const want = [this.options.batch, this.options.heads, shape.tokens];
      const got = sc.shape.length === 2 ? [1, ...sc.shape] : [...sc.shape];
      check(
        got.length === 3 && got.every((d, i) => d === want[i]),
        `scores [${sc.shape.join(', ')}] must be [batch?, heads, tokens] = [${want.join(', ')}]`,
        'SHAPE_MISMATCH',
      );
      scores = f32(sc);
    }
    const kf = f32(k);
    const vf = f32(v);
    const max = kvMaxAbs(this.options.scheme);
    checkMagnitude(kf, 'k', max);
    checkMagnitude(vf, 'v', max);
    return { cache: this.handle, k: kf, v: vf, tokens: shape.tokens, queries, qHeads, scores };
  }

  /**
   * Appends tokens (prefill or one decode step), quantizing what leaves the residual window,
   * off the main thread. Appends and attention calls on one cache run in call order even
   * when they are not awaited.
   * @example await cache.append(k, v); // k, v: [batch?, heads, tokens, head_dim]
   */
  append(k: Tensor, v: Tensor, opts: AppendOptions = {}): Promise<void> {
    const args = this.#appendArgs(k, v, opts);
    return this.#queue.run(() => appendOp.run(args));
  }

  /** Synchronous {@link append} (throws BUSY while an async operation of this cache runs). */
  appendSync(k: Tensor, v: Tensor, opts: AppendOptions = {}): void {
    this.#queue.assertIdle('QuantizedKVCache.appendSync');
    appendOp.runSync(this.#appendArgs(k, v, opts));
  }

  #attentionArgs(q: Tensor, opts: AttentionOptions) {
    const qs = queryShape(q, this.options);
    check(qs.tokens >= 1, 'q needs at least one query token', 'SHAPE_MISMATCH');
    const scale = opts.scale ?? 1 / Math.sqrt(this.options.headDim);
    check(typeof scale === 'number' && Number.isFinite(scale), `scale must be a finite number, got ${String(scale)}`);
    const causal = opts.causal ?? true;
    check(typeof causal === 'boolean', 'causal must be a boolean');
    return { cache: this.handle, q: f32(q), qHeads: qs.heads, queries: qs.tokens, scale, causal };
  }

  /**
   * softmax(q.K^T * scale).V over every cached token, computed from the packed codes plus the
   * residual window. q is [batch?, qHeads, n, head_dim] with qHeads a multiple of the KV heads.
   */
  async attention(q: Tensor, opts: AttentionOptions = {}): Promise<Tensor<'f32'>> {
    const args = this.#attentionArgs(q, opts);
    const out = await this.#queue.run(() => attentionOp.run(args));
    checkFiniteResult(out, 'attention');
    return reshapeOut(out, q.shape);
  }

  /** Synchronous {@link attention} (throws BUSY while an async operation of this cache runs). */
  attentionSync(q: Tensor, opts: AttentionOptions = {}): Tensor<'f32'> {
    this.#queue.assertIdle('QuantizedKVCache.attentionSync');
    const out = attentionOp.runSync(this.#attentionArgs(q, opts));
    checkFiniteResult(out, 'attention');
    return reshapeOut(out, q.shape);
  }

  /** All cached K and V as f32 [batch, heads, tokens, head_dim] (the reference path; materializes everything). */
  async dequantize(): Promise<{ k: Tensor<'f32'>; v: Tensor<'f32'> }> {
    const { k, v } = await this.#queue.run(() => dequantizeOp.run(this.handle));
    const shape = [this.options.batch, this.options.heads, this.tokens, this.options.headDim];
    return { k: tensor('f32', shape, k), v: tensor('f32', shape, v) };
  }

  dequantizeSync(): { k: Tensor<'f32'>; v: Tensor<'f32'> } {
    this.#queue.assertIdle('QuantizedKVCache.dequantizeSync');
    const { k, v } = dequantizeOp.runSync(this.handle);
    const shape = [this.options.batch, this.options.heads, this.tokens, this.options.headDim];
    return { k: tensor('f32', shape, k), v: tensor('f32', shape, v) };
  }

  /** Tokens held (quantized + residual); with eviction, the tokens each KV head keeps. */
  get tokens(): number {
    return this.handle.stats().tokens;
  }

  /** The eviction state (budget B and recent window R as resolved at the prefill, P, d2o's density); null without eviction. */
  get eviction(): KVEvictionState | null {
    const e = this.options.eviction;
    if (!e) return null;
    const st = this.handle.evictState();
    return {
      ...e,
      prefill: st.prefill < 0 ? null : st.prefill,
      budgetTokens: st.prefill < 0 ? null : st.budget,
      recentTokens: st.prefill < 0 ? null : st.recent,
      allocated: st.allocated,
      density: st.prefill < 0 ? null : st.density,
    };
  }

  /** D2O's attention density of this layer: the mean over KV heads of the variance of the scores right after the prefill attention (null before it or without eviction). */
  get density(): number | null {
    return this.eviction?.density ?? null;
  }

  #kept(which: 'positions' | 'scores'): Tensor {
    this.#queue.assertIdle(`QuantizedKVCache.${which}`);
    const st = this.handle.evictState();
    const shape = [this.options.batch, this.options.heads, st.kept];
    return which === 'positions' ? tensor('i32', shape, st.positions) : tensor('f32', shape, st.scores);
  }

  /**
   * Absolute positions of the kept tokens, i32 [batch, heads, tokens], ascending (0..tokens-1 without eviction).
   * @example const pos = cache.positions(); // which prompt tokens each head still holds
   */
  positions(): Tensor<'i32'> {
    return this.#kept('positions') as Tensor<'i32'>;
  }

  /** Accumulated attention score of each kept token, f32 [batch, heads, tokens] (zeros without eviction). */
  scores(): Tensor<'f32'> {
    return this.#kept('scores') as Tensor<'f32'>;
  }

  /** Memory in use and the bits really stored per element. */
  get memory(): KVCacheMemory {
    return statsOf(this.handle, this.options);
  }

  /** Bytes in use: packed codes, scales, metadata, the residual window and the eviction bookkeeping. */
  get memoryBytes(): number {
    const s = this.handle.stats();
    return s.packedKeyBytes + s.packedValueBytes + s.residualBytes + s.evictionBytes;
  }

  /** Bytes per cached token (all heads, K and V), averaged over the tokens held. */
  get bytesPerToken(): number {
    const t = this.tokens;
    return t ? this.memoryBytes / t : 0;
  }

  /** Saves the cache (packed planes, residual window, options) as safetensors. */
  async save(path: string): Promise<void> {
    // after every append issued before this call
    const { entries, metadata } = await this.#queue.run(async () => serialize(this.handle, this.options));
    await writeSafetensors(path, entries, { metadata });
  }

  /**
   * Restores a cache written by save() onto `device` (default: the active backend). Every
   * section's crc32 is checked, then core cross-checks every size against the options and
   * token counts; damaged, edited or foreign files raise CORRUPT_DATA.
   * @example const cache = await QuantizedKVCache.load('layer0.kv.safetensors');
   */
  static async load(path: string, opts: { device?: DeviceString | 'auto' } = {}): Promise<QuantizedKVCache> {
    const device = resolveDevice(opts.device, 'QuantizedKVCache.load device');
    const reader = openSafetensors(path);
    try {
      const bad = (what: string, cause?: unknown): InferzipError => new InferzipError('CORRUPT_DATA', `'${path}': ${what}`, { cause });
      const meta = reader.metadata;
      if (meta.format !== FORMAT) throw bad(`not an inferzip KV cache (metadata format is '${String(meta.format)}')`);
      if (meta.version !== VERSION) throw bad(`KV cache format version '${String(meta.version)}'; this inferzip reads version ${VERSION}`);
      let saved: { options: ResolvedKVOptions; checksums: Record<string, string> };
      try {
        saved = JSON.parse(meta.cache ?? '') as typeof saved;
      } catch (err) {
        throw bad('KV cache metadata is not valid JSON', err);
      }
      if (!saved || typeof saved !== 'object' || !saved.checksums || typeof saved.checksums !== 'object')
        throw bad('KV cache metadata is incomplete');
      if (checksum(meta.cache!) !== meta.cacheChecksum) throw bad('KV cache metadata fails its crc32 (edited or damaged)');
      let options: ResolvedKVOptions;
      try {
        options = { ...resolveOptions({ ...saved.options, device: 'cpu' }, 128), device: device.kind, deviceIndex: device.index };
      } catch (err) {
        throw bad(`saved options are invalid: ${(err as Error).message}`, err);
      }
      const sections: Record<string, Uint8Array> = Object.create(null) as Record<string, Uint8Array>;
      for (const name of Object.keys(saved.checksums)) {
        const tensorName = `kv.${name}`;
        if (!reader.has(tensorName)) throw bad(`lacks section '${name}'`);
        const bytes = await reader.readBytes(tensorName);
        if (checksum(bytes) !== saved.checksums[name]) throw bad(`section '${name}' fails its crc32 (the file is damaged)`);
        sections[name] = bytes;
      }
      for (const t of reader.tensors) if (!(t.name.slice(3) in sections)) throw bad(`holds an unexpected tensor '${t.name}'`);
      const handle = nativeCall(() => new (native().KvCacheHandle)(toNative(options)), 'QuantizedKVCache.load');
      try {
        nativeCall(() => handle.deserialize(sections), `QuantizedKVCache.load('${path}')`);
      } catch (err) {
        handle.dispose();
        throw err;
      }
      return new QuantizedKVCache(options, handle);
    } finally {
      reader.close();
    }
  }

  /** Frees native memory now. Safe to call twice. */
  dispose(): void {
    const h = this.#handle;
    this.#handle = undefined;
    h?.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Where a cache's eviction stands (QuantizedKVCache.eviction). */
export interface KVEvictionState extends ResolvedKVEviction {
  /** P: tokens held at the first attention call (null before it). */
  prefill: number | null;
  /** B and R in tokens as resolved at the prefill, or as allocated by allocateD2OBudgets. */
  budgetTokens: number | null;
  recentTokens: number | null;
  /** d2o: whether the layer budget was taken (allocateD2OBudgets, or the first append after the prefill). */
  allocated: boolean;
  /** d2o's attention density (see QuantizedKVCache.density). */
  density: number | null;
}

/**
 * D2O's layer-level budgets: after every layer's prefill attention and before the first decode
 * append, gives each layer l a budget B_l = min(P, max(1, floor(L*B*w_l))) with w = softmax(-d')
 * of the min-max-normalized densities d (flatter attention gets more), R_l = floor(B_l*R/B), and
 * runs the eviction round each layer skipped at its prefill. Returns the budgets in tokens.
 * @example
 * for (const [l, c] of caches.entries()) await c.attention(prefillQueries[l]);
 * const budgets = allocateD2OBudgets(caches); // [{ budget: 41, recent: 20 }, ...]
 */
export function allocateD2OBudgets(caches: readonly QuantizedKVCache[]): { budget: number; recent: number }[] {
  check(Array.isArray(caches) && caches.length >= 1, 'allocateD2OBudgets needs an array of one QuantizedKVCache per layer');
  const states = caches.map((c, l) => {
    check(c instanceof QuantizedKVCache, `allocateD2OBudgets: caches[${l}] is not a QuantizedKVCache`);
    const e = c.eviction;
    check(e?.method === 'd2o', `allocateD2OBudgets: caches[${l}] has no d2o eviction (options.eviction.method must be 'd2o')`);
    check(
      e.prefill !== null && e.density !== null && e.budgetTokens !== null && e.recentTokens !== null,
      `allocateD2OBudgets: caches[${l}] has not run its prefill attention yet; call attention() on every layer first`,
    );
    check(!e.allocated, `allocateD2OBudgets: caches[${l}] already has its budget (allocate once, before the first decode append)`);
    return { p: e.prefill, d: e.density, b: e.budgetTokens, r: e.recentTokens };
  });
  const { p, b, r } = states[0]!;
  for (const [l, s] of states.entries())
    check(
      s.p === p && s.b === b && s.r === r,
      `allocateD2OBudgets: caches[${l}] has prefill ${s.p} and budget ${s.b} (recent ${s.r}) but caches[0] has ${p} and ${b} (${r}); every layer must see the same prompt and options`,
    );
  const L = states.length;
  let budgets: { budget: number; recent: number }[];
  if (b >= p) {
    budgets = states.map(() => ({ budget: b, recent: r }));
  } else {
    const lo = Math.min(...states.map((s) => s.d));
    const hi = Math.max(...states.map((s) => s.d));
    const e = states.map((s) => Math.exp(-(hi > lo ? (s.d - lo) / (hi - lo) : 0)));
    const z = e.reduce((a, x) => a + x, 0);
    budgets = e.map((x) => {
      const bl = Math.min(p, Math.max(1, Math.floor((L * b * x) / z + 1e-9)));
      return { budget: bl, recent: Math.floor((bl * r) / b) };
    });
  }
  caches.forEach((c, l) => {
    nativeCall(() => c.handle.evictAllocate(budgets[l]!), `allocateD2OBudgets (caches[${l}])`);
  });
  return budgets;
}

/** crc32 as 8 hex digits. */
function checksum(data: Uint8Array | string): string {
  return crc32(data).toString(16).padStart(8, '0');
}

/**
 * The saved form: core's named sections as U8 tensors `kv.<section>`, and in metadata the
 * resolved options with one crc32 per section, and a crc32 of that metadata string.
 */
function serialize(
  handle: NativeKvCacheHandle,
  options: ResolvedKVOptions,
): { entries: SafetensorsWriteEntry[]; metadata: Record<string, string> } {
  const sections = handle.serialize();
  const entries: SafetensorsWriteEntry[] = [];
  const checksums: Record<string, string> = {};
  for (const [name, data] of Object.entries(sections)) {
    entries.push({ name: `kv.${name}`, dtype: 'u8', shape: [data.byteLength], data });
    checksums[name] = checksum(data);
  }
  const cache = JSON.stringify({ options, checksums });
  return { entries, metadata: { format: FORMAT, version: VERSION, cache, cacheChecksum: checksum(cache) } };
}
