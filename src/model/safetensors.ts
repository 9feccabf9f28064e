import { open, stat, type FileHandle } from 'node:fs/promises';
import { readInputText } from '../util/input-file.js';
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import { dirname, isAbsolute, join, normalize } from 'node:path';

/**
 * Reads and writes the safetensors format (https://github.com/huggingface/safetensors):
 * an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and
 * byte range, then the raw little-endian data. Written by hand because no maintained npm
 * package reads tensor by tensor from disk (multi-GB checkpoints must not sit in one Buffer)
 * and converts bf16/f16 to f32. Every tensor comes back as a Float32Array: compute is f32.
 */

export interface HostTensor {
  shape: number[];
  data: Float32Array;
}

export type SafetensorsDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const ITEM_SIZE: Record<SafetensorsDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** The spec caps the JSON header at 100 MB; a larger length means a corrupt or foreign file. */
const MAX_HEADER_BYTES = 100_000_000;
/** fs reads are limited to 2 GiB per call; tensors are read in chunks below that. */
const READ_CHUNK_BYTES = 1 << 30;

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
  constructor(
    readonly file: string,
    readonly tensor: string | undefined,
    readonly reason: string,
  ) {
    super(`${file}: ${tensor !== undefined ? `tensor "${tensor}": ` : ''}${reason}`);
  }
}

export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** The file holding the data. */
  file: string;
  /** Absolute byte offset of the data in the file. */
  byteOffset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  file: string;
  entries: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

function assertLittleEndianHost(): void {
  if (endianness() !== 'LE') throw new Error('safetensors: big-endian hosts are not supported');
}

export async function readSafetensorsHeader(file: string): Promise<SafetensorsHeader> {
  const fh = await open(file, 'r');
  try {
    return await readHeaderFrom(fh, file);
  } finally {
    await fh.close();
  }
}

async function readHeaderFrom(fh: FileHandle, file: string): Promise<SafetensorsHeader> {
  const fail = (reason: string, tensor?: string): never => {
    throw new SafetensorsError(file, tensor, reason);
  };
  const { size } = await fh.stat();
  if (size < 8) fail(`file is ${size} bytes, too short for a safetensors header`);
  const lenBuf = Buffer.alloc(8);
  await readExactly(fh, lenBuf, 0, file);
  const headerLen = Number(lenBuf.readBigUInt64LE(0));
  if (headerLen > MAX_HEADER_BYTES) fail(`header length ${headerLen} exceeds the 100 MB limit (not a safetensors file?)`);
  if (8 + headerLen > size) fail(`header length ${headerLen} runs past the end of the file (${size} bytes)`);
  const headerBuf = Buffer.alloc(headerLen);
  await readExactly(fh, headerBuf, 8, file);
  let parsed: unknown;
  try {
    parsed = JSON.parse(headerBuf.toString('utf8'));
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) fail('header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataSize = size - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('"__metadata__" must be an object');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`"__metadata__.${k}" must be a string`);
      }
      metadata = value as Record<string, string>;
      continue;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('entry must be an object', name);
    const v = value as Record<string, unknown>;
    if (typeof v.dtype !== 'string' || !(v.dtype in ITEM_SIZE)) {
      fail(`unsupported dtype ${JSON.stringify(v.dtype)} (supported: ${Object.keys(ITEM_SIZE).join(', ')})`, name);
    }
    const dtype = v.dtype as SafetensorsDtype;
    if (!Array.isArray(v.shape) || v.shape.some((d) => typeof d !== 'number' || !Number.isInteger(d) || d < 0)) {
      fail(`"shape" must be a list of non-negative integers, got ${JSON.stringify(v.shape)}`, name);
    }
    const shape = v.shape as number[];
    const offsets = v.data_offsets;
    if (!Array.isArray(offsets) || offsets.length !== 2 || offsets.some((o) => typeof o !== 'number' || !Number.isInteger(o) || o < 0)) {
      fail(`"data_offsets" must be [begin, end] byte offsets, got ${JSON.stringify(offsets)}`, name);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`data_offsets [${begin}, ${end}] end before they begin`, name);
    if (end > dataSize) fail(`data_offsets [${begin}, ${end}] run past the end of the data (${dataSize} bytes)`, name);
    const expected = shape.reduce((a, b) => a * b, 1) * ITEM_SIZE[dtype];
    if (end - begin !== expected) fail(`holds ${end - begin} bytes but ${dtype} ${JSON.stringify(shape)} needs ${expected}`, name);
    entries.set(name, { name, dtype, shape, file, byteOffset: dataStart + begin, byteLength: end - begin });
  }
  const byStart = [...entries.values()].filter((e) => e.byteLength > 0).sort((a, b) => a.byteOffset - b.byteOffset);
  for (let i = 1; i < byStart.length; i++) {
    const prev = byStart[i - 1];
    if (byStart[i].byteOffset < prev.byteOffset + prev.byteLength) fail(`data overlaps tensor "${prev.name}"`, byStart[i].name);
  }
  return { file, entries, metadata };
}

async function readExactly(fh: FileHandle, target: Uint8Array, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < target.byteLength) {
    const length = Math.min(READ_CHUNK_BYTES, target.byteLength - done);
    const { bytesRead } = await fh.read(target, done, length, position + done);
    if (bytesRead === 0) throw new SafetensorsError(file, undefined, `unexpected end of file at byte ${position + done}`);
    done += bytesRead;
  }
}

/**
 * A set of tensors on disk (one .safetensors file, or the shards of a
 * `*.safetensors.index.json`), read one tensor at a time.
 */
export class SafetensorsReader {
  private handles = new Map<string, FileHandle>();

  private constructor(
    /** The path opened: a .safetensors file or an index. */
    readonly path: string,
    private readonly entries: Map<string, SafetensorsEntry>,
    /** `__metadata__` of the single file, or `metadata` of the index. */
    readonly metadata: Record<string, unknown>,
  ) {}

  /** Opens a .safetensors file, or a sharded checkpoint through its `.index.json`. */
  static async open(path: string): Promise<SafetensorsReader> {
    assertLittleEndianHost();
    if (path.endsWith('.json')) return SafetensorsReader.openIndex(path);
    const header = await readSafetensorsHeader(path);
    return new SafetensorsReader(path, header.entries, header.metadata);
  }

  private static async openIndex(indexPath: string): Promise<SafetensorsReader> {
    const fail = (reason: string): never => {
      throw new SafetensorsError(indexPath, undefined, reason);
    };
    let index: unknown;
    try {
      index = JSON.parse(await readInputText(indexPath));
    } catch (e) {
      return fail(`cannot read the index (${(e as Error).message})`);
    }
    if (index === null || typeof index !== 'object' || Array.isArray(index)) fail('index is not a JSON object');
    const weightMap = (index as Record<string, unknown>).weight_map;
    if (weightMap === null || typeof weightMap !== 'object' || Array.isArray(weightMap)) fail('"weight_map" must be an object of tensor name -> shard file');
    const dir = dirname(indexPath);
    const shardOf = new Map<string, string>();
    for (const [name, shard] of Object.entries(weightMap as Record<string, unknown>)) {
      if (typeof shard !== 'string' || shard === '') fail(`"weight_map.${name}" must be a shard file name`);
      const rel = normalize(shard as string);
      if (isAbsolute(rel) || rel.startsWith('..')) fail(`"weight_map.${name}" points outside the checkpoint directory: ${JSON.stringify(shard)}`);
      shardOf.set(name, join(dir, rel));
    }
    const headers = new Map<string, SafetensorsHeader>();
    for (const shard of new Set(shardOf.values())) {
      try {
        await stat(shard);
      } catch {
        fail(`shard ${JSON.stringify(shard)} listed in "weight_map" does not exist`);
      }
      headers.set(shard, await readSafetensorsHeader(shard));
    }
    const entries = new Map<string, SafetensorsEntry>();
    for (const [name, shard] of shardOf) {
      const entry = headers.get(shard)!.entries.get(name);
      if (!entry) throw new SafetensorsError(shard, name, `listed in ${indexPath} but missing from this shard`);
      entries.set(name, entry);
    }
    const metadata = (index as Record<string, unknown>).metadata;
    return new SafetensorsReader(indexPath, entries, metadata && typeof metadata === 'object' ? (metadata as Record<string, unknown>) : {});
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  entry(name: string): SafetensorsEntry | undefined {
    return this.entries.get(name);
  }

  /** Reads one tensor from disk and converts it to f32. */
  async read(name: string): Promise<HostTensor> {
    const entry = this.entryOrThrow(name);
    const count = entry.byteLength / ITEM_SIZE[entry.dtype];
    return { shape: [...entry.shape], data: await readAsFloat32(await this.handle(entry), entry, 0, count) };
  }

  /** `count` values of a tensor from flat position `start` (row-major), as f32: a slice without reading the rest. */
  async readRange(name: string, start: number, count: number): Promise<Float32Array> {
    const entry = this.entryOrThrow(name);
    const total = entry.byteLength / ITEM_SIZE[entry.dtype];
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > total) {
      throw new SafetensorsError(this.path, name, `range [${start}, ${start + count}) outside its ${total} values`);
    }
    return readAsFloat32(await this.handle(entry), entry, start, count);
  }

  /**
   * A tensor as f32 chunks of whole rows (along its first dimension), each at most `maxBytes`
   * of f32 (at least one row): a tensor larger than what one JS array or one read may hold is
   * loaded without ever being whole on the host.
   */
  async *readRowChunks(name: string, maxBytes: number): AsyncGenerator<{ rowStart: number; rows: number; data: Float32Array }> {
    const entry = this.entryOrThrow(name);
    const rowsTotal = entry.shape.length === 0 ? 1 : entry.shape[0];
    const rowItems = entry.shape.length === 0 ? 1 : entry.shape.slice(1).reduce((a, b) => a * b, 1);
    const rowsPerChunk = Math.max(1, Math.floor(maxBytes / Math.max(1, rowItems * 4)));
    const fh = await this.handle(entry);
    for (let rowStart = 0; rowStart < rowsTotal; rowStart += rowsPerChunk) {
      const rows = Math.min(rowsPerChunk, rowsTotal - rowStart);
      yield { rowStart, rows, data: await readAsFloat32(fh, entry, rowStart * rowItems, rows * rowItems) };
    }
  }

  private entryOrThrow(name: string): SafetensorsEntry {
    const entry = this.entries.get(name);
    if (!entry) throw new SafetensorsError(this.path, name, 'no such tensor');
    return entry;
  }

  private async handle(entry: SafetensorsEntry): Promise<FileHandle> {
    let fh = this.handles.get(entry.file);
    if (!fh) {
      fh = await open(entry.file, 'r');
      this.handles.set(entry.file, fh);
    }
    return fh;
  }

  async close(): Promise<void> {
    const handles = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(handles.map((h) => h.close()));
  }
}

/** Reads every tensor of a .safetensors file or sharded index into memory. */
export async function readSafetensors(path: string): Promise<Map<string, HostTensor>> {
  const reader = await SafetensorsReader.open(path);
  try {
    const out = new Map<string, HostTensor>();
    for (const name of reader.names()) out.set(name, await reader.read(name));
    return out;
  } finally {
    await reader.close();
  }
}

/** Items [start, start + count) of a tensor, converted to f32. */
async function readAsFloat32(fh: FileHandle, entry: SafetensorsEntry, start: number, count: number): Promise<Float32Array> {
  const item = ITEM_SIZE[entry.dtype];
  const out = new Float32Array(count);
  if (entry.dtype === 'F32') {
    await readExactly(fh, new Uint8Array(out.buffer), entry.byteOffset + start * item, entry.file);
    return out;
  }
  // Other dtypes are read in chunks into a scratch buffer and converted, so the raw copy of a
  // large tensor is never held whole next to its f32 version.
  const chunkItems = Math.max(1, Math.floor((64 << 20) / item));
  const scratch = new ArrayBuffer(Math.min(count, chunkItems) * item);
  for (let done = 0; done < count; done += chunkItems) {
    const n = Math.min(chunkItems, count - done);
    const bytes = new Uint8Array(scratch, 0, n * item);
    await readExactly(fh, bytes, entry.byteOffset + (start + done) * item, entry.file);
    convertToFloat32(entry.dtype, scratch, n, out, done);
  }
  return out;
}

let halfTable: Float32Array | undefined;

/** All 65536 f16 bit patterns as f32: a table lookup is the fastest conversion in JS. */
function f16Table(): Float32Array {
  if (halfTable) return halfTable;
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) table[h] = sign * frac * 2 ** -24;
    else if (exp === 31) table[h] = frac === 0 ? sign * Infinity : NaN;
    else table[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  halfTable = table;
  return table;
}

function convertToFloat32(dtype: SafetensorsDtype, src: ArrayBuffer, n: number, out: Float32Array, at: number): void {
  switch (dtype) {
    case 'BF16': {
      // bf16 is the top half of an f32: shift the bits into place.
      const s = new Uint16Array(src, 0, n);
      const o = new Uint32Array(out.buffer, out.byteOffset + at * 4, n);
      for (let i = 0; i < n; i++) o[i] = s[i] << 16;
      return;
    }
    case 'F16': {
      const s = new Uint16Array(src, 0, n);
      const table = f16Table();
      for (let i = 0; i < n; i++) out[at + i] = table[s[i]];
      return;
    }
    case 'F64': {
      const s = new Float64Array(src, 0, n);
      for (let i = 0; i < n; i++) out[at + i] = s[i];
      return;
    }
    case 'I64': {
      const s = new BigInt64Array(src, 0, n);
      for (let i = 0; i < n; i++) out[at + i] = Number(s[i]);
      return;
    }
    case 'I32':
      out.set(new Int32Array(src, 0, n), at);
      return;
    case 'I16':
      out.set(new Int16Array(src, 0, n), at);
      return;
    case 'I8':
      out.set(new Int8Array(src, 0, n), at);
      return;
    case 'U8':
    case 'BOOL':
      out.set(new Uint8Array(src, 0, n), at);
      return;
    case 'F32':
      out.set(new Float32Array(src, 0, n), at);
      return;
  }
}

export interface TensorSpec {
  name: string;
  shape: number[];
}

export interface WriteSafetensorsOptions {
  /** Extra `__metadata__` entries; `format: "pt"` is always set (transformers expects it). */
  metadata?: Record<string, string>;
  /** fsync the file before closing it. */
  fsync?: boolean;
}

/** A tensor's f32 data: whole, or as consecutive chunks (in order) that together hold it. */
export type TensorData = Float32Array | AsyncIterable<Float32Array> | Iterable<Float32Array>;

/**
 * Writes F32 tensors. The data of each tensor is asked for only when it is written, and may come
 * in chunks, so a caller can stream a model out of device memory one piece at a time. Returns
 * the sha256 of the bytes written (hex), computed on the way.
 */
export async function writeSafetensorsStreaming(
  file: string,
  specs: readonly TensorSpec[],
  dataOf: (spec: TensorSpec, index: number) => TensorData | Promise<TensorData>,
  opts: WriteSafetensorsOptions = {},
): Promise<{ bytes: number; sha256: string }> {
  assertLittleEndianHost();
  const header: Record<string, unknown> = { __metadata__: { ...(opts.metadata ?? {}), format: 'pt' } };
  let offset = 0;
  const seen = new Set<string>();
  for (const spec of specs) {
    if (spec.name === '__metadata__' || seen.has(spec.name)) throw new SafetensorsError(file, spec.name, 'duplicate or reserved tensor name');
    seen.add(spec.name);
    const bytes = spec.shape.reduce((a, b) => a * b, 1) * 4;
    header[spec.name] = { dtype: 'F32', shape: spec.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  // Pad the header with spaces so the data starts 8-byte aligned, as the spec recommends.
  const padded = Math.ceil(json.length / 8) * 8;
  const head = Buffer.alloc(8 + padded, 0x20);
  head.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(head, 8);
  const hash = createHash('sha256');
  let written = 0;
  const put = async (fh: FileHandle, bytes: Uint8Array) => {
    hash.update(bytes);
    await writeAll(fh, bytes);
    written += bytes.byteLength;
  };
  const fh = await open(file, 'w');
  try {
    await put(fh, head);
    for (let i = 0; i < specs.length; i++) {
      const spec = specs[i];
      const expected = spec.shape.reduce((a, b) => a * b, 1);
      const data = await dataOf(spec, i);
      let count = 0;
      const chunks: AsyncIterable<Float32Array> | Iterable<Float32Array> = data instanceof Float32Array ? [data] : data;
      for await (const chunk of chunks) {
        count += chunk.length;
        if (count > expected) break;
        await put(fh, new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      }
      if (count !== expected) throw new SafetensorsError(file, spec.name, `has ${count} values but shape ${JSON.stringify(spec.shape)} needs ${expected}`);
    }
    if (opts.fsync) await fh.sync();
  } finally {
    await fh.close();
  }
  return { bytes: written, sha256: hash.digest('hex') };
}

export interface ShardedWriteOptions extends WriteSafetensorsOptions {
  /** Largest shard in bytes (data, not counting the header); a tensor larger than this gets a shard of its own. */
  maxShardBytes: number;
}

/**
 * Writes tensors as `<base>.safetensors`, or, when they exceed maxShardBytes, as Hugging Face
 * shards `<base>-0000k-of-0000n.safetensors` plus `<base>.safetensors.index.json` (weight_map and
 * total_size), the layout transformers' save_pretrained uses. Returns each written file with its
 * size and sha256.
 */
export async function writeSafetensorsSharded(
  dir: string,
  base: string,
  specs: readonly TensorSpec[],
  dataOf: (spec: TensorSpec, index: number) => TensorData | Promise<TensorData>,
  opts: ShardedWriteOptions,
): Promise<{ file: string; bytes: number; sha256: string }[]> {
  const sizeOf = (spec: TensorSpec) => spec.shape.reduce((a, b) => a * b, 1) * 4;
  const shards: number[][] = [];
  let current: number[] = [];
  let currentBytes = 0;
  specs.forEach((spec, i) => {
    const bytes = sizeOf(spec);
    if (current.length > 0 && currentBytes + bytes > opts.maxShardBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(i);
    currentBytes += bytes;
  });
  if (current.length > 0 || shards.length === 0) shards.push(current);
  const written: { file: string; bytes: number; sha256: string }[] = [];
  if (shards.length === 1) {
    const file = `${base}.safetensors`;
    written.push({ file, ...(await writeSafetensorsStreaming(join(dir, file), specs, dataOf, opts)) });
    return written;
  }
  const pad = (k: number) => String(k).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  for (let k = 0; k < shards.length; k++) {
    const file = `${base}-${pad(k + 1)}-of-${pad(shards.length)}.safetensors`;
    const shardSpecs = shards[k].map((i) => specs[i]);
    for (const spec of shardSpecs) {
      weightMap[spec.name] = file;
      totalSize += sizeOf(spec);
    }
    written.push({ file, ...(await writeSafetensorsStreaming(join(dir, file), shardSpecs, (spec, j) => dataOf(spec, shards[k][j]), opts)) });
  }
  const indexFile = `${base}.safetensors.index.json`;
  const index = Buffer.from(JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2) + '\n');
  const fh = await open(join(dir, indexFile), 'w');
  try {
    await writeAll(fh, index);
    if (opts.fsync) await fh.sync();
  } finally {
    await fh.close();
  }
  written.push({ file: indexFile, bytes: index.byteLength, sha256: createHash('sha256').update(index).digest('hex') });
  return written;
}

async function writeAll(fh: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const length = Math.min(READ_CHUNK_BYTES, bytes.byteLength - done);
    const { bytesWritten } = await fh.write(bytes, done, length);
    done += bytesWritten;
  }
}

/** Writes in-memory tensors as F32 (in the map's order). */
export async function writeSafetensors(
  file: string,
  tensors: ReadonlyMap<string, HostTensor>,
  opts: WriteSafetensorsOptions = {},
): Promise<void> {
  const specs = [...tensors].map(([name, t]) => ({ name, shape: t.shape }));
  await writeSafetensorsStreaming(file, specs, (spec) => tensors.get(spec.name)!.data, opts);

}
