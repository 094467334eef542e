// HoliTom's segmentation and density-peak clustering alone, straight from the native
// addon (not public API), in the reference's argument and result shapes.
import { native } from '../../lib/native.js';
import '../../lib/tokens/native.js';

/** Native segmentFrames on per-pair stable masks. */
export function segmentFrames(stable: Uint8Array[], t: number, p: number): [number, number][] {
  const flat = new Uint8Array(Math.max(0, t - 1) * p);
  stable.slice(0, t - 1).forEach((s, f) => flat.set(s, f * p));
  const segs = native().tokensSegmentFrames({ stable: flat, t, p });
  const out: [number, number][] = [];
  for (let i = 0; i < segs.length; i += 2) out.push([segs[i]!, segs[i + 1]!]);
  return out;
}

/** Native density-peak clustering of rows `ids` of x [*, c]. */
export function densityPeakClusters(
  x: Float32Array,
  c: number,
  ids: readonly number[],
  centres: number,
  knn: number,
): { centres: number[]; label: Int32Array } {
  const res = native().tokensDensityPeakClusters({ x, c, ids: Int32Array.from(ids), centres, knn });
  return { centres: Array.from(res.centres), label: res.label };
}
