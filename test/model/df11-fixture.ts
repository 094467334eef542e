/**
 * Builds a small checkpoint in the published DFloat11 layout from the bundled model with
 * the codec: config.json with dfloat11_config, units `model.layers.<i>.*` (q,k,v,o,gate,
 * up,down) and `model.embed_tokens.*`, norms verbatim, spread over two .safetensors files
 * with no index (as DFloat11 repositories ship them).
 */
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { encodeUnit, unitEntries } from '../../lib/model/codec.js';
import { openSafetensors, writeSafetensors, type SafetensorsWriteEntry } from '../../lib/safetensors/index.js';
import { LLAMA_ORDER, MODEL, REFERENCE_UNIT, dfloat11Config } from './helpers.js';

function bits(bytes: Uint8Array): Uint16Array {
  return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
}

export async function buildDFloat11Fixture(dir: string): Promise<string> {
  using src = openSafetensors(MODEL);
  const first: SafetensorsWriteEntry[] = [];
  const second: SafetensorsWriteEntry[] = [];
  const embed = (await encodeUnit([bits(src.readBytesSync('model.embed_tokens.weight'))])).unit!;
  first.push(...unitEntries('model.embed_tokens', embed));
  for (let i = 0; i < 5; i++) {
    const p = `model.layers.${i}`;
    const unit = (await encodeUnit(LLAMA_ORDER.map((m) => bits(src.readBytesSync(`${p}.${m}.weight`))))).unit!;
    const target = i < 3 ? first : second;
    target.push(...unitEntries(p, unit));
    for (const norm of ['input_layernorm', 'post_attention_layernorm']) {
      const name = `${p}.${norm}.weight`;
      target.push({ name, dtype: 'BF16', shape: src.entry(name).shape, data: src.readBytesSync(name) });
    }
  }
  second.push({ name: 'model.norm.weight', dtype: 'BF16', shape: [64], data: src.readBytesSync('model.norm.weight') });
  await writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), first);
  await writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), second);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(dfloat11Config(), null, 2));
  return dir;
}

/**
 * The reference encoder's unit (non-canonical codes) as a one-unit DFloat11 checkpoint
 * with a non-Llama config: the unit `unit` holds matrices `a` then `b`.
 */
export function buildReferenceUnitFixture(dir: string): string {
  copyFileSync(REFERENCE_UNIT, join(dir, 'model.safetensors'));
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({
      model_type: 'toy',
      dfloat11_config: { version: '0.5.0', threads_per_block: [512], bytes_per_thread: 8, pattern_dict: { unit: ['a', 'b'] } },
    }),
  );
  return dir;
}
