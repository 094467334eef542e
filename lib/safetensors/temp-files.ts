/**
 * Bookkeeping for the hidden temp files (`.name.<pid>.<hex>.tmp`) that atomic writes create
 * beside their target. Errors already remove them; this module also removes them when the
 * process is interrupted (SIGINT / SIGTERM / SIGHUP) or exits with writes in flight, and sweeps
 * temp files of the same target left by processes that no longer exist (killed with SIGKILL,
 * power loss) the next time that target is written.
 */
import { readdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

const live = new Set<string>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let installed = false;

function removeLive(): void {
  for (const p of live) {
    try {
      rmSync(p, { force: true });
    } catch {
      // nothing more can be done while exiting
    }
  }
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  removeLive();
  uninstall();
  // Behave as if we had not been listening: with no other listener the default action (exit by
  // the signal) applies; an application with its own listener keeps control.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function install(): void {
  if (installed) return;
  installed = true;
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on('exit', removeLive);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  for (const s of SIGNALS) process.off(s, onSignal);
  process.off('exit', removeLive);
}

/** Records a temp file this process is writing (removed on interrupt or exit unless released). */
export function trackTemp(path: string): void {
  live.add(path);
  install();
}

/** The temp file was renamed into place or removed. */
export function releaseTemp(path: string): void {
  live.delete(path);
  if (live.size === 0) uninstall();
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes temp files of `target` left by processes that no longer run. Returns what it removed. */
export function sweepStaleTemps(target: string): string[] {
  const dir = dirname(target);
  const prefix = `.${basename(target)}.`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const m = /^(\d+)\.[0-9a-f]{8}\.tmp$/.exec(name.slice(prefix.length));
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || processExists(pid)) continue;
    try {
      rmSync(join(dir, name), { force: true });
      removed.push(join(dir, name));
    } catch {
      // not ours to remove (permissions): leave it
    }
  }
  return removed;
}
