/**
 * Real K/V/Q activations from the bundled stories260K Llama (fixtures/stories260K): a minimal
 * f32 forward pass that samples a story from BOS (seeded, temperature 0.8) and records, per
 * layer, the post-RoPE queries and keys and the values the KV cache would hold.
 * Used by bench/kv-quality.ts and test/kvquant/quality.test.ts.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { openSafetensors } from '../lib/safetensors/index.js';
import { tensor, type Tensor } from '../lib/tensor.js';

export interface LayerKV {
  /** [q_heads, tokens, head_dim], post-RoPE. */
  q: Tensor<'f32'>;
  /** [kv_heads, tokens, head_dim], post-RoPE. */
  k: Tensor<'f32'>;
  /** [kv_heads, tokens, head_dim]. */
  v: Tensor<'f32'>;
}

const DIM = 64,
  LAYERS = 5,
  HEADS = 8,
  KV_HEADS = 4,
  HD = 8,
  FFN = 172,
  VOCAB = 512,
  EPS = 1e-5,
  THETA = 10000;

export const STORIES_MODEL = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'stories260K', 'model.f32.safetensors');

function matvec(w: Float32Array, x: Float32Array, rows: number, cols: number, out: Float32Array): void {
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const o = r * cols;
    for (let c = 0; c < cols; c++) s += w[o + c]! * x[c]!;
    out[r] = s;
  }
}

function rmsnorm(x: Float32Array, w: Float32Array, out: Float32Array): void {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i]! * x[i]!;
  const inv = 1 / Math.sqrt(ss / x.length + EPS);
  for (let i = 0; i < x.length; i++) out[i] = x[i]! * inv * w[i]!;
}

// llama2.c RoPE: rotate pairs (x[2i], x[2i+1]) of each head by pos * theta^(-2i/head_dim).
function rope(x: Float32Array, heads: number, pos: number): void {
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < HD; i += 2) {
      const a = pos * Math.pow(THETA, -i / HD);
      const c = Math.cos(a),
        s = Math.sin(a);
      const j = h * HD + i;
      const x0 = x[j]!,
        x1 = x[j + 1]!;
      x[j] = x0 * c - x1 * s;
      x[j + 1] = x0 * s + x1 * c;
    }
}

/** Samples `tokens` tokens from BOS (temperature 0: greedy) and returns the per-layer activations. */
export function collectStoriesKV(tokens: number, seed = 1, temperature = 0.8, path = STORIES_MODEL): { layers: LayerKV[]; ids: number[] } {
  const file = openSafetensors(path);
  const W = (name: string) => file.readSync(name).data as Float32Array;
  const emb = W('model.embed_tokens.weight');
  const L = Array.from({ length: LAYERS }, (_, l) => {
    const p = `model.layers.${l}.`;
    return {
      inNorm: W(p + 'input_layernorm.weight'),
      wq: W(p + 'self_attn.q_proj.weight'),
      wk: W(p + 'self_attn.k_proj.weight'),
      wv: W(p + 'self_attn.v_proj.weight'),
      wo: W(p + 'self_attn.o_proj.weight'),
      postNorm: W(p + 'post_attention_layernorm.weight'),
      gate: W(p + 'mlp.gate_proj.weight'),
      up: W(p + 'mlp.up_proj.weight'),
      down: W(p + 'mlp.down_proj.weight'),
    };
  });
  const finalNorm = W('model.norm.weight');
  file.close();

  const Q = Array.from({ length: LAYERS }, () => new Float32Array(HEADS * tokens * HD));
  const K = Array.from({ length: LAYERS }, () => new Float32Array(KV_HEADS * tokens * HD));
  const V = Array.from({ length: LAYERS }, () => new Float32Array(KV_HEADS * tokens * HD));
  const x = new Float32Array(DIM),
    xn = new Float32Array(DIM),
    q = new Float32Array(DIM),
    k = new Float32Array(KV_HEADS * HD),
    v = new Float32Array(KV_HEADS * HD);
  const att = new Float32Array(DIM),
    o = new Float32Array(DIM),
    g = new Float32Array(FFN),
    u = new Float32Array(FFN),
    f = new Float32Array(DIM),
    logits = new Float32Array(VOCAB);
  let state = seed >>> 0 || 1;
  const rand = () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 4294967296;
  };
  const ids = [1];
  for (let pos = 0; pos < tokens; pos++) {
    x.set(emb.subarray(ids[pos]! * DIM, ids[pos]! * DIM + DIM));
    for (let l = 0; l < LAYERS; l++) {
      const w = L[l]!;
      rmsnorm(x, w.inNorm, xn);
      matvec(w.wq, xn, DIM, DIM, q);
      matvec(w.wk, xn, KV_HEADS * HD, DIM, k);
      matvec(w.wv, xn, KV_HEADS * HD, DIM, v);
      rope(q, HEADS, pos);
      rope(k, KV_HEADS, pos);
      for (let h = 0; h < HEADS; h++) Q[l]!.set(q.subarray(h * HD, h * HD + HD), (h * tokens + pos) * HD);
      for (let h = 0; h < KV_HEADS; h++) {
        K[l]!.set(k.subarray(h * HD, h * HD + HD), (h * tokens + pos) * HD);
        V[l]!.set(v.subarray(h * HD, h * HD + HD), (h * tokens + pos) * HD);
      }
      for (let h = 0; h < HEADS; h++) {
        const kh = Math.floor(h / (HEADS / KV_HEADS));
        const sc = new Float32Array(pos + 1);
        let mx = -Infinity;
        for (let t = 0; t <= pos; t++) {
          let s = 0;
          for (let c = 0; c < HD; c++) s += q[h * HD + c]! * K[l]![(kh * tokens + t) * HD + c]!;
          sc[t] = s / Math.sqrt(HD);
          mx = Math.max(mx, sc[t]!);
        }
        let sum = 0;
        for (let t = 0; t <= pos; t++) sum += sc[t] = Math.exp(sc[t]! - mx);
        for (let c = 0; c < HD; c++) {
          let a = 0;
          for (let t = 0; t <= pos; t++) a += sc[t]! * V[l]![(kh * tokens + t) * HD + c]!;
          att[h * HD + c] = a / sum;
        }
      }
      matvec(w.wo, att, DIM, DIM, o);
      for (let i = 0; i < DIM; i++) x[i] = x[i]! + o[i]!;
      rmsnorm(x, w.postNorm, xn);
      matvec(w.gate, xn, FFN, DIM, g);
      matvec(w.up, xn, FFN, DIM, u);
      for (let i = 0; i < FFN; i++) g[i] = (g[i]! / (1 + Math.exp(-g[i]!))) * u[i]!;
      matvec(w.down, g, DIM, FFN, f);
      for (let i = 0; i < DIM; i++) x[i] = x[i]! + f[i]!;
    }
    rmsnorm(x, finalNorm, xn);
    matvec(emb, xn, VOCAB, DIM, logits);
    // seeded sampling at temperature 0.8 (greedy decoding of this tiny model loops quickly)
    let mx = -Infinity,
      best = 0;
    for (let i = 0; i < VOCAB; i++)
      if (logits[i]! > mx) {
        mx = logits[i]!;
        best = i;
      }
    if (temperature === 0) {
      ids.push(best);
      continue;
    }
    let sum = 0;
    for (let i = 0; i < VOCAB; i++) sum += logits[i] = Math.exp((logits[i]! - mx) / temperature);
    let r = rand() * sum,
      next = VOCAB - 1;
    for (let i = 0; i < VOCAB; i++) {
      r -= logits[i]!;
      if (r <= 0) {
        next = i;
        break;
      }
    }
    ids.push(next);
  }
  return {
    ids,
    layers: Q.map((qd, l) => ({
      q: tensor('f32', [HEADS, tokens, HD], qd),
      k: tensor('f32', [KV_HEADS, tokens, HD], K[l]!),
      v: tensor('f32', [KV_HEADS, tokens, HD], V[l]!),
    })),
  };
}
