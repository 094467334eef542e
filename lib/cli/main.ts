#!/usr/bin/env node
/**
 * inferzip command line: compress, decompress, verify, inspect and bench DFloat11 models.
 * Exit codes: 0 success; 1 failure (I/O error, corrupt data, verify found a mismatch);
 * 2 usage error (unknown command or option, missing argument).
 */
import { existsSync, realpathSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

import { InferzipError, toInferzipError } from '../errors.js';
import { packageRoot } from '../native.js';
import { setThreads } from '../backend.js';
import { benchCodec, compressModel, decompressModel, inspectModel, verifyModel, type ModelProgress } from '../model/index.js';
import { compressSummary, decompressSummary, inspectTable, verifySummary } from './format.js';
import { COMMANDS, COMMAND_HELP, HELP, type Command } from './help.js';
import { inspectPlain, plainTable } from './inspect-plain.js';
import { progressBar, progressLines, silentProgress, type ProgressSink } from './progress-bar.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

class UsageError extends Error {}

interface Io {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WriteStream;
}

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        output: { type: 'string', short: 'o' },
        force: { type: 'boolean', short: 'f', default: false },
        'allow-uncompressed': { type: 'boolean', default: false },
        progress: { type: 'boolean', default: false },
        threads: { type: 'string' },
        json: { type: 'boolean', default: false },
        quiet: { type: 'boolean', short: 'q', default: false },
        decode: { type: 'boolean', default: false },
        runs: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
        version: { type: 'boolean', short: 'v', default: false },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function intOption(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(`--${name} must be an integer in [${min}, ${max}], got '${value}'`);
  return n;
}

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function run(argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let json = false;
  try {
    const { values, positionals } = parse(argv);
    json = values.json === true;
    if (values.help) {
      // `inferzip <command> --help`: that command's own help
      const cmd = positionals[0];
      io.stdout.write(cmd && (COMMANDS as readonly string[]).includes(cmd) ? COMMAND_HELP[cmd as Command] : HELP);
      return EXIT_OK;
    }
    if (values.version) {
      io.stdout.write(`${await versionAsync()}\n`);
      return EXIT_OK;
    }
    const [command, ...rest] = positionals;
    if (!command) throw new UsageError('no command given');
    if (!(COMMANDS as readonly string[]).includes(command))
      throw new UsageError(`unknown command '${command}' (commands: ${COMMANDS.join(', ')})`);
    const threads = intOption(values.threads, 'threads', 1, 1024);
    if (threads !== undefined) setThreads(threads);
    const runs = intOption(values.runs, 'runs', 1, 1000);
    // A bar on a terminal; plain lines when stderr is a pipe or file and --progress asks for them.
    const progress = (label: string): ProgressSink => {
      if (json || values.quiet) return silentProgress;
      if (io.stderr.isTTY === true) return progressBar(io.stderr, label);
      return values.progress ? progressLines(io.stderr, label) : silentProgress;
    };
    const taskOptions = (sink: ProgressSink) => ({
      onProgress: (p: ModelProgress) => sink.update(p),
      overwrite: values.force === true,
      ...(threads !== undefined ? { threads } : {}),
    });
    const out = (human: string, data: unknown): void => {
      io.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : `${human}\n`);
    };
    const expectArgs = (n: number, usage: string): string[] => {
      if (rest.length !== n)
        throw new UsageError(`${command} takes ${usage} (got ${rest.length === 0 ? 'none' : rest.map((r) => `'${r}'`).join(' ')})`);
      return rest;
    };

    switch (command as Command) {
      case 'compress': {
        const [input] = expectArgs(1, 'one input: inferzip compress IN -o OUT');
        if (!values.output) throw new UsageError('compress needs -o OUT (the compressed .safetensors file to write)');
        const bar = progress('compress');
        try {
          const r = await compressModel(input!, values.output, taskOptions(bar));
          bar.done();
          if (r.compressedWeights === 0 && !values['allow-uncompressed']) {
            // A "compressed" copy that compresses nothing is almost always the wrong input (F32
            // weights, or every matrix kept raw): say so, and keep nothing.
            rmSync(r.output, { force: true });
            if (r.config) rmSync(r.config, { force: true });
            throw new InferzipError(
              'INVALID_ARGUMENT',
              `${input}: nothing to compress (${r.bf16Weights === 0 ? 'no BF16 weights' : `all ${r.bf16Weights} BF16 weights kept raw: ${r.rawTensors.join(', ')}`}); ` +
                'nothing was kept. Pass --allow-uncompressed to write the file anyway.',
            );
          }
          out(compressSummary(r), { ok: true, ...r });
        } finally {
          bar.done();
        }
        return EXIT_OK;
      }
      case 'decompress': {
        const [input] = expectArgs(1, 'one input: inferzip decompress IN -o OUT');
        if (!values.output) throw new UsageError('decompress needs -o OUT (file, or directory for a sharded model)');
        const bar = progress('decompress');
        try {
          const r = await decompressModel(input!, values.output, taskOptions(bar));
          bar.done();
          out(decompressSummary(r), { ok: true, ...r });
        } finally {
          bar.done();
        }
        return EXIT_OK;
      }
      case 'verify': {
        const [file] = expectArgs(1, 'one file: inferzip verify FILE');
        const bar = progress('verify');
        let r;
        try {
          r = await verifyModel(file!, taskOptions(bar));
        } finally {
          bar.done();
        }
        out(verifySummary(file!, r), r);
        return r.ok ? EXIT_OK : EXIT_FAILURE;
      }
      case 'inspect': {
        const [file] = expectArgs(1, 'one file: inferzip inspect FILE');
        let r;
        try {
          r = await inspectModel(file!, { decode: values.decode === true });
        } catch (err) {
          // Not a compressed model (a plain safetensors file or model directory): describe it instead.
          const e = toInferzipError(err);
          if (e.code !== 'INVALID_ARGUMENT' && e.code !== 'NOT_COMPRESSED') throw e;
          let plain;
          try {
            plain = inspectPlain(file!);
          } catch {
            throw e;
          }
          out(plainTable(plain), plain);
          return EXIT_OK;
        }
        out(inspectTable(r), r);
        return EXIT_OK;
      }
      case 'bench': {
        if (rest.length > 1) throw new UsageError('bench takes at most one model path');
        const path = rest[0] ?? join(packageRoot, 'fixtures', 'stories260K', 'model.safetensors');
        if (!rest[0] && !existsSync(path))
          throw new UsageError(`the bundled model is not installed (${path}); give a model: inferzip bench MODEL`);
        const r = await benchCodec(path, { ...(runs !== undefined ? { runs } : {}), ...(threads !== undefined ? { threads } : {}) });
        out(
          `${r.path}: ${r.units} units, ${r.weights} weights, median of ${r.runs} runs\n` +
            `  encode ${r.encodeMBps.toFixed(1)} MB/s (${(r.encodeSeconds * 1000).toFixed(2)} ms)\n` +
            `  decode ${r.decodeGBps.toFixed(3)} GB/s (${(r.decodeSeconds * 1000).toFixed(2)} ms) into a reused buffer; ` +
            `${r.decodeFreshGBps.toFixed(3)} GB/s (${(r.decodeFreshSeconds * 1000).toFixed(2)} ms) into fresh memory\n` +
            `  ${r.bitsPerWeight.toFixed(3)} bits/weight`,
          r,
        );
        return EXIT_OK;
      }
    }
  } catch (err) {
    if (err instanceof UsageError) {
      if (json) io.stdout.write(`${JSON.stringify({ ok: false, error: { code: 'USAGE', message: err.message } })}\n`);
      io.stderr.write(`inferzip: ${err.message}\nRun 'inferzip --help' for usage.\n`);
      return EXIT_USAGE;
    }
    const e = err instanceof InferzipError ? err : toInferzipError(err);
    if (json) io.stdout.write(`${JSON.stringify({ ok: false, error: { code: e.code, message: e.message } })}\n`);
    io.stderr.write(`inferzip: error [${e.code}]: ${e.message}\n`);
    return EXIT_FAILURE;
  }
}

async function versionAsync(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  try {
    return (JSON.parse(await readFile(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

// Run when executed (also through the npm bin symlink), not when imported.
const invokedDirectly = ((): boolean => {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
})();
if (invokedDirectly) {
  process.exitCode = await run(process.argv.slice(2));
}
