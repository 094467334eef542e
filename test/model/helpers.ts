/** Shared fixtures for the model-level DFloat11 tests (temp dirs, shard copies, CLI runs). */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { openSafetensors, writeSafetensorsSync, type SafetensorsWriteEntry } from '../../lib/safetensors/index.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MODEL_DIR = join(ROOT, 'fixtures', 'stories260K');
export const MODEL = join(MODEL_DIR, 'model.safetensors');
export const REFERENCE_UNIT = join(ROOT, 'fixtures', 'dfloat11-unit.safetensors');

const dirs: string[] = [];

/** A fresh temp directory, removed by cleanupTempDirs(). */
export function tempDir(tag = 'model'): string {
  const d = mkdtempSync(join(tmpdir(), `inferzip-${tag}-`));
  dirs.push(d);
  return d;
}

export function cleanupTempDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Files in a directory, temp files included (to prove nothing partial is left). */
export function listDir(dir: string): string[] {
  return readdirSync(dir).sort();
}

export function sameBytes(a: string, b: string): boolean {
  return Buffer.compare(readFileSync(a), readFileSync(b)) === 0;
}

/**
 * Splits the bundled model into two shards plus a model.safetensors.index.json, the
 * way Hugging Face shards (the first shard ends after layer 2).
 */
export function makeShardedCopy(dir: string): string {
  using src = openSafetensors(MODEL);
  const names = src.tensors.map((t) => t.name);
  const cut = names.indexOf('model.layers.3.input_layernorm.weight');
  const parts = [names.slice(0, cut), names.slice(cut)];
  const weightMap: Record<string, string> = {};
  let total = 0;
  parts.forEach((part, i) => {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    const entries: SafetensorsWriteEntry[] = part.map((name) => {
      const e = src.entry(name);
      total += e.byteLength;
      weightMap[name] = file;
      return { name, dtype: e.dtype, shape: e.shape, data: src.readBytesSync(name) };
    });
    writeSafetensorsSync(join(dir, file), entries, { metadata: { format: 'pt' } });
  });
  writeFileSync(
    join(dir, 'model.safetensors.index.json'),
    `${JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)}\n`,
  );
  return dir;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `inferzip ...args` from the TypeScript sources in a child process. */
export function runCli(args: string[]): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'lib', 'cli', 'main.ts'), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code: code ?? -1, stdout, stderr }));
  });
}

/** The linear layers of a Llama block, in DFloat11's order. */
export const LLAMA_ORDER = [
  'self_attn.q_proj',
  'self_attn.k_proj',
  'self_attn.v_proj',
  'self_attn.o_proj',
  'mlp.gate_proj',
  'mlp.up_proj',
  'mlp.down_proj',
];

/** The stories260K config with the dfloat11_config a published DFloat11 Llama carries. */
export function dfloat11Config(): Record<string, unknown> {
  const config = JSON.parse(readFileSync(join(MODEL_DIR, 'config.json'), 'utf8')) as Record<string, unknown>;
  return {
    ...config,
    dfloat11_config: {
      version: '0.5.0',
      threads_per_block: [512],
      bytes_per_thread: 8,
      pattern_dict: {
        'model\\.embed_tokens': [],
        'model\\.layers\\.\\d+': LLAMA_ORDER,
      },
    },
  };
}
