/**
 * decompressModel: rebuilds the original safetensors file(s) byte for byte from a file
 * written by compressModel. A sharded original comes back as a directory holding every
 * shard and the index. Every tensor's crc32 and every file's sha256 is checked; on any
 * mismatch or failure nothing is left at the output.
 */
import { mkdirSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

import { refuseExistingOutputs, type OverwriteOption } from './no-clobber.js';
import { refuseSameFile } from './same-file.js';
import { openSafetensorsFileAsync } from './off-thread.js';
import { releaseTemp, trackTemp } from '../safetensors/temp-files.js';
import { InferzipError, toInferzipError } from '../errors.js';
import { AtomicFile } from './atomic-file.js';
import { latin1ToBytes, parseManifest, requireCompressed } from './manifest.js';
import { checkAborted, checkThreads, type ModelTaskOptions } from './progress.js';
import { restoreModel } from './restore.js';

export interface DecompressModelOptions extends ModelTaskOptions, OverwriteOption {}

export interface DecompressModelResult {
  /** Paths written: the file, or every shard then the index. */
  files: string[];
  /** Bytes written in all. */
  bytes: number;
  seconds: number;
}

/**
 * Rebuilds the original model. For a single-file original, `output` is the file to write
 * (or an existing directory to write it into, under its original name); for a sharded
 * original, `output` is the directory to create or fill.
 * @example
 *   await decompressModel('/tmp/stories.df11.safetensors', '/tmp/model.safetensors');
 */
export async function decompressModel(input: string, output: string, options: DecompressModelOptions = {}): Promise<DecompressModelResult> {
  const started = performance.now();
  checkThreads(options.threads);
  checkAborted(options.signal);
  let inputIsDir = false;
  try {
    inputIsDir = statSync(input).isDirectory();
  } catch {
    // openSafetensorsFileAsync reports a missing input
  }
  if (inputIsDir) {
    throw new InferzipError(
      'NOT_COMPRESSED',
      `'${input}' is a directory, not an inferzip compressed model: decompress takes the .safetensors file compressModel wrote ` +
        '(a DFloat11 model directory keeps no record of the original files; open it with CompressedModel.open instead)',
    );
  }
  const opened = await openSafetensorsFileAsync(input, true);
  using reader = opened.file;
  if (!opened.manifest) requireCompressed(reader.metadata, input);
  const manifest = opened.manifest ?? parseManifest(reader.metadata, reader.tensors.length);

  let isDir = false;
  try {
    isDir = statSync(output).isDirectory();
  } catch {
    // created below when needed
  }
  const paths: string[] = [];
  if (manifest.source === 'file') {
    paths.push(isDir ? join(output, manifest.restoreFiles[0]!.name) : output);
  } else {
    if (!isDir) {
      try {
        mkdirSync(output, { recursive: true });
      } catch (err) {
        throw new InferzipError('IO_ERROR', `cannot create output directory '${output}': ${(err as Error).message}`, { cause: err });
      }
    }
    for (const f of manifest.restoreFiles) paths.push(join(output, f.name));
  }

  const outputs = manifest.index ? [...paths, join(output, manifest.index.name)] : paths;
  refuseExistingOutputs(outputs, options, 'decompressModel');
  refuseSameFile([input], outputs, 'decompressModel');

  const open: AtomicFile[] = [];
  let current: AtomicFile | undefined;
  let bytes = 0;
  try {
    await restoreModel(reader, manifest, {
      phase: 'decompress',
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.threads !== undefined ? { threads: options.threads } : {}),
      onMismatch: (m) => {
        throw new InferzipError('CORRUPT_DATA', `${input}: ${m.message}; nothing was written`);
      },
      sink: {
        beginFile: async (index) => {
          current = await AtomicFile.create(paths[index]!);
          open.push(current);
        },
        write: async (chunk) => {
          await current!.append(chunk);
          bytes += chunk.byteLength;
        },
      },
    });
    if (manifest.index) {
      const indexFile = await AtomicFile.create(join(output, manifest.index.name));
      open.push(indexFile);
      const data = latin1ToBytes(manifest.index.data);
      await indexFile.append(data);
      bytes += data.byteLength;
      paths.push(indexFile.path);
    }
    checkAborted(options.signal);
  } catch (err) {
    await Promise.all(open.map((f) => f.abort()));
    throw err;
  }
  // Publish only once every file is complete and checked: shards first, the index last, so a
  // reader that goes by the index never sees a partial set. A failed rename unpublishes the
  // files this call already moved into place.
  const published: string[] = [];
  try {
    for (const f of open) {
      await f.commit();
      published.push(f.path);
      // Until the whole set is out, a published file is removed on SIGINT/SIGTERM like a temp file.
      if (open.length > 1) trackTemp(f.path);
    }
    for (const p of published) releaseTemp(p);
  } catch (err) {
    for (const p of published) releaseTemp(p);
    await Promise.all(open.map((f) => f.abort()));
    await Promise.all(published.map((p) => rm(p, { force: true }).catch(() => {})));
    throw toInferzipError(err, `publishing the output of decompressModel into '${output}'`);
  }
  return { files: paths, bytes, seconds: (performance.now() - started) / 1000 };
}
