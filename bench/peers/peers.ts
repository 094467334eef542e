// The alternatives a user would run instead, started from the benches and timed in the same
// run: PyTorch CPU (bench/peers/torch_peer.py, a long-lived process answering one request per
// line, so each of its repetitions can alternate with one of inferzip's) and the zstd CLI.
// Nothing is installed here: a missing peer is reported, and the bench prints its reason.
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The environment for a peer: OpenBLAS picks its own kernels (this machine's defaults force old ones). */
export function peerEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

function findPython(): string | null {
  for (const py of [process.env.INFERZIP_PEER_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean) as string[]) {
    const r = spawnSync(py, ['-c', 'import torch'], { env: peerEnv(), stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return null;
}

export interface TorchPeer {
  version: string;
  /** Runs one request; resolves to the milliseconds of each repetition. */
  run(req: Record<string, unknown>): Promise<number[]>;
  close(): void;
}

/** Starts the PyTorch peer, or returns the reason it is missing. */
export async function startTorchPeer(): Promise<TorchPeer | string> {
  const py = findPython();
  if (!py) return 'PyTorch not found (python3 -c "import torch" fails; e.g. apt-get install python3-torch): peer column left empty';
  const child: ChildProcessWithoutNullStreams = spawn(py, [join(here, 'torch_peer.py')], { env: peerEnv() });
  child.stderr.on('data', () => {});
  const rl: Interface = createInterface({ input: child.stdout });
  const pending: ((line: string) => void)[] = [];
  rl.on('line', (line) => pending.shift()?.(line));
  let version = '?';
  const run = (req: Record<string, unknown>) =>
    new Promise<number[]>((resolve, reject) => {
      pending.push((line) => {
        const res = JSON.parse(line) as { ms?: number[]; error?: string; torch?: string };
        if (res.error || !res.ms) reject(new Error(`torch peer: ${res.error}`));
        else {
          version = res.torch ?? version;
          resolve(res.ms);
        }
      });
      child.stdin.write(JSON.stringify(req) + '\n');
    });
  const peer: TorchPeer = {
    get version() {
      return version;
    },
    run,
    close: () => {
      child.stdin.end();
      child.kill();
    },
  };
  await run({ op: 'version' });
  return peer;
}

/** Alternates `rounds` times: one peer repetition, then one of ours; returns both lists. */
export async function interleave(
  rounds: number,
  peer: (() => Promise<number>) | null,
  ours: () => number | Promise<number>,
): Promise<{ peer: number[]; ours: number[] }> {
  const p: number[] = [];
  const o: number[] = [];
  for (let i = 0; i < rounds; i++) {
    if (peer) p.push(await peer());
    o.push(await ours());
  }
  return { peer: p, ours: o };
}

/** The zstd CLI's version line, or null when it is not on PATH. */
export function zstdVersion(): string | null {
  const r = spawnSync('zstd', ['-V'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}
