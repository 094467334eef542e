import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { CompressedModel, compressModel } from '../../lib/index.js';
import { readConfig } from '../../examples/llama/config.js';
import { DenseCache } from '../../examples/llama/kv.js';
import { Llama, argmax } from '../../examples/llama/model.js';
import { CompressedWeights } from '../../examples/llama/streamed.js';
import { loadAllWeights } from '../../examples/llama/weights.js';

const dir = new URL('../../fixtures/stories260K/', import.meta.url).pathname;
const cfg = readConfig(join(dir, 'config.json'));
const STEPS = 32;
const dense = () => new DenseCache(cfg.layers, cfg.heads, cfg.kvHeads, cfg.headDim, STEPS);

function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

describe('weights streamed block by block from the DFloat11 file', () => {
  let tmp: string;
  let packed: string;
  const reference: Float32Array[] = [];
  const tokens = [1];

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'inferzip-e2e-'));
    packed = join(tmp, 'stories.df11.safetensors');
    await compressModel(join(dir, 'model.safetensors'), packed);
    const plain = new Llama(cfg, loadAllWeights(join(dir, 'model.safetensors'), cfg.layers), dense());
    for (let i = 0; i < STEPS; i++) {
      const l = plain.stepSync(tokens[i]!);
      reference.push(l.slice());
      tokens.push(argmax(l));
    }
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('gives logits bit-identical to the plain BF16 weights at every step (prefetching iterator)', async () => {
    using model = await CompressedModel.open(packed, { device: 'cpu' });
    const weights = await CompressedWeights.open(model, cfg);
    const llama = new Llama(cfg, weights, dense());
    let token = 1;
    for (let i = 0; i < STEPS; i++) {
      const logits = await llama.stepStreamed(token, weights.blocks());
      expect(bits(logits), `step ${i}`).toEqual(bits(reference[i]!));
      token = argmax(logits);
    }
    expect(weights.blocksDecoded).toBe(STEPS * cfg.layers);
  });

  it('gives the same logits through decompressBlock one block at a time', async () => {
    using model = await CompressedModel.open(packed, { device: 'cpu' });
    const weights = await CompressedWeights.open(model, cfg);
    const llama = new Llama(cfg, weights, dense());
    for (let i = 0; i < 8; i++) expect(bits(await llama.step(tokens[i]!)), `step ${i}`).toEqual(bits(reference[i]!));
  });

  it('refuses a config whose layer count does not match the file', async () => {
    using model = await CompressedModel.open(packed, { device: 'cpu' });
    await expect(CompressedWeights.open(model, { ...cfg, layers: 4 })).rejects.toThrow(/5 blocks.*4 layers/);
  });
});
