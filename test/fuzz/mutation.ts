/**
 * A JS-level mutation fuzzer: damages a compressed model (the bundled stories260K, compressed
 * into a temp dir) and saved KV caches in random and targeted ways, then runs every public entry
 * point on each damaged file. The bar for each case: a typed InferzipError, or output identical to
 * the original. Anything else (a different result without an error, a plain Error) is a silent
 * difference. Used by test/fuzz/mutation.test.ts (a fixed number of cases) and
 * scripts/mutation-fuzz.ts (time-bounded, from .ci/run).
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inflateRawSync } from 'node:zlib';

import { InferzipError } from '../../lib/errors.js';
import { QuantizedKVCache, type KVScheme } from '../../lib/kvquant/index.js';
import { CompressedModel, compressModel, decompressModel, verifyModel } from '../../lib/model/index.js';
import { MANIFEST_KEY, manifestMetadata, type Manifest } from '../../lib/model/manifest.js';
import { tensor, type Tensor } from '../../lib/tensor.js';

const MODEL = resolve(import.meta.dirname, '..', '..', 'fixtures', 'stories260K', 'model.safetensors');

export interface FuzzCounts {
  cases: number;
  /** Entry-point runs (several per case). */
  checks: number;
  typedErrors: number;
  identical: number;
  silentDifferences: number;
  /** One line per silent difference (capped). */
  failures: string[];
  byMutation: Record<string, number>;
}

/** Seeded xorshift32: reproducible cases from a seed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const bytesOf = (t: { data: ArrayBufferView }): Uint8Array => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);

interface Layout {
  headerEnd: number;
  tensors: { name: string; begin: number; end: number }[];
}

function layoutOf(file: Uint8Array): Layout {
  const len = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(Buffer.from(file.subarray(8, 8 + len)).toString('utf8')) as Record<string, { data_offsets?: [number, number] }>;
  const tensors = Object.entries(header)
    .filter(([k]) => k !== '__metadata__')
    .map(([name, e]) => ({ name, begin: 8 + len + e.data_offsets![0], end: 8 + len + e.data_offsets![1] }))
    .filter((t) => t.end > t.begin);
  return { headerEnd: 8 + len, tensors };
}

/** Rebuilds a safetensors file with its header JSON edited (data section unchanged). */
function withHeader(file: Uint8Array, edit: (h: Record<string, unknown>) => void): Uint8Array {
  const len = Number(new DataView(file.buffer, file.byteOffset).getBigUint64(0, true));
  const h = JSON.parse(Buffer.from(file.subarray(8, 8 + len)).toString('utf8')) as Record<string, unknown>;
  edit(h);
  let text = JSON.stringify(h);
  while (text.length % 8 !== 0) text += ' ';
  const head = Buffer.from(text, 'utf8');
  const out = new Uint8Array(8 + head.length + file.length - 8 - len);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  out.set(file.subarray(8 + len), 8 + head.length);
  return out;
}

/** A random edit of one leaf of a JSON value (numbers nudged, strings changed, entries dropped or swapped). */
function editJson(value: unknown, r: () => number): void {
  const paths: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [];
  const walk = (v: unknown, depth: number): void => {
    if (depth > 6 || !v || typeof v !== 'object') return;
    const entries = Array.isArray(v) ? v.map((x, i) => [i, x] as const) : Object.entries(v);
    for (const [k, x] of entries.slice(0, 64)) {
      paths.push({ parent: v as Record<string, unknown>, key: k });
      walk(x, depth + 1);
    }
  };
  walk(value, 0);
  if (paths.length === 0) return;
  const { parent, key } = paths[Math.floor(r() * paths.length)]!;
  const p = parent as Record<string | number, unknown>;
  const old = p[key];
  const choice = r();
  if (typeof old === 'number') p[key] = choice < 0.3 ? old + 1 : choice < 0.6 ? old - 1 : choice < 0.8 ? old * 2 : -old;
  else if (typeof old === 'string')
    p[key] = choice < 0.5 ? `${old}x` : old.length > 1 ? old.slice(0, -1) + String.fromCharCode(old.charCodeAt(old.length - 1) ^ 1) : '';
  else if (Array.isArray(parent) && parent.length > 1 && choice < 0.5) {
    const j = Math.floor(r() * parent.length);
    [parent[key as number], parent[j]] = [parent[j], parent[key as number]];
  } else if (Array.isArray(parent)) parent.splice(key as number, 1);
  else delete p[key];
}

function editManifest(file: Uint8Array, r: () => number): Uint8Array {
  return withHeader(file, (h) => {
    const meta = h.__metadata__ as Record<string, string>;
    const m = JSON.parse(inflateRawSync(Buffer.from(meta[MANIFEST_KEY]!, 'base64')).toString('utf8')) as unknown;
    editJson(m, r);
    // re-packed with a matching crc32, so the edit reaches the manifest's own cross-checks
    Object.assign(meta, manifestMetadata(m as Manifest));
  });
}

type Mutation = (file: Uint8Array, r: () => number, layout: Layout) => Uint8Array;

const pick = <T>(xs: readonly T[], r: () => number): T => xs[Math.floor(r() * xs.length)]!;

/** The damage kinds, by name. Targeted ones aim at the header, the manifest or one tensor's data. */
export const MUTATIONS: Record<string, Mutation> = {
  bitFlips: (f, r) => {
    const out = f.slice();
    const n = 1 + Math.floor(r() * 4);
    for (let i = 0; i < n; i++) out[Math.floor(r() * out.length)]! ^= 1 << Math.floor(r() * 8);
    return out;
  },
  tensorByte: (f, r, l) => {
    const out = f.slice();
    const t = pick(l.tensors, r);
    out[t.begin + Math.floor(r() * (t.end - t.begin))]! ^= 1 + Math.floor(r() * 255);
    return out;
  },
  headerByte: (f, r, l) => {
    const out = f.slice();
    out[8 + Math.floor(r() * (l.headerEnd - 8))] = Math.floor(r() * 256);
    return out;
  },
  lengthField: (f, r) => {
    const out = f.slice();
    out[Math.floor(r() * 8)]! ^= 1 << Math.floor(r() * 8);
    return out;
  },
  truncate: (f, r) => f.slice(0, Math.floor(r() * f.length)),
  extend: (f, r) => {
    const out = new Uint8Array(f.length + 1 + Math.floor(r() * 64));
    out.set(f);
    return out;
  },
  headerEntry: (f, r) =>
    withHeader(f, (h) => {
      const names = Object.keys(h).filter((k) => k !== '__metadata__');
      const e = h[pick(names, r)] as { dtype: string; shape: number[]; data_offsets: number[] };
      const c = r();
      if (c < 0.3) e.shape = [...e.shape].reverse().concat(c < 0.15 ? [1] : []);
      else if (c < 0.5) e.dtype = pick(['U8', 'I64', 'F32', 'BF16', 'F16'], r);
      else if (c < 0.75) e.data_offsets = [e.data_offsets[0]! + 2, e.data_offsets[1]! + 2];
      else {
        const other = h[pick(names, r)] as typeof e;
        [e.data_offsets, other.data_offsets] = [other.data_offsets, e.data_offsets];
      }
    }),
  renameTensor: (f, r) =>
    withHeader(f, (h) => {
      const names = Object.keys(h).filter((k) => k !== '__metadata__');
      const a = pick(names, r);
      const b = pick(names, r);
      if (a === b) return;
      [h[a], h[b]] = [h[b], h[a]];
    }),
  metadataEdit: (f, r) =>
    withHeader(f, (h) => {
      const meta = h.__metadata__ as Record<string, string> | undefined;
      if (!meta) return;
      const keys = Object.keys(meta);
      const k = pick(keys, r);
      const c = r();
      if (c < 0.3) delete meta[k];
      else if (c < 0.6) meta[k] = meta[k]!.slice(0, Math.floor(r() * meta[k]!.length));
      else {
        const s = meta[k]!;
        const i = Math.floor(r() * s.length);
        meta[k] = s.slice(0, i) + String.fromCharCode(s.charCodeAt(i) ^ (1 + Math.floor(r() * 30))) + s.slice(i + 1);
      }
    }),
};

/** Manifest edits apply to compressed models only. */
const MODEL_MUTATIONS: Record<string, Mutation> = { ...MUTATIONS, manifestField: (f, r) => editManifest(f, r) };

interface ModelReference {
  packed: Uint8Array;
  original: string;
  /** sha256 of every matrix and raw tensor, by name, as CompressedModel gives them. */
  tensors: Map<string, string>;
}

async function modelOutputs(path: string, record: Map<string, string> | undefined): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  using model = await CompressedModel.open(path, { device: 'cpu', verify: process.env.FUZZ_NO_VERIFY === undefined });
  for (const u of model.units) {
    const block = await model.decompressUnit(u.prefix);
    for (const v of block.tensors.values()) out.set(v.name, sha(bytesOf(await v.toTensor())));
  }
  for (const name of model.rawTensorNames) out.set(name, sha(bytesOf(await model.readTensor(name))));
  if (record) for (const [k, v] of out) record.set(k, v);
  return out;
}

const KV_SCHEMES: readonly KVScheme[] = ['kivi', 'zipcache', 'fp8', 'vidkv'];

interface KvReference {
  scheme: KVScheme;
  file: Uint8Array;
  attention: string;
}

function seeded(shape: number[], seed: number): Tensor<'f32'> {
  const r = rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (r() - 0.5) * 4;
  return tensor('f32', shape, data);
}

const KV_Q = (): Tensor<'f32'> => seeded([4, 2, 16], 77);

async function kvAttention(path: string): Promise<string> {
  using c = await QuantizedKVCache.load(path, { device: 'cpu' });
  const a = await c.attention(KV_Q());
  for (const x of a.data) if (!Number.isFinite(x)) return `non-finite ${sha(bytesOf(a))}`;
  return `${c.tokens}:${sha(bytesOf(a))}`;
}

export interface Fuzzer {
  run(cases: number, deadline?: number): Promise<FuzzCounts>;
  dispose(): void;
}

/** Prepares the references (compresses the model, saves KV caches) in a temp dir. */
export async function createFuzzer(seed: number): Promise<Fuzzer> {
  const dir = mkdtempSync(join(tmpdir(), 'inferzip-mutation-'));
  const packedPath = join(dir, 'stories.df11.safetensors');
  await compressModel(MODEL, packedPath);
  const packed = new Uint8Array(readFileSync(packedPath));
  const ref: ModelReference = { packed, original: sha(new Uint8Array(readFileSync(MODEL))), tensors: new Map() };
  await modelOutputs(packedPath, ref.tensors);
  const modelLayout = layoutOf(packed);

  const kv: KvReference[] = [];
  for (const scheme of KV_SCHEMES) {
    using c = QuantizedKVCache.create({ scheme, heads: 2, headDim: 16, groupSize: 8, residualLength: 8 });
    c.appendSync(seeded([2, 37, 16], 1), seeded([2, 37, 16], 2));
    const p = join(dir, `kv-${scheme}.safetensors`);
    await c.save(p);
    kv.push({ scheme, file: new Uint8Array(readFileSync(p)), attention: await kvAttention(p) });
  }
  // caches with H2O / D2O eviction state (positions, scores, live flags, thresholds) in section 'evict'
  for (const [scheme, method] of [
    ['kivi', 'h2o'],
    ['fp8', 'd2o'],
  ] as const) {
    using c = QuantizedKVCache.create({
      scheme,
      heads: 2,
      headDim: 16,
      groupSize: 8,
      residualLength: 8,
      device: 'cpu',
      eviction: { method, budget: 0.5 },
    });
    c.appendSync(seeded([2, 37, 16], 1), seeded([2, 37, 16], 2));
    c.attentionSync(seeded([4, 37, 16], 3));
    for (let t = 0; t < 5; t++) {
      c.appendSync(seeded([2, 1, 16], 10 + t), seeded([2, 1, 16], 20 + t));
      c.attentionSync(seeded([4, 1, 16], 30 + t));
    }
    const p = join(dir, `kv-${scheme}-${method}.safetensors`);
    await c.save(p);
    kv.push({ scheme, file: new Uint8Array(readFileSync(p)), attention: await kvAttention(p) });
  }

  const counts: FuzzCounts = { cases: 0, checks: 0, typedErrors: 0, identical: 0, silentDifferences: 0, failures: [], byMutation: {} };
  const silent = (what: string): void => {
    counts.silentDifferences++;
    if (counts.failures.length < 50) counts.failures.push(what);
  };
  /** Runs one entry point: typed error, identical, or silent difference. */
  const check = async (label: string, run: () => Promise<boolean>): Promise<void> => {
    counts.checks++;
    try {
      if (await run()) counts.identical++;
      else silent(`${label}: different output without an error`);
    } catch (err) {
      if (err instanceof InferzipError) counts.typedErrors++;
      else silent(`${label}: untyped ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    }
  };

  const r = rng(seed);
  let n = 0;
  const modelCase = async (): Promise<void> => {
    const name = pick(Object.keys(MODEL_MUTATIONS), r);
    const caseSeed = Math.floor(r() * 2 ** 31);
    const bad = MODEL_MUTATIONS[name]!(packed, rng(caseSeed), modelLayout);
    const label = `model ${name} seed ${caseSeed}`;
    counts.byMutation[`model.${name}`] = (counts.byMutation[`model.${name}`] ?? 0) + 1;
    const path = join(dir, `case-${n}.safetensors`);
    const out = join(dir, `case-${n}.out.safetensors`);
    writeFileSync(path, bad);
    try {
      await check(`${label} decompressModel`, async () => {
        await decompressModel(path, out);
        return sha(new Uint8Array(readFileSync(out))) === ref.original;
      });
      // verifyModel reports problems instead of throwing: ok must mean the file gives the original back
      await check(`${label} verifyModel`, async () => {
        const v = await verifyModel(path);
        if (!v.ok) throw new InferzipError('CORRUPT_DATA', v.problems[0]?.message ?? 'not ok');
        await decompressModel(path, `${out}.v`);
        return sha(new Uint8Array(readFileSync(`${out}.v`))) === ref.original;
      });
      await check(`${label} CompressedModel`, async () => {
        const got = await modelOutputs(path, undefined);
        for (const [k, v] of ref.tensors) if (got.get(k) !== v) return false;
        return got.size === ref.tensors.size;
      });
    } finally {
      rmSync(path, { force: true });
      rmSync(out, { force: true });
      rmSync(`${out}.v`, { force: true });
    }
  };
  const kvCase = async (): Promise<void> => {
    const k = pick(kv, r);
    const name = pick(Object.keys(MUTATIONS), r);
    const caseSeed = Math.floor(r() * 2 ** 31);
    const bad = MUTATIONS[name]!(k.file, rng(caseSeed), layoutOf(k.file));
    counts.byMutation[`kv.${name}`] = (counts.byMutation[`kv.${name}`] ?? 0) + 1;
    const path = join(dir, `kv-case-${n}.safetensors`);
    writeFileSync(path, bad);
    try {
      await check(`kv ${k.scheme} ${name} seed ${caseSeed} load+attention`, async () => (await kvAttention(path)) === k.attention);
    } finally {
      rmSync(path, { force: true });
    }
  };

  return {
    async run(cases: number, deadline = Infinity): Promise<FuzzCounts> {
      for (let i = 0; i < cases && Date.now() < deadline; i++, n++) {
        counts.cases++;
        // header-level damage can throw while building the case (e.g. JSON edits): that is the mutator, not inferzip
        try {
          if (r() < 0.6) await modelCase();
          else await kvCase();
        } catch (err) {
          if (err instanceof SyntaxError) continue;
          throw err;
        }
      }
      return counts;
    },
    dispose(): void {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
