import { expect } from 'chai';
import { withTempDir } from '../support/temp-dir.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  readSafetensors,
  readSafetensorsHeader,
  SafetensorsError,
  SafetensorsReader,
  writeSafetensors,
  type HostTensor,
} from '../../src/model/safetensors.js';

/** A safetensors file from a header object and raw data bytes, built by hand. */
function rawFile(path: string, header: Record<string, unknown>, data: Uint8Array): void {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, json, Buffer.from(data)]));
}

function bytesOf(arr: ArrayBufferView): Uint8Array {
  return new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('safetensors', () => {
  let dir = '';
  withTempDir('prmkit-st-', (d) => (dir = d));

  it('writes F32 with an 8-byte aligned header and reads it back exactly', async () => {
    const tensors = new Map<string, HostTensor>([
      ['a.weight', { shape: [2, 3], data: Float32Array.from([1, -2, 3.5, 1e-30, -0, 7]) }],
      ['b', { shape: [4], data: Float32Array.from([Math.PI, -Math.E, 1e30, 0.1]) }],
      ['scalar', { shape: [], data: Float32Array.from([42]) }],
      ['empty', { shape: [0, 5], data: new Float32Array(0) }],
    ]);
    const file = join(dir, 'm.safetensors');
    await writeSafetensors(file, tensors, { metadata: { note: 'x' } });
    const raw = readFileSync(file);
    const headerLen = Number(raw.readBigUInt64LE(0));
    expect((8 + headerLen) % 8).to.equal(0);
    const header = JSON.parse(raw.subarray(8, 8 + headerLen).toString('utf8'));
    expect(header.__metadata__).to.deep.equal({ note: 'x', format: 'pt' });
    expect(header['a.weight']).to.deep.equal({ dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });

    const back = await readSafetensors(file);
    expect([...back.keys()]).to.deep.equal([...tensors.keys()]);
    for (const [name, t] of tensors) {
      expect(back.get(name)!.shape).to.deep.equal(t.shape);
      expect(Array.from(back.get(name)!.data)).to.deep.equal(Array.from(t.data));
    }
    const parsed = await readSafetensorsHeader(file);
    expect(parsed.metadata).to.deep.equal({ note: 'x', format: 'pt' });
  });

  it('decodes BF16, F16, F64, I64 and I32 to f32', async () => {
    const f16 = Uint16Array.from([0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00, 0x8000, 0x3555]);
    const f16Expected = [1, -2, 0.5, 65504, 2 ** -24, Infinity, -0, 0.333251953125];
    const bf16 = Uint16Array.from([0x3fc0, 0xc040, 0x0001, 0x7f80, 0x4049]);
    const bf16Expected = [1.5, -3, 2 ** -133, Infinity, 3.140625];
    const f64 = Float64Array.from([1.25, -1e-3]);
    const i64 = BigInt64Array.from([-5n, 7n]);
    const i32 = Int32Array.from([-100000, 3]);
    const parts = [f16, bf16, f64, i64, i32].map(bytesOf);
    const offsets: number[][] = [];
    let at = 0;
    for (const p of parts) {
      offsets.push([at, at + p.byteLength]);
      at += p.byteLength;
    }
    const file = join(dir, 'mixed.safetensors');
    rawFile(
      file,
      {
        h: { dtype: 'F16', shape: [2, 4], data_offsets: offsets[0] },
        b: { dtype: 'BF16', shape: [5], data_offsets: offsets[1] },
        d: { dtype: 'F64', shape: [2], data_offsets: offsets[2] },
        l: { dtype: 'I64', shape: [2], data_offsets: offsets[3] },
        i: { dtype: 'I32', shape: [1, 2], data_offsets: offsets[4] },
      },
      Buffer.concat(parts.map((p) => Buffer.from(p))),
    );
    const t = await readSafetensors(file);
    expect(Array.from(t.get('h')!.data)).to.deep.equal(f16Expected);
    expect(t.get('h')!.shape).to.deep.equal([2, 4]);
    expect(Array.from(t.get('b')!.data)).to.deep.equal(bf16Expected);
    expect(Array.from(t.get('d')!.data)).to.deep.equal([1.25, Math.fround(-1e-3)]);
    expect(Array.from(t.get('l')!.data)).to.deep.equal([-5, 7]);
    expect(Array.from(t.get('i')!.data)).to.deep.equal([-100000, 3]);
  });

  it('reads a sharded checkpoint through its index, one tensor at a time', async () => {
    const t1 = new Map<string, HostTensor>([['x.weight', { shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) }]]);
    const t2 = new Map<string, HostTensor>([
      ['y.weight', { shape: [3], data: Float32Array.from([5, 6, 7]) }],
      ['unlisted', { shape: [1], data: Float32Array.from([9]) }],
    ]);
    await writeSafetensors(join(dir, 'model-00001-of-00002.safetensors'), t1);
    await writeSafetensors(join(dir, 'model-00002-of-00002.safetensors'), t2);
    const index = join(dir, 'model.safetensors.index.json');
    writeFileSync(
      index,
      JSON.stringify({ metadata: { total_size: 28 }, weight_map: { 'x.weight': 'model-00001-of-00002.safetensors', 'y.weight': 'model-00002-of-00002.safetensors' } }),
    );
    const reader = await SafetensorsReader.open(index);
    try {
      expect(reader.names().sort()).to.deep.equal(['x.weight', 'y.weight']);
      expect(reader.entry('y.weight')).to.include({ dtype: 'F32', byteLength: 12 });
      expect(Array.from((await reader.read('y.weight')).data)).to.deep.equal([5, 6, 7]);
      expect(Array.from((await reader.read('x.weight')).data)).to.deep.equal([1, 2, 3, 4]);
      expect(reader.metadata).to.deep.equal({ total_size: 28 });
    } finally {
      await reader.close();
    }
    const all = await readSafetensors(index);
    expect(all.size).to.equal(2);

    writeFileSync(index, JSON.stringify({ weight_map: { 'x.weight': 'model-00002-of-00002.safetensors' } }));
    const wrongShard = await rejection(readSafetensors(index));
    expect(wrongShard.message).to.match(/model-00002-of-00002\.safetensors: tensor "x\.weight": listed in .*index\.json but missing from this shard/);
    writeFileSync(index, JSON.stringify({ weight_map: { 'x.weight': 'model-00009.safetensors' } }));
    expect((await rejection(readSafetensors(index))).message).to.match(/model-00009\.safetensors.* does not exist/);
    writeFileSync(index, JSON.stringify({ weight_map: { 'x.weight': '../evil.safetensors' } }));
    expect((await rejection(readSafetensors(index))).message).to.match(/outside the checkpoint directory/);
    writeFileSync(index, JSON.stringify({ weights: {} }));
    expect((await rejection(readSafetensors(index))).message).to.match(/"weight_map" must be an object/);
  });

  it('rejects malformed files with errors naming the file and tensor', async () => {
    const file = join(dir, 'bad.safetensors');
    const data = bytesOf(Float32Array.from([1, 2, 3, 4]));
    const cases: Array<[Record<string, unknown> | null, RegExp]> = [
      [{ t: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, /tensor "t": holds 16 bytes but F32 \[3\] needs 12/],
      [{ t: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }, /tensor "t": data_offsets \[0, 32\] run past the end of the data \(16 bytes\)/],
      [{ t: { dtype: 'Q4', shape: [4], data_offsets: [0, 16] } }, /tensor "t": unsupported dtype "Q4"/],
      [{ t: { dtype: 'F32', shape: [-1], data_offsets: [0, 16] } }, /tensor "t": "shape" must be a list of non-negative integers/],
      [
        { a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } },
        /tensor "b": data overlaps tensor "a"/,
      ],
      [{ __metadata__: { n: 1 } }, /"__metadata__\.n" must be a string/],
    ];
    for (const [header, pattern] of cases) {
      rawFile(file, header!, data);
      const err = await rejection(readSafetensors(file));
      expect(err).to.be.instanceOf(SafetensorsError);
      expect(err.message).to.match(pattern).and.to.contain(file);
    }
    writeFileSync(file, Buffer.from([1, 2, 3]));
    expect((await rejection(readSafetensors(file))).message).to.match(/too short for a safetensors header/);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(1000n);
    writeFileSync(file, Buffer.concat([len, Buffer.from('{}')]));
    expect((await rejection(readSafetensors(file))).message).to.match(/runs past the end of the file/);
    len.writeBigUInt64LE(5n);
    writeFileSync(file, Buffer.concat([len, Buffer.from('{"a":')]));
    expect((await rejection(readSafetensors(file))).message).to.match(/header is not valid JSON/);
  });

  it('refuses to write data that does not match its shape', async () => {
    const tensors = new Map<string, HostTensor>([['w', { shape: [2, 2], data: new Float32Array(3) }]]);
    const err = await rejection(writeSafetensors(join(dir, 'w.safetensors'), tensors));
    expect(err.message).to.match(/tensor "w": has 3 values but shape \[2,2\] needs 4/);
  });
});
