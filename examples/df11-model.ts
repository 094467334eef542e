/**
 * Compress the bundled model, decode it block by block, rebuild the original file.
 *   node --import tsx examples/df11-model.ts
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { CompressedModel, compressModel, decompressModel, inspectModel, verifyModel } from '../lib/index.js';

const dir = mkdtempSync(join(tmpdir(), 'inferzip-example-'));
try {
  const packed = join(dir, 'stories260K.df11.safetensors');
  const r = await compressModel('fixtures/stories260K', packed, {
    onProgress: (p) => process.stderr.write(`\r${p.unitsDone}/${p.unitsTotal} units`),
  });
  process.stderr.write('\n');
  console.log(`${r.inputBytes} -> ${r.outputBytes} bytes; ${r.bitsPerWeight.toFixed(2)} bits/weight (bound ${r.entropyBound.toFixed(2)})`);

  const report = await inspectModel(packed);
  for (const u of report.units) console.log(`${u.prefix}: ${u.bitsPerWeight.toFixed(2)} bits/weight, bound ${u.entropyBound?.toFixed(2)}`);

  // Units stay compressed on the device; each block is decoded just before use.
  {
    using model = await CompressedModel.open(packed, { device: 'auto' });
    for await (const block of model.blocks({ prefetch: true })) {
      const q = await block.get('self_attn.q_proj.weight').toTensor(); // host copy (bf16 bits)
      console.log(`block ${block.ordinal}: q_proj [${q.shape.join(', ')}], first word 0x${q.data[0]!.toString(16)}`);
    }
    console.log('device bytes held:', model.deviceBytes);
  }

  console.log('verify:', (await verifyModel(packed)).ok);
  const restored = join(dir, 'model.safetensors');
  await decompressModel(packed, restored);
  console.log('byte-identical:', readFileSync(restored).equals(readFileSync('fixtures/stories260K/model.safetensors')));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
