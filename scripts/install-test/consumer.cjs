// CommonJS consumer: the require condition (dist/cjs), a unit round trip and a typed error.
const { InferzipError, backend, compressSync, decompressSync, f32ToBf16, tensor } = require('inferzip');

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
console.log(`cjs: backend ${backend().name}, ${unit.stats.bitsPerWeight.toFixed(2)} bits/weight, round trip exact`);
