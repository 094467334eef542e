// CommonJS consumer: the require condition (dist/cjs), a unit round trip, a typed error, and a
// file whose header is large enough (> 4 MB) to be parsed by the CommonJS build's worker thread.
const { InferzipError, backend, compressSync, decompressSync, f32ToBf16, tensor, verifyModel, writeSafetensorsSync } = require('inferzip');

const words = f32ToBf16(Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i) * 0.05));
const unit = compressSync({ w: tensor('bf16', [64, 64], words) });
const back = decompressSync(unit).w;
if (!back.data.every((x, i) => x === words[i])) throw new Error('cjs: round trip differs');
let typed = false;
try {
  tensor('bf16', [3], new Uint16Array(2));
} catch (err) {
  typed = err instanceof InferzipError && typeof err.code === 'string';
}
if (!typed) throw new Error('cjs: expected an InferzipError');

(async () => {
  // verifyModel parses headers of 4 MB and more on a worker (dist/cjs/model/parse-worker.js here);
  // a plain file then gives NOT_COMPRESSED, after the worker parsed it.
  writeSafetensorsSync('big-header.safetensors', { w: tensor('bf16', [64, 64], words) }, { metadata: { notes: 'x'.repeat(5 << 20) } });
  const code = await verifyModel('big-header.safetensors').then(
    () => 'no error',
    (err) => err.code,
  );
  if (code !== 'NOT_COMPRESSED') throw new Error(`cjs: expected NOT_COMPRESSED for the large plain header, got ${code}`);
  console.log(
    `cjs: backend ${backend().name}, ${unit.stats.bitsPerWeight.toFixed(2)} bits/weight, round trip exact, 5 MB header through the worker`,
  );
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
