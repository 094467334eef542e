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
  const draw = (p: ModelProgress, force: boolean): void => {
    const now = performance.now();
    if (!force && now - last < 100) return;
    last = now;
    const frac = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 0;
    const width = Math.max(10, Math.min(30, (stream.columns ?? 80) - 70));
    const filled = Math.round(frac * width);
    const rate = p.bytesDone / Math.max(1e-3, (now - started) / 1000);
    const unit = p.unitsTotal > 0 ? ` ${p.unitsDone}/${p.unitsTotal} units` : '';
    const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${mb(p.bytesDone)}/${mb(p.bytesTotal)}${unit} ${mb(rate)}/s`;
    const cols = stream.columns ?? 120;
    stream.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, line.length + 2))}`);
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
