/**
 * Progress on stderr: a one-line bar on a terminal (redrawn at most 10 times a second), or,
 * when stderr is a pipe or a file and --progress asked for it, plain lines a log can keep:
 * one per finished unit, and one every few seconds while a large unit or file is in flight.
 */
import type { ModelProgress } from '../model/index.js';

export interface ProgressSink {
  update(p: ModelProgress): void;
  done(): void;
}

function mb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

function percent(p: ModelProgress): string {
  const frac = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 0;
  return `${(frac * 100).toFixed(0).padStart(3)}%`;
}

/** The text after the bar, padded to a width that only depends on the totals, so the line never changes length. */
function tail(p: ModelProgress, rate: number): string {
  const total = mb(p.bytesTotal);
  const units = p.unitsTotal > 0 ? ` ${String(p.unitsDone).padStart(String(p.unitsTotal).length)}/${p.unitsTotal} units` : '';
  return ` ${percent(p)} ${mb(p.bytesDone).padStart(total.length)} of ${total}${units}, ${`${mb(rate)}/s`.padStart(11)}`;
}

export function progressBar(stream: NodeJS.WriteStream, label: string): ProgressSink {
  const started = performance.now();
  let last = 0;
  let drawn = false;
  let width: number | undefined;
  const draw = (p: ModelProgress, force: boolean): void => {
    const now = performance.now();
    if (!force && now - last < 100) return;
    last = now;
    const cols = stream.columns || 80;
    const rate = p.bytesDone / Math.max(1e-3, (now - started) / 1000);
    const text = tail(p, rate);
    // Chosen once: a bar that changes width as numbers grow makes the line jump.
    width ??= Math.max(10, Math.min(40, cols - 1 - label.length - 3 - text.length));
    const frac = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 0;
    const filled = Math.round(frac * width);
    const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}]${text}`;
    stream.write(`\r${line.slice(0, cols - 1)}`);
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

/** Seconds between lines while no unit finishes. */
export const PROGRESS_LINE_SECONDS = 5;

/** Plain progress lines for a stream that is not a terminal (--progress): no \r, no redraws. */
export function progressLines(stream: NodeJS.WritableStream, label: string, now: () => number = () => performance.now()): ProgressSink {
  const started = now();
  let lastLine = -Infinity;
  let lastUnits = -1;
  let lastProgress: ModelProgress | undefined;
  let printed: ModelProgress | undefined;
  let finished = false;
  const line = (p: ModelProgress): void => {
    const t = now();
    const units = p.unitsTotal > 0 ? ` unit ${p.unitsDone}/${p.unitsTotal}` : '';
    const current = p.current ? ` (${p.current})` : '';
    stream.write(
      `${label}:${units} ${percent(p).trim()} ${mb(p.bytesDone)} of ${mb(p.bytesTotal)}${current}, ${((t - started) / 1000).toFixed(1)} s\n`,
    );
    lastLine = t;
    printed = p;
  };
  return {
    update(p) {
      lastProgress = p;
      const unitFinished = p.unitsTotal > 0 && p.unitsDone !== lastUnits;
      lastUnits = p.unitsDone;
      if (unitFinished || now() - lastLine >= PROGRESS_LINE_SECONDS * 1000) line(p);
    },
    done() {
      if (finished) return;
      finished = true;
      if (lastProgress && lastProgress !== printed) line(lastProgress);
    },
  };
}

/** No output (--json, --quiet, or not a terminal without --progress). */
export const silentProgress: ProgressSink = { update() {}, done() {} };
