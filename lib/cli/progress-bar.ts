/** A one-line progress bar on a terminal (stderr), redrawn at most 10 times a second. */
import type { ModelProgress } from '../model/index.js';

export interface ProgressSink {
  update(p: ModelProgress): void;
  done(): void;
}

function mb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

export function progressBar(stream: NodeJS.WriteStream, label: string): ProgressSink {
  const started = performance.now();
  let last = 0;
  let drawn = false;
  let lastLength = 0;
  const draw = (p: ModelProgress, force: boolean): void => {
    const now = performance.now();
    if (!force && now - last < 100) return;
    last = now;
    const frac = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 0;
    const cols = stream.columns || 80;
    const rate = p.bytesDone / Math.max(1e-3, (now - started) / 1000);
    const unit = p.unitsTotal > 0 ? ` ${p.unitsDone}/${p.unitsTotal} units` : '';
    const tail = ` ${(frac * 100).toFixed(0).padStart(3)}% ${mb(p.bytesDone)} of ${mb(p.bytesTotal)}${unit}, ${mb(rate)}/s`;
    const width = Math.max(10, Math.min(40, cols - 1 - label.length - 3 - tail.length));
    const filled = Math.round(frac * width);
    const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}]${tail}`;
    // Pad over what the previous (possibly longer) line left behind.
    stream.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, lastLength))}`);
    lastLength = Math.min(cols - 1, line.length);
    drawn = true;
  };
  let lastProgress: ModelProgress | undefined;
  let finished = false;
  return {
    update(p) {
      lastProgress = p;
      draw(p, false);
    },
    done() {
      if (finished) return;
      finished = true;
      if (lastProgress) draw(lastProgress, true);
      if (drawn) stream.write('\n');
    },
  };
}

/** No output (not a terminal, --json or --quiet). */
export const silentProgress: ProgressSink = { update() {}, done() {} };
