import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { openSafetensors } from '../../lib/index.js';
import { readConfig } from '../../examples/llama/config.js';
import { DenseCache } from '../../examples/llama/kv.js';
import { Llama, generate } from '../../examples/llama/model.js';
import { loadAllWeights } from '../../examples/llama/weights.js';

const dir = new URL('../../fixtures/stories260K/', import.meta.url).pathname;
const cfg = readConfig(join(dir, 'config.json'));

function model(file: string): Llama {
  return new Llama(cfg, loadAllWeights(join(dir, file), cfg.layers), new DenseCache(cfg.layers, cfg.heads, cfg.kvHeads, cfg.headDim, 64));
}

describe('the example Llama forward pass', () => {
  it('reproduces the reference greedy tokens with the F32 weights', async () => {
    expect(await generate(model('model.f32.safetensors'), 1, 10)).toEqual([461, 461, 401, 401, 401, 461, 378, 455, 473, 456]);
  });

  it('matches the dumped activations fixture (same run, same tokens)', async () => {
    using acts = openSafetensors(new URL('../../fixtures/stories260K-activations.safetensors', import.meta.url).pathname);
    const inputs = Array.from(acts.readSync('tokens').data as Int32Array);
    expect(inputs.slice(0, 11)).toEqual([1, 461, 461, 401, 401, 401, 461, 378, 455, 473, 456]);
    expect(acts.entry('layer.0.k').shape).toEqual([cfg.kvHeads, 256, cfg.headDim]);
  });

  it('runs the BF16 weights too (greedy tokens stay close to F32)', async () => {
    const tokens = await generate(model('model.safetensors'), 1, 10);
    expect(tokens).toHaveLength(10);
    expect(tokens.slice(0, 3)).toEqual([461, 461, 401]);
  });
});
