/** Options of KV-cache quantization: types, defaults from the spec, validation. */
import { resolveDevice, type DeviceId, type DeviceKind, type DeviceString } from '../backend.js';
import { InferzipError, check } from '../errors.js';
import { checkInt, checkNumber } from '../validate.js';
import type { NativeKvOptions } from './native.js';

/**
 * - `kivi`: 2/4-bit asymmetric; keys per channel in groups of G tokens, values per token in groups of channels.
 * - `vidkv`: keys: top-range channels 2-bit per channel, the rest 1-bit signs of their real spectrum;
 *   values: 1.58-bit ternary per channel, salient tokens 2-bit.
 * - `zipcache`: per-token 2 or 4 bits by normalized attention score (least salient 40% at 2 bits).
 * - `fp8`: E4M3 / E5M2 with a per-head scale (amax / max_finite) per block of G tokens.
 */
export type KVScheme = 'kivi' | 'vidkv' | 'zipcache' | 'fp8';
/**
 * The KV-cache quantization schemes, in the order the docs list them.
 * @example
 * for (const scheme of KV_SCHEMES) QuantizedKVCache.create({ scheme, heads: 8, headDim: 128 }).dispose();
 */
export const KV_SCHEMES: readonly KVScheme[] = ['kivi', 'vidkv', 'zipcache', 'fp8'];

export interface KVQuantOptions {
  /** Quantization scheme (default 'kivi'). */
  scheme?: KVScheme;
  /** Code bits: kivi 2 (default) or 4; vidkv 2; zipcache 4 (salient tokens; the rest use 2); fp8 8. */
  bits?: number;
  /** fp8 only: 'e4m3' (default, max 448) or 'e5m2' (max 57344). */
  fp8Format?: 'e4m3' | 'e5m2';
  /** G: tokens per key group / per scale block (default 32). */
  groupSize?: number;
  /** Channels per per-token group (values of kivi, zipcache, salient vidkv values). Default min(groupSize, headDim). */
  channelGroupSize?: number;
  /** vidkv: fraction of key channels (by range) kept at 2 bits (default 0.5, "1.5-bit keys"). */
  anomalousFraction?: number;
  /** vidkv: fraction of tokens whose values stay 2-bit (default 0.2). */
  salientFraction?: number;
  /** zipcache: fraction of least salient tokens stored at 2 bits (default 0.4). */
  lowFraction?: number;
  /** zipcache / vidkv: probe queries = the last `probeFraction` of tokens + as many random earlier ones (default 0.05). */
  probeFraction?: number;
  /** Seed of the random probe queries (default 0). */
  seed?: number;
  /** Backend for attention and dequantization: 'cpu', 'cuda' (the current CUDA device), 'cuda:N' or 'auto' (the active backend, default). */
  device?: DeviceString | 'auto';
}

/**
 * KV eviction (H2O arXiv 2306.14048, D2O arXiv 2406.13035) on a QuantizedKVCache. Every
 * attention call adds the probabilities it computes to each attended token's score; at its end
 * the cache keeps, per KV head, the `recent` newest tokens plus the heaviest hitters (largest
 * accumulated score) up to `budget` and frees the rest. D2O merges each evicted token into its
 * most similar kept token (key cosine >= an EMA threshold; weights exp(similarity), e for the
 * kept token) and, with {@link allocateD2OBudgets}, gives flatter-attention layers more budget.
 */
export interface KVEvictionOptions {
  /** 'h2o' (heavy hitters + recent window) or 'd2o' (h2o + layer budgets + merging evicted tokens). */
  method: 'h2o' | 'd2o';
  /** B: a fraction in (0, 1) of the prefill length P (tokens held at the first attention call), or a whole token count >= 1. */
  budget: number;
  /** R: a fraction in (0, 1) of B, or a whole token count >= 0 (at most an integer budget). Default 0.5 (the papers' even split). */
  recent?: number;
  /** 'head' (default: each KV head keeps its own set) or 'layer' (one set per batch row, ranked by the scores summed over heads). */
  granularity?: 'head' | 'layer';
  /** d2o: EMA weight beta of the merge threshold, tau = beta*mean + (1-beta)*tau (default 0.5). */
  emaBeta?: number;
}

/** Eviction options with every default filled in. */
export type ResolvedKVEviction = Required<KVEvictionOptions>;

/** Options of a QuantizedKVCache. */
export interface KVCacheOptions extends KVQuantOptions {
  /** H2O / D2O eviction (default: none, every token is kept). Scores accumulate in the CPU and CUDA attention; the eviction round runs on the host planes. */
  eviction?: KVEvictionOptions;
  /** KV heads. */
  heads: number;
  /** Channels per head (a multiple of 8, at most 256). */
  headDim: number;
  /** Batch size (default 1). */
  batch?: number;
  /**
   * R: newest tokens kept in full precision (default 128, a multiple of groupSize). Keys flush a whole
   * block of R tokens at a time; kivi values quantize the oldest token once more than R are held.
   */
  residualLength?: number;
}

/** Every option filled in and checked: what the native cache receives (fp8Format as a name here). */
export interface ResolvedKVOptions extends Omit<
  NativeKvOptions,
  'scheme' | 'fp8Format' | 'device' | 'deviceIndex' | 'evictMethod' | 'evictBudget' | 'evictRecent' | 'evictGranularity' | 'evictBeta'
> {
  scheme: KVScheme;
  fp8Format: 'e4m3' | 'e5m2';
  device: DeviceKind;
  /** The CUDA device (0 for the CPU). */
  deviceIndex: number;
  /** null: no eviction. */
  eviction: ResolvedKVEviction | null;
}

const isFraction = (x: number): boolean => x > 0 && x < 1;

/**
 * Fills the eviction defaults and validates (INVALID_ARGUMENT naming the option, the value
 * given and what is allowed).
 */
export function resolveEviction(e: unknown, scheme: KVScheme): ResolvedKVEviction | null {
  if (e === undefined || e === null) return null;
  const where = 'QuantizedKVCache options.eviction';
  check(typeof e === 'object' && !Array.isArray(e), `${where} must be an object like { method: 'h2o', budget: 0.2 }, got ${String(e)}`);
  const o = e as Record<string, unknown>;
  for (const key of Object.keys(o))
    check(
      ['method', 'budget', 'recent', 'granularity', 'emaBeta'].includes(key),
      `${where} has an unknown key '${key}'; use method, budget, recent, granularity or emaBeta`,
    );
  const method = o.method;
  check(method === 'h2o' || method === 'd2o', `${where}.method must be 'h2o' or 'd2o', got ${JSON.stringify(method) ?? 'undefined'}`);
  const budget = o.budget;
  check(
    typeof budget === 'number' && Number.isFinite(budget) && budget > 0 && (isFraction(budget) || Number.isInteger(budget)),
    `${where}.budget must be a fraction in (0, 1) of the prefill length or a whole token count >= 1, got ${String(budget)}; e.g. budget: 0.2 keeps 20% of the prompt`,
  );
  const recent = o.recent ?? 0.5;
  check(
    typeof recent === 'number' && Number.isFinite(recent) && recent >= 0 && (isFraction(recent) || Number.isInteger(recent)),
    `${where}.recent must be a fraction in (0, 1) of the budget or a whole token count >= 0, got ${String(recent)}`,
  );
  check(
    isFraction(budget) || isFraction(recent) || recent <= budget,
    `${where}.recent (${recent} tokens) exceeds budget (${budget} tokens): the recent window is part of the budget; lower recent or raise budget`,
  );
  const granularity = o.granularity ?? 'head';
  check(
    granularity === 'head' || granularity === 'layer',
    `${where}.granularity must be 'head' or 'layer', got ${JSON.stringify(granularity) ?? 'undefined'}`,
  );
  const emaBeta = o.emaBeta ?? 0.5;
  check(
    typeof emaBeta === 'number' && Number.isFinite(emaBeta) && emaBeta >= 0 && emaBeta <= 1,
    `${where}.emaBeta must be a number in [0, 1], got ${String(emaBeta)}`,
  );
  if (method === 'd2o' && scheme === 'vidkv')
    throw new InferzipError(
      'UNSUPPORTED',
      `${where}: d2o re-encodes the kept tokens it merges into, which vidkv's spectrum-coded key blocks do not allow; use method 'h2o' with vidkv, or another scheme`,
    );
  return { method, budget, recent, granularity, emaBeta };
}

const DEFAULT_BITS: Record<KVScheme, number> = { kivi: 2, vidkv: 2, zipcache: 4, fp8: 8 };
const ALLOWED_BITS: Record<KVScheme, readonly number[]> = { kivi: [2, 4], vidkv: [2], zipcache: [4], fp8: [8] };

const int = (name: string, v: number, lo: number, hi: number): number => checkInt(v, name, lo, hi);
const frac = (name: string, v: number, lo = 0, hi = 1, openLow = false): number => checkNumber(v, name, lo, hi, { openMin: openLow });

/** Fills defaults and validates (INVALID_ARGUMENT with the option's name). */
export function resolveOptions(
  o: KVQuantOptions & { batch?: number; heads: number; headDim: number; residualLength?: number; eviction?: KVEvictionOptions | null },
  residualDefault: number,
): ResolvedKVOptions {
  check(o && typeof o === 'object', 'options must be an object');
  const scheme = o.scheme ?? 'kivi';
  check(KV_SCHEMES.includes(scheme), `scheme must be one of ${KV_SCHEMES.join(', ')}, got '${String(scheme)}'`);
  const headDim = int('headDim', o.headDim, 8, 256);
  check(headDim % 8 === 0, `headDim must be a multiple of 8, got ${headDim}`);
  const heads = int('heads', o.heads, 1, 4096);
  const batch = int('batch', o.batch ?? 1, 1, 1 << 20);
  const bits = o.bits ?? DEFAULT_BITS[scheme];
  check(ALLOWED_BITS[scheme].includes(bits), `${scheme} supports bits ${ALLOWED_BITS[scheme].join(' or ')}, got ${String(bits)}`);
  const fp8Format = o.fp8Format ?? 'e4m3';
  check(fp8Format === 'e4m3' || fp8Format === 'e5m2', `fp8Format must be 'e4m3' or 'e5m2', got '${String(fp8Format)}'`);
  const groupSize = int('groupSize', o.groupSize ?? 32, 1, 4096);
  const channelGroupSize = int('channelGroupSize', o.channelGroupSize ?? Math.min(groupSize, headDim), 1, headDim);
  check(headDim % channelGroupSize === 0, `channelGroupSize ${channelGroupSize} does not divide headDim ${headDim}`);
  check(channelGroupSize % 2 === 0 || scheme === 'fp8', `channelGroupSize must be even, got ${channelGroupSize}`);
  const residualLength = int('residualLength', o.residualLength ?? residualDefault, 0, 1 << 20);
  check(residualLength % groupSize === 0, `residualLength ${residualLength} must be a multiple of groupSize ${groupSize}`);
  return {
    scheme,
    bits,
    fp8Format,
    groupSize,
    channelGroupSize,
    residualLength,
    anomalousFraction: frac('anomalousFraction', o.anomalousFraction ?? 0.5),
    salientFraction: frac('salientFraction', o.salientFraction ?? 0.2),
    lowFraction: frac('lowFraction', o.lowFraction ?? 0.4),
    probeFraction: frac('probeFraction', o.probeFraction ?? 0.05, 0, 0.5, true),
    seed: int('seed', o.seed ?? 0, 0, 0x7fffffff),
    ...deviceFields(resolveDevice(o.device, 'KV cache device')),
    batch,
    heads,
    headDim,
    eviction: resolveEviction(o.eviction, scheme),
  };
}

function deviceFields(d: DeviceId): { device: DeviceKind; deviceIndex: number } {
  return { device: d.kind, deviceIndex: d.index };
}

export function toNative(o: ResolvedKVOptions): NativeKvOptions {
  const { eviction, ...rest } = o;
  return {
    ...rest,
    fp8Format: o.fp8Format === 'e4m3' ? 0 : 1,
    evictMethod: eviction?.method ?? 'none',
    evictBudget: eviction?.budget ?? 0,
    evictRecent: eviction?.recent ?? 0.5,
    evictGranularity: eviction?.granularity === 'layer' ? 1 : 0,
    evictBeta: eviction?.emaBeta ?? 0.5,
  };
}
