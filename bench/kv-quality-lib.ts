/**
 * Attention quality of each KV quantization scheme on real stories260K activations:
 * relative error and cosine similarity of the attention output against full precision.
 * Shared by bench/kv-quality.ts (the report) and test/kvquant/quality.test.ts (the guard).
 */
import { QuantizedKVCache, denseAttentionSync, quantizeKVSync, type KVQuantOptions } from '../lib/kvquant/index.js';
import { tensor, type Tensor } from '../lib/tensor.js';
import type { LayerKV } from './stories-kv.js';

export interface SchemeConfig {
  name: string;
  options: KVQuantOptions;
}

export const QUALITY_SCHEMES: SchemeConfig[] = [
  { name: 'kivi 2-bit', options: { scheme: 'kivi', bits: 2 } },
  { name: 'kivi 4-bit', options: { scheme: 'kivi', bits: 4 } },
  { name: 'vidkv (1.5-bit K, 1.58-bit V)', options: { scheme: 'vidkv' } },
  { name: 'zipcache (2/4-bit)', options: { scheme: 'zipcache' } },
  { name: 'fp8 e4m3', options: { scheme: 'fp8', fp8Format: 'e4m3' } },
  { name: 'fp8 e5m2', options: { scheme: 'fp8', fp8Format: 'e5m2' } },
];

export interface Quality {
  relErr: number;
  cosine: number;
  keyBits: number;
  valueBits: number;
}

function rowsOf(t: Tensor<'f32'>, d: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let i = 0; i < t.data.length; i += d) out.push(t.data.subarray(i, i + d));
  return out;
}

class Acc {
  err = 0;
  ref = 0;
  cos = 0;
  n = 0;
  add(ref: Tensor<'f32'>, x: Tensor<'f32'>, d: number): void {
    const a = rowsOf(ref, d),
      b = rowsOf(x, d);
    for (let r = 0; r < a.length; r++) {
      let ab = 0,
        aa = 0,
        bb = 0;
      for (let c = 0; c < d; c++) {
        const u = a[r]![c]!,
          v = b[r]![c]!;
        this.err += (u - v) ** 2;
        this.ref += u * u;
        ab += u * v;
        aa += u * u;
        bb += v * v;
      }
      this.cos += aa === 0 && bb === 0 ? 1 : ab / Math.sqrt(aa * bb);
      this.n++;
    }
  }
  get relErr(): number {
    return Math.sqrt(this.err / this.ref);
  }
  get cosine(): number {
    return this.cos / this.n;
  }
}

function slice(t: Tensor<'f32'>, start: number, end: number): Tensor<'f32'> {
  const [h, T, d] = t.shape as [number, number, number];
  const out = new Float32Array(h * (end - start) * d);
  for (let i = 0; i < h; i++) out.set(t.data.subarray((i * T + start) * d, (i * T + end) * d), i * (end - start) * d);
  return tensor('f32', [h, end - start, d], out);
}

/**
 * Every token quantized (quantizeKV, no full-precision window): all queries of every layer,
 * causal attention from the packed codes vs dense f32 attention over the original K and V.
 */
export function qualityAllQuantized(layers: LayerKV[], cfg: SchemeConfig): Quality {
  const acc = new Acc();
  let kb = 0,
    vb = 0;
  for (const L of layers) {
    const d = L.k.shape[2]!;
    using q = quantizeKVSync(L.k, L.v, { ...cfg.options, queries: L.q });
    acc.add(denseAttentionSync(L.q, L.k, L.v), q.attentionSync(L.q), d);
    kb += q.memory.keyBits / layers.length;
    vb += q.memory.valueBits / layers.length;
  }
  return { relErr: acc.relErr, cosine: acc.cosine, keyBits: kb, valueBits: vb };
}

/**
 * Streaming use: prefill all but the last `decode` tokens into a QuantizedKVCache (default
 * residual window R), then append one token at a time and attend with that token's queries.
 */
export function qualityStreaming(layers: LayerKV[], cfg: SchemeConfig, decode: number, residualLength = 128): Quality {
  const acc = new Acc();
  let kb = 0,
    vb = 0;
  for (const L of layers) {
    const [H, T, d] = L.k.shape as [number, number, number];
    const Hq = L.q.shape[0]!;
    using cache = QuantizedKVCache.create({ ...cfg.options, heads: H, headDim: d, residualLength });
    const pre = T - decode;
    cache.appendSync(slice(L.k, 0, pre), slice(L.v, 0, pre), { queries: slice(L.q, 0, pre) });
    for (let t = pre; t < T; t++) {
      cache.appendSync(slice(L.k, t, t + 1), slice(L.v, t, t + 1), { queries: slice(L.q, t, t + 1) });
      const q = slice(L.q, t, t + 1);
      const ref = denseAttentionSync(q, slice(L.k, 0, t + 1), slice(L.v, 0, t + 1));
      acc.add(ref, cache.attentionSync(q), d);
      void Hq;
    }
    kb += cache.memory.keyBits / layers.length;
    vb += cache.memory.valueBits / layers.length;
  }
  return { relErr: acc.relErr, cosine: acc.cosine, keyBits: kb, valueBits: vb };
}
