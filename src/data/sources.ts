import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { checkRegularFile, readInputFile } from '../util/input-file.js';
import { extname } from 'node:path';
import { RecordBatchReader, Vector, type RecordBatch } from 'apache-arrow';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
// Snappy is built into hyparquet; this adds gzip, zstd (polars' default), brotli and lz4.
import { compressors } from 'hyparquet-compressors';
import { decodeUtf8, depthViolation, jsonLimits, mayOverflow, nonFiniteField, readJsonl, RecordError, type JsonLimits } from './jsonl.js';
import type { RecordLocation } from './record.js';

/** Container formats a data file can come in; the record layout inside is the DataFormat. */
export type FileKind = 'jsonl' | 'json' | 'arrow' | 'parquet';

export interface SourceRecord extends RecordLocation {
  value: unknown;
  /** Set when the record could not even be parsed (a JSONL line that is not JSON); value is then the raw text. */
  error?: RecordError;
}

const ARROW_FILE_MAGIC = 'ARROW1';
const PARQUET_MAGIC = 'PAR1';

/**
 * The container of a file: by extension first (.jsonl/.ndjson, .json, .arrow/.feather/.arrows/
 * .ipc, .parquet), otherwise by its first bytes (PAR1, ARROW1, an Arrow stream's 0xFFFFFFFF
 * continuation marker, '[' for a JSON array, '{' for JSONL).
 */
export async function detectFileKind(path: string): Promise<FileKind> {
  // A device or a FIFO given as data would never end or never open: refused here, by name.
  await checkRegularFile(path);
  const ext = extname(path).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  if (ext === '.json') return 'json';
  if (ext === '.arrow' || ext === '.feather' || ext === '.arrows' || ext === '.ipc') return 'arrow';
  if (ext === '.parquet' || ext === '.pq') return 'parquet';
  const handle = await open(path, 'r');
  try {
    const head = Buffer.alloc(64);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    const bytes = head.subarray(0, bytesRead);
    if (bytes.subarray(0, 4).toString('latin1') === PARQUET_MAGIC) return 'parquet';
    if (bytes.subarray(0, 6).toString('latin1') === ARROW_FILE_MAGIC) return 'arrow';
    if (bytes.length >= 4 && bytes.readUInt32LE(0) === 0xffffffff) return 'arrow';
    const text = bytes.toString('utf8').replace(/^\uFEFF/, '').trimStart();
    if (text.startsWith('[')) return 'json';
    if (text.startsWith('{')) return 'jsonl';
  } finally {
    await handle.close();
  }
  throw new RecordError(path, 1, undefined, 'cannot tell the file type (expected JSONL, a JSON array, Arrow IPC or Parquet); name it with a known extension');
}

/**
 * Streams the records of a file as plain JS values with their location. JSONL goes line by
 * line, Arrow IPC batch by batch, Parquet row group by row group; a JSON array has to be
 * parsed whole (JSON.parse cannot stream), which is fine for the benchmark-sized files that
 * ship as arrays (ProcessBench: 3 MB per subset).
 */
export async function* readRecords(path: string, kind?: FileKind, limits: JsonLimits = {}): AsyncGenerator<SourceRecord> {
  const fileKind = kind ?? (await detectFileKind(path));
  if (kind) await checkRegularFile(path);
  switch (fileKind) {
    case 'jsonl': {
      // Unparsable lines are handed on in order (as records carrying their error), so the
      // caller's fail/skip policy applies to them like to any other bad record.
      const unparsable: SourceRecord[] = [];
      const onParseError = (error: RecordError, raw: string) => unparsable.push({ value: raw, line: error.line, file: path, unit: 'line', error });
      for await (const { value, line, raw } of readJsonl(path, { ...limits, onParseError })) {
        yield* unparsable.splice(0);
        const overflow = mayOverflow(raw) ? nonFiniteField(value) : undefined;
        if (overflow !== undefined) {
          yield { value: raw, line, file: path, unit: 'line', error: overflowError(path, line, overflow) };
          continue;
        }
        yield { value, line, file: path, unit: 'line' };
      }
      yield* unparsable.splice(0);
      return;
    }
    case 'json':
      yield* readJsonArray(path, limits);
      return;
    case 'arrow':
      yield* readArrowRows(path);
      return;
    case 'parquet':
      yield* readParquetRows(path);
      return;
  }
}

/** A JSON array is parsed whole; past this size it belongs in JSONL (V8 strings stop near 512 MiB). */
export const MAX_JSON_ARRAY_BYTES = 256 * 1024 * 1024;

async function* readJsonArray(path: string, limits: JsonLimits): AsyncGenerator<SourceRecord> {
  const { maxDepth } = jsonLimits(limits);
  const size = await checkRegularFile(path);
  if (size > MAX_JSON_ARRAY_BYTES) {
    throw new RecordError(path, 1, undefined, `a JSON array file is parsed whole, and ${size} bytes is more than ${MAX_JSON_ARRAY_BYTES}; convert it to JSONL`);
  }
  let bytes = await readInputFile(path, MAX_JSON_ARRAY_BYTES);
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
  const decoded = decodeUtf8(bytes);
  if ('error' in decoded) {
    throw new RecordError(path, lineAtByte(bytes, decoded.at), undefined, `invalid UTF-8 (byte 0x${bytes[decoded.at].toString(16).padStart(2, '0')})`);
  }
  // The array itself is one level; its records get the same depth allowance as JSONL lines.
  const deep = depthViolation(bytes, maxDepth + 1);
  if (deep >= 0) throw new RecordError(path, lineAtByte(bytes, deep), undefined, `nested deeper than ${maxDepth} levels (PRMKIT_MAX_JSON_DEPTH raises it)`);
  const text = decoded.text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new RecordError(path, lineOfJsonError(text, e as Error), undefined, `invalid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(parsed)) {
    // A single JSON object is one record.
    yield { value: parsed, line: 1, file: path, unit: 'line' };
    return;
  }
  const lines = arrayElementLines(text);
  const screen = mayOverflow(text);
  for (let i = 0; i < parsed.length; i++) {
    const line = lines[i] ?? 1;
    const overflow = screen ? nonFiniteField(parsed[i]) : undefined;
    if (overflow !== undefined) yield { value: parsed[i], line, file: path, unit: 'line', error: overflowError(path, line, overflow) };
    else yield { value: parsed[i], line, file: path, unit: 'line' };
  }
}

/** Records are re-serialised downstream, where a number past the double range would become null. */
function overflowError(file: string, line: number, field: string): RecordError {
  return new RecordError(file, line, field, 'a number too large for a double (read as Infinity, it would be written as null)');
}

/** 1-based line of a byte offset. */
function lineAtByte(bytes: Buffer, offset: number): number {
  let line = 1;
  for (let at = bytes.indexOf(10); at >= 0 && at < offset; at = bytes.indexOf(10, at + 1)) line++;
  return line;
}

/** V8 reports "at position N" (or "line L column C") for JSON syntax errors; turn it into a line. */
function lineOfJsonError(text: string, err: Error): number {
  const lineCol = /line (\d+) column/.exec(err.message);
  if (lineCol) return Number(lineCol[1]);
  const pos = /position (\d+)/.exec(err.message);
  if (!pos) return 1;
  let line = 1;
  const end = Math.min(Number(pos[1]), text.length);
  for (let i = 0; i < end; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/**
 * 1-based line on which each top-level element of a JSON array starts, so errors in a
 * pretty-printed array point at the record. JSON.parse does not expose positions, and no
 * maintained streaming parser is installed, so this is a small scanner that only tracks
 * strings and nesting depth (the text is already known to be valid JSON).
 */
function arrayElementLines(text: string): number[] {
  const starts: number[] = [];
  let line = 1;
  let depth = 0;
  let inString = false;
  let expectElement = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) line++;
    if (inString) {
      if (c === 92) i++; // backslash: skip the escaped char (never a newline in valid JSON)
      else if (c === 34) inString = false;
      continue;
    }
    if (c === 32 || c === 9 || c === 10 || c === 13) continue;
    if (depth === 1 && expectElement && c !== 93) {
      starts.push(line);
      expectElement = false;
    }
    if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      depth++;
      if (depth === 1) expectElement = true;
    } else if (c === 93 || c === 125) depth--;
    else if (c === 44 && depth === 1) expectElement = true;
  }
  return starts;
}

async function* readArrowRows(path: string): AsyncGenerator<SourceRecord> {
  const handle = await open(path, 'r');
  try {
    // A FileHandle gives the file reader random access (batch by batch through the footer);
    // the stream format is read sequentially from the same handle.
    const reader = await RecordBatchReader.from(handle);
    let row = 0;
    for await (const batch of reader) {
      for (const value of batchRows(batch)) {
        row++;
        yield { value, line: row, file: path, unit: 'row' };
      }
    }
  } catch (e) {
    if (e instanceof RecordError) throw e;
    throw new RecordError(path, 1, undefined, `cannot read as Arrow IPC (${(e as Error).message})`, 'row');
  } finally {
    await handle.close();
  }
}

/** Rows of a record batch as plain objects (lists as arrays, int64 as numbers). */
export function batchRows(batch: RecordBatch): Record<string, unknown>[] {
  const names = batch.schema.fields.map((f) => f.name);
  const columns = names.map((name) => batch.getChild(name));
  const rows: Record<string, unknown>[] = new Array(batch.numRows);
  for (let r = 0; r < batch.numRows; r++) {
    const row: Record<string, unknown> = {};
    for (let c = 0; c < names.length; c++) row[names[c]] = toPlain(columns[c]?.get(r) ?? null);
    rows[r] = row;
  }
  return rows;
}

function toPlain(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'bigint') return bigToNumber(value);
  if (value instanceof Vector) return Array.from(value.toArray() as ArrayLike<unknown>, toPlain);
  if (ArrayBuffer.isView(value)) {
    if (value instanceof Uint8Array) return value; // binary column: left as bytes
    return Array.from(value as unknown as ArrayLike<unknown>, toPlain);
  }
  if (Array.isArray(value)) return value.map(toPlain);
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') {
    const source = typeof (value as { toJSON?: unknown }).toJSON === 'function' ? (value as { toJSON(): object }).toJSON() : value;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(source)) out[k] = toPlain(v);
    return out;
  }
  return value;
}

function bigToNumber(value: bigint): number | string {
  return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : value.toString();
}

async function* readParquetRows(path: string): AsyncGenerator<SourceRecord> {
  let file;
  let metadata;
  try {
    file = await asyncBufferFromFile(path);
    metadata = await parquetMetadataAsync(file);
  } catch (e) {
    throw new RecordError(path, 1, undefined, `cannot read as Parquet (${(e as Error).message})`, 'row');
  }
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = (await parquetReadObjects({ file, metadata, rowStart, rowEnd, compressors })) as Record<string, unknown>[];
    } catch (e) {
      throw new RecordError(path, rowStart + 1, undefined, `cannot decode Parquet row group (${(e as Error).message})`, 'row');
    }
    for (let i = 0; i < rows.length; i++) {
      yield { value: toPlain(rows[i]), line: rowStart + i + 1, file: path, unit: 'row' };
    }
    rowStart = rowEnd;
  }
}

/**
 * How many records a file holds, when that is cheap to know (for progress bars): JSONL by
 * counting non-blank lines in one pass over the bytes, Parquet from its footer. Returns
 * undefined for JSON arrays and Arrow IPC (their readers get there as fast).
 */
export async function countRecords(path: string, kind?: FileKind): Promise<number | undefined> {
  const fileKind = kind ?? (await detectFileKind(path));
  if (kind) await checkRegularFile(path);
  if (fileKind === 'parquet') {
    const metadata = await parquetMetadataAsync(await asyncBufferFromFile(path));
    return Number(metadata.num_rows);
  }
  if (fileKind !== 'jsonl') return undefined;
  let lines = 0;
  let lineHasText = false;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (c === 10) {
        if (lineHasText) lines++;
        lineHasText = false;
      } else if (c !== 32 && c !== 13 && c !== 9) lineHasText = true;
    }
  }
  return lineHasText ? lines + 1 : lines;
}
