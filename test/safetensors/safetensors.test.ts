import {
  closeSync,
  existsSync,
  ftruncateSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import {
  InferzipError,
  SafetensorsFile,
  openSafetensors,
  readSafetensorsBuffer,
  serializeSafetensors,
  tensor,
  writeSafetensors,
  writeSafetensorsSync,
} from '../../lib/index.js';
import { MAX_HEADER_BYTES } from '../../lib/safetensors/header.js';
import { errorOf } from '../errors.js';

const MODEL = new URL('../../fixtures/stories260K/model.safetensors', import.meta.url).pathname;
const tmp = () => mkdtempSync(join(tmpdir(), 'iz-st-'));

/** A safetensors image with a hand-written header (for hostile cases). */
function image(header: unknown, dataBytes = 0, rawHeader?: Uint8Array): Uint8Array {
  const json = rawHeader ?? new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  return out;
}

/** Checks both the in-memory parser and the file reader reject the image the same way. */
function expectCorrupt(bytes: Uint8Array, message: RegExp): void {
  const e1 = errorOf(() => readSafetensorsBuffer(bytes));
  expect(e1.code).toBe('CORRUPT_DATA');
  expect(e1.message).toMatch(message);
  const dir = tmp();
  const p = join(dir, 'x.safetensors');
  writeFileSync(p, bytes);
  const e2 = errorOf(() => SafetensorsFile.open(p));
  expect(e2.code).toBe('CORRUPT_DATA');
  expect(e2.message).toMatch(message);
  expect(e2.message).toContain(p); // says where
}

const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };

describe('safetensors reading', () => {
  it('reads the bundled model tensor by tensor', async () => {
    using f = openSafetensors(MODEL);
    expect(f.tensors).toHaveLength(47);
    expect(f.metadata.format).toBe('pt');
    const emb = await f.read('model.embed_tokens.weight');
    expect(emb.dtype).toBe('bf16');
    expect(emb.shape).toEqual([512, 64]);
    expect(f.readSync('model.norm.weight').shape).toEqual([64]);
    expect(errorOf(() => f.entry('nope')).code).toBe('INVALID_ARGUMENT');
  });

  it('rewrites the bundled model byte for byte (order, metadata and its position kept)', async () => {
    using f = SafetensorsFile.open(MODEL);
    expect(f.metadataPosition).toBe('last'); // this file has __metadata__ at the end of its header
    const entries = f.tensors.map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, data: () => f.readBytes(e.name) }));
    const out = join(tmp(), 'copy.safetensors');
    await writeSafetensors(out, entries, { metadata: { ...f.metadata }, metadataPosition: f.metadataPosition });
    expect(Buffer.compare(readFileSync(out), readFileSync(MODEL))).toBe(0);
    // The synchronous writer and the in-memory serializer produce the same bytes.
    const out2 = join(tmp(), 'copy2.safetensors');
    writeSafetensorsSync(
      out2,
      f.tensors.map((e) => ({ name: e.name, dtype: e.dtype, shape: e.shape, data: () => f.readBytesSync(e.name) })),
      {
        metadata: { ...f.metadata },
        metadataPosition: 'last',
      },
    );
    expect(Buffer.compare(readFileSync(out2), readFileSync(MODEL))).toBe(0);
    // Default placement is the reference writer's (metadata first).
    const first = readSafetensorsBuffer(serializeSafetensors({ a: tensor('u8', [1]) }, { k: 'v' }));
    expect(first.metadataPosition).toBe('first');
  });

  it('a tensor named __proto__ is an ordinary tensor', () => {
    const bytes = serializeSafetensors([{ name: '__proto__', dtype: 'u8', shape: [2], data: new Uint8Array([5, 6]) }]);
    const r = readSafetensorsBuffer(bytes);
    expect(r.tensors.map((e) => e.name)).toEqual(['__proto__']);
    expect(Array.from(r.readSync('__proto__').data as Uint8Array)).toEqual([5, 6]);
  });

  it('round-trips in memory with every supported dtype', () => {
    const bytes = serializeSafetensors(
      {
        f: tensor('f32', [2], new Float32Array([1.5, -2])),
        h: tensor('f16', [1], new Uint16Array([0x3c00])),
        b: tensor('bf16', [1, 1], new Uint16Array([0x3f80])),
        u: tensor('u8', [3], new Uint8Array([1, 2, 3])),
        i: tensor('i8', [1], new Int8Array([-1])),
        n: tensor('i32', [1], new Int32Array([-7])),
        w: tensor('u32', [1], new Uint32Array([7])),
        l: tensor('i64', [1], new BigInt64Array([-(2n ** 40n)])),
        e: tensor('f32', [0]),
      },
      { k: 'v' },
    );
    const r = readSafetensorsBuffer(bytes);
    expect(r.tensors.map((e) => e.name)).toEqual(['f', 'h', 'b', 'u', 'i', 'n', 'w', 'l', 'e']);
    expect(Array.from(r.readSync('f').data as Float32Array)).toEqual([1.5, -2]);
    expect((r.readSync('l').data as BigInt64Array)[0]).toBe(-(2n ** 40n));
    expect(r.readSync('e').data).toHaveLength(0);
    expect(r.metadata).toEqual({ k: 'v' });
    expect((8 + Number(new DataView(bytes.buffer).getBigUint64(0, true))) % 8).toBe(0); // aligned data section
  });

  it('reports dtypes without a typed array (F64) as UNSUPPORTED, raw bytes still readable', () => {
    const bytes = serializeSafetensors([{ name: 'd', dtype: 'F64', shape: [1], data: new Float64Array([2.5]) }]);
    const r = readSafetensorsBuffer(bytes);
    expect(errorOf(() => r.readSync('d')).code).toBe('UNSUPPORTED');
    expect(new Float64Array(r.readBytesSync('d').slice().buffer)[0]).toBe(2.5);
  });
});

describe('hostile safetensors headers', () => {
  it('file shorter than the length prefix', () => expectCorrupt(new Uint8Array(5), /too short/));
  it('huge header length', () => {
    const b = new Uint8Array(16);
    new DataView(b.buffer).setBigUint64(0, 2n ** 63n, true);
    expectCorrupt(b, /exceeds/);
  });
  it('header length just over the cap', () => {
    const b = new Uint8Array(16);
    new DataView(b.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES + 1), true);
    expectCorrupt(b, /exceeds/);
  });
  it('header past the end of the file', () => {
    const b = image(ok, 8).subarray(0, 20);
    expectCorrupt(b, /past the end/);
  });
  it('bad JSON', () => expectCorrupt(image('{"a": {'), /not valid JSON/));
  it('JSON that is not an object', () => expectCorrupt(image('[1,2]'), /JSON object/));
  it('invalid UTF-8', () => expectCorrupt(image(null, 0, new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), /UTF-8/));
  it('unknown dtype', () => expectCorrupt(image({ a: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, 16), /unknown dtype/));
  it('offsets past the end (truncated data)', () => expectCorrupt(image(ok, 4), /past the end/));
  it('negative offsets', () => expectCorrupt(image({ a: { dtype: 'U8', shape: [1], data_offsets: [-1, 0] } }, 1), /non-negative/));
  it('end before begin', () => expectCorrupt(image({ a: { dtype: 'U8', shape: [0], data_offsets: [4, 2] } }, 4), /end before/));
  it('non-integer offsets', () => expectCorrupt(image({ a: { dtype: 'U8', shape: [1], data_offsets: [0.5, 1.5] } }, 2), /integers/));
  it('overlapping ranges', () =>
    expectCorrupt(
      image({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12),
      /overlap/,
    ));
  it('shape x element size != byte length', () =>
    expectCorrupt(image({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8), /needs 12/));
  it('bad shape', () => expectCorrupt(image({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, 8), /invalid dimension/));
  it('shape with too many elements', () =>
    expectCorrupt(image({ a: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 8] } }, 8), /too many/));
  it('bad __metadata__', () => expectCorrupt(image({ __metadata__: { a: 1 }, ...ok }, 8), /__metadata__/));
  it('entry that is not an object', () => expectCorrupt(image({ a: 5 }), /must be an object/));
  it('__metadata__ that is not an object', () => expectCorrupt(image({ __metadata__: 'x', ...ok }, 8), /__metadata__ must be an object/));
  it('data_offsets that is not a pair', () =>
    expectCorrupt(image({ a: { dtype: 'U8', shape: [1], data_offsets: [0] } }, 1), /\[begin, end\]/));
  it('header length too small for JSON', () => {
    const b = new Uint8Array(9);
    new DataView(b.buffer).setBigUint64(0, 1n, true);
    expectCorrupt(b, /too small/);
  });

  it('a file truncated after it was opened is CORRUPT_DATA on read, sync and async', async () => {
    const p = join(tmp(), 't.safetensors');
    writeFileSync(p, serializeSafetensors({ a: tensor('f32', [1024]) }));
    using f = SafetensorsFile.open(p);
    truncateSync(p, f.dataStart + 100);
    expect(errorOf(() => f.readSync('a')).code).toBe('CORRUPT_DATA');
    const e = await f.read('a').catch((err: unknown) => err);
    expect(e).toBeInstanceOf(InferzipError);
    expect((e as InferzipError).code).toBe('CORRUPT_DATA');
  });

  it('a missing file is IO_ERROR', () => {
    expect(errorOf(() => openSafetensors('/nonexistent/x.safetensors')).code).toBe('IO_ERROR');
    expect(errorOf(() => SafetensorsFile.open('/nonexistent/x.safetensors')).code).toBe('IO_ERROR');
  });

  it('reading a closed file is DISPOSED', () => {
    const f = SafetensorsFile.open(MODEL);
    f.close();
    expect(errorOf(() => f.readBytesSync('model.norm.weight')).code).toBe('DISPOSED');
  });
});

describe('sharded models', () => {
  function makeShards(index: unknown, files: Record<string, Uint8Array>): string {
    const dir = tmp();
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify(index));
    return dir;
  }
  const s1 = serializeSafetensors({ a: tensor('f32', [1], new Float32Array([1])) });
  const s2 = serializeSafetensors({ b: tensor('f32', [1], new Float32Array([2])) });

  it('reads across shards through the index', async () => {
    const dir = makeShards(
      { metadata: { total_size: 8 }, weight_map: { a: 's1.safetensors', b: 's2.safetensors' } },
      { 's1.safetensors': s1, 's2.safetensors': s2 },
    );
    using m = openSafetensors(dir);
    expect(m.tensors.map((e) => e.name)).toEqual(['a', 'b']);
    expect(Array.from((await m.read('b')).data as Float32Array)).toEqual([2]);
  });
  it('a missing shard is IO_ERROR', () => {
    const dir = makeShards({ weight_map: { a: 's1.safetensors', b: 'gone.safetensors' } }, { 's1.safetensors': s1 });
    expect(errorOf(() => openSafetensors(dir)).code).toBe('IO_ERROR');
  });
  it('path traversal in the index is CORRUPT_DATA', () => {
    const dir = makeShards({ weight_map: { a: '../s1.safetensors' } }, { 's1.safetensors': s1 });
    expect(errorOf(() => openSafetensors(dir)).code).toBe('CORRUPT_DATA');
  });
  it('a tensor listed in the wrong shard is CORRUPT_DATA', () => {
    const dir = makeShards({ weight_map: { a: 's2.safetensors', b: 's1.safetensors' } }, { 's1.safetensors': s1, 's2.safetensors': s2 });
    expect(errorOf(() => openSafetensors(dir)).message).toMatch(/but it is in/);
  });
  it('a tensor stored in two shards is CORRUPT_DATA', () => {
    const dup = serializeSafetensors({ a: tensor('f32', [1], new Float32Array([9])) });
    const dir = makeShards({ weight_map: { a: 's1.safetensors', b: 's3.safetensors' } }, { 's1.safetensors': s1, 's3.safetensors': dup });
    const e = errorOf(() => openSafetensors(dir));
    expect(e.code).toBe('CORRUPT_DATA');
    expect(e.message).toMatch(/appears in both/);
  });
  it('an index that is not JSON is CORRUPT_DATA', () => {
    const dir = makeShards({}, {});
    writeFileSync(join(dir, 'model.safetensors.index.json'), '{ nope');
    expect(errorOf(() => openSafetensors(dir)).code).toBe('CORRUPT_DATA');
  });
  it('an index without weight_map is CORRUPT_DATA', () => {
    const dir = makeShards({ nope: 1 }, {});
    expect(errorOf(() => openSafetensors(dir)).code).toBe('CORRUPT_DATA');
  });
});

describe('atomic writes', () => {
  it('leaves neither output nor temp file when a loader fails', async () => {
    const dir = tmp();
    const out = join(dir, 'o.safetensors');
    const err = await writeSafetensors(out, [
      { name: 'a', dtype: 'F32', shape: [1], data: new Float32Array(1) },
      { name: 'b', dtype: 'F32', shape: [1], data: () => Promise.reject(new Error('disk on fire')) },
    ]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InferzipError);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });
  it('keeps the previous file intact when a rewrite fails', () => {
    const dir = tmp();
    const out = join(dir, 'o.safetensors');
    writeSafetensorsSync(out, { a: tensor('f32', [1], new Float32Array([7])) });
    const before = readFileSync(out);
    expect(() => writeSafetensorsSync(out, [{ name: 'a', dtype: 'F32', shape: [2], data: () => new Float32Array(1) }])).toThrow(
      InferzipError,
    );
    expect(Buffer.compare(readFileSync(out), before)).toBe(0);
    expect(readdirSync(dir)).toEqual(['o.safetensors']);
  });
  it('rejects duplicate names, bad sizes and reserved names before writing', () => {
    expect(
      errorOf(() =>
        serializeSafetensors([
          { name: 'a', dtype: 'F32', shape: [1], data: new Float32Array(1) },
          { name: 'a', dtype: 'F32', shape: [1], data: new Float32Array(1) },
        ]),
      ).code,
    ).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => serializeSafetensors([{ name: 'a', dtype: 'F32', shape: [2], data: new Float32Array(1) }])).code).toBe(
      'SHAPE_MISMATCH',
    );
    expect(errorOf(() => serializeSafetensors([{ name: '__metadata__', dtype: 'F32', shape: [1], data: new Float32Array(1) }])).code).toBe(
      'INVALID_ARGUMENT',
    );
  });
});

describe('files over 2 GiB', () => {
  it('reads a tensor stored beyond 2 GiB by position (sparse file)', async (ctx) => {
    const dir = tmp();
    const p = join(dir, 'big.safetensors');
    const gap = 2 ** 31 + 4096; // the tensor starts past 2 GiB of data
    const header = new TextEncoder().encode(
      JSON.stringify({
        pad: { dtype: 'U8', shape: [gap], data_offsets: [0, gap] },
        x: { dtype: 'F32', shape: [2], data_offsets: [gap, gap + 8] },
      }),
    );
    const fd = openSync(p, 'w');
    try {
      const prefix = new Uint8Array(8);
      new DataView(prefix.buffer).setBigUint64(0, BigInt(header.byteLength), true);
      writeSync(fd, prefix, 0, 8, 0);
      writeSync(fd, header, 0, header.byteLength, 8);
      try {
        ftruncateSync(fd, 8 + header.byteLength + gap + 8);
      } catch (e) {
        ctx.skip(`the filesystem refused a 2 GiB sparse file (${(e as Error).message})`);
      }
      writeSync(fd, new Uint8Array(new Float32Array([3.5, -1]).buffer), 0, 8, 8 + header.byteLength + gap);
    } finally {
      closeSync(fd);
    }
    using f = SafetensorsFile.open(p);
    expect(f.fileSize).toBeGreaterThan(2 ** 31);
    expect(Array.from(f.readSync('x').data as Float32Array)).toEqual([3.5, -1]);
    expect(Array.from((await f.read('x')).data as Float32Array)).toEqual([3.5, -1]);
    expect(f.entry('pad').byteLength).toBe(gap);
  });
});
