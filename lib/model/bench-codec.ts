/**
 * Quick codec throughput on a real model: encodes every unit the compressor would make,
 * decodes it back (checking it bit for bit), and reports median rates over a few runs.
 */
import { InferzipError } from '../errors.js';
import { decodeUnit, encodeUnit, unitBytes } from './codec.js';
import { planModel } from './plan.js';
import { checkThreads } from './progress.js';
import { openModelSource } from './source.js';

export interface BenchCodecResult {
  path: string;
  units: number;
  weights: number;
  runs: number;
  threads?: number;
  /** Median seconds over the runs to encode / decode all units (decode: into output buffers
   * allocated once and reused, as a loader that keeps its buffers does). */
  encodeSeconds: number;
  decodeSeconds: number;
  /** Median seconds to decode into freshly allocated outputs (what `decompress(unit)` without
   * `out` costs: the first touch of new memory is included, which on some VMs dominates). */
  decodeFreshSeconds: number;
  /** BF16 bytes per second. */
  encodeMBps: number;
  decodeGBps: number;
  decodeFreshGBps: number;
  bitsPerWeight: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export async function benchCodec(path: string, options: { runs?: number; threads?: number } = {}): Promise<BenchCodecResult> {
  const runs = options.runs ?? 5;
  if (!Number.isInteger(runs) || runs < 1 || runs > 1000)
    throw new InferzipError('INVALID_ARGUMENT', `runs must be an integer in [1, 1000], got ${String(runs)}`);
  checkThreads(options.threads);
  using src = openModelSource(path);
  const plan = planModel(src.files.flatMap((f) => f.tensors));
  const units: Uint16Array[][] = [];
  for (const u of plan.units) {
    const parts: Uint16Array[] = [];
    for (const m of u.members) {
      const b = await src.reader.readBytes(m);
      parts.push(new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2));
    }
    units.push(parts);
  }
  const weights = units.reduce((s, parts) => s + parts.reduce((a, p) => a + p.length, 0), 0);
  if (weights === 0) throw new InferzipError('INVALID_ARGUMENT', `'${path}' has no BF16 matrices to compress`);
  const enc: number[] = [];
  const dec: number[] = [];
  const fresh: number[] = [];
  const outs = units.map((parts) => new Uint16Array(parts.reduce((a, p) => a + p.length, 0)));
  let stored = 0;
  const threadOpt = options.threads === undefined ? {} : { threads: options.threads };
  for (let r = 0; r < runs; r++) {
    let t = performance.now();
    const encoded = [];
    for (const parts of units) {
      const r = await encodeUnit(parts, threadOpt);
      if (!r.unit || r.raw.length > 0)
        throw new InferzipError(
          'UNSUPPORTED',
          `'${path}': a unit holds tensors DFloat11 cannot code (Inf/NaN); bench needs codable weights`,
        );
      encoded.push(r.unit);
    }
    enc.push((performance.now() - t) / 1000);
    stored = encoded.reduce((s, e) => s + unitBytes(e), 0);
    t = performance.now();
    for (let i = 0; i < encoded.length; i++) await decodeUnit(encoded[i]!, new Uint16Array(outs[i]!.length));
    fresh.push((performance.now() - t) / 1000);
    t = performance.now();
    for (let i = 0; i < encoded.length; i++) await decodeUnit(encoded[i]!, outs[i]);
    dec.push((performance.now() - t) / 1000);
    units.forEach((parts, i) => {
      let off = 0;
      for (const p of parts) {
        const out = outs[i]!;
        for (let k = 0; k < p.length; k++) {
          if (out[off + k] !== p[k])
            throw new InferzipError('INTERNAL', `round trip mismatch in unit ${plan.units[i]!.prefix} at element ${off + k}`);
        }
        off += p.length;
      }
    });
  }
  const encodeSeconds = median(enc);
  const decodeSeconds = median(dec);
  const decodeFreshSeconds = median(fresh);
  return {
    path,
    units: units.length,
    weights,
    runs,
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
    encodeSeconds,
    decodeSeconds,
    decodeFreshSeconds,
    encodeMBps: (weights * 2) / encodeSeconds / 1e6,
    decodeGBps: (weights * 2) / decodeSeconds / 1e9,
    decodeFreshGBps: (weights * 2) / decodeFreshSeconds / 1e9,
    bitsPerWeight: (stored * 8) / weights,
  };
}
