/**
 * The compressed output of one input is byte-identical from run to run and for any thread count
 * (the reserved header size came from a size estimate built with random stand-ins, so the header
 * padding, and with it the file, varied by a few bytes between runs).
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { compressModel } from '../../lib/model/index.js';
import { writeSafetensorsSync, type SafetensorsWriteEntry } from '../../lib/safetensors/index.js';
import { cleanupTempDirs, tempDir } from '../model/helpers.js';

afterAll(cleanupTempDirs);

describe('compressModel output', () => {
  it('is byte-identical across 8 runs alternating threads 1 and 2', async () => {
    const dir = tempDir('determinism');
    const src = join(dir, 'model.safetensors');
    const entries: SafetensorsWriteEntry[] = [];
    let s = 1;
    for (let b = 0; b < 6; b++) {
      for (const m of ['self_attn.q_proj.weight', 'mlp.up_proj.weight']) {
        const d = new Uint16Array(512 * 512);
        for (let i = 0; i < d.length; i++) {
          s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
          d[i] = 0x3c00 + (s >>> 24) - 128 + ((s >>> 20) & 7);
        }
        entries.push({ name: `model.layers.${b}.${m}`, dtype: 'BF16', shape: [512, 512], data: d });
      }
    }
    entries.push({ name: 'model.norm.weight', dtype: 'F32', shape: [512], data: new Float32Array(512).fill(1) });
    writeSafetensorsSync(src, entries);
    const digests = new Set<string>();
    for (let run = 0; run < 8; run++) {
      const out = join(dir, `out-${run}.safetensors`);
      await compressModel(src, out, { threads: 1 + (run % 2) });
      digests.add(createHash('sha256').update(readFileSync(out)).digest('hex'));
      rmSync(out);
    }
    expect([...digests]).toHaveLength(1);
  });
});
