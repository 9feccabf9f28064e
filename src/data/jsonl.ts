import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { once } from 'node:events';
import { AtomicOutput, type AtomicOutputSet } from '../util/durable-fs.js';

/**
 * A record that does not fit, located by file and 1-based line (or row) and field. Columnar
 * files (Arrow, Parquet) have rows, not lines: unit 'row' prints "file:row N".
 */
export class RecordError extends Error {
  override name = 'RecordError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly field: string | undefined,
    readonly reason: string,
    readonly unit: 'line' | 'row' = 'line',
  ) {
    super(`${file}:${unit === 'row' ? 'row ' : ''}${line}: ${field ? `field "${field}": ` : ''}${reason}`);
  }
}

export interface JsonlLine {
  value: unknown;
  /** 1-based line number in the file. */
  line: number;
  /** The line as written (without its line ending or a leading byte-order mark). */
  raw: string;
}

/** Bounds on one JSON document: checked before it is parsed, so hostile input costs little. */
export interface JsonLimits {
  /** Longest line read, in bytes (default 32 MiB; env PRMKIT_MAX_LINE_BYTES). */
  maxLineBytes?: number;
  /** Deepest nesting of arrays and objects (default 128; env PRMKIT_MAX_JSON_DEPTH). */
  maxDepth?: number;
}

export const DEFAULT_MAX_LINE_BYTES = 32 * 1024 * 1024;
export const DEFAULT_MAX_JSON_DEPTH = 128;

function limitFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got "${raw}"`);
  return value;
}

/** The limits in force: the options given, else the environment, else the defaults. */
export function jsonLimits(opts: JsonLimits = {}): Required<JsonLimits> {
  return {
    maxLineBytes: opts.maxLineBytes ?? limitFromEnv('PRMKIT_MAX_LINE_BYTES', DEFAULT_MAX_LINE_BYTES),
    maxDepth: opts.maxDepth ?? limitFromEnv('PRMKIT_MAX_JSON_DEPTH', DEFAULT_MAX_JSON_DEPTH),
  };
}

const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;

/**
 * Where JSON text first nests arrays/objects deeper than maxDepth (byte offset), or -1.
 * JSON.parse copes with deep input, but everything after it that recurses (JSON.stringify,
 * validation, Arrow conversion) overflows the stack, so deep documents are refused up front.
 * Counting the opening brackets (native indexOf) settles almost every line; only text with many
 * brackets gets the exact scan, which skips strings. Works on UTF-8 bytes: multi-byte sequences
 * never contain ASCII bytes.
 */
export function depthViolation(bytes: Uint8Array, maxDepth: number): number {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let opening = 0;
  for (const ch of [OPEN_BRACE, OPEN_BRACKET]) {
    for (let at = buf.indexOf(ch); at >= 0 && opening <= maxDepth; at = buf.indexOf(ch, at + 1)) opening++;
  }
  if (opening <= maxDepth) return -1;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > maxDepth) return i;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return -1;
}

/**
 * Whether JSON text may hold a number too large for a double (JSON.parse makes it Infinity,
 * which JSON.stringify writes as null): an exponent of three digits or a run of 309 digits.
 * A cheap screen; nonFiniteField settles it on the parsed value.
 */
export function mayOverflow(text: string): boolean {
  return /\d[eE]\+?\d{3}|\d{309}/.test(text);
}

/** Path of the first number in a parsed JSON value that is not finite ("meta.x", "labels[2]"), or undefined. */
export function nonFiniteField(value: unknown, path = ''): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : path || '(the record)';
  if (value === null || typeof value !== 'object') return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = nonFiniteField(value[i], `${path}[${i}]`);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  for (const [key, v] of Object.entries(value)) {
    const found = nonFiniteField(v, path ? `${path}.${key}` : key);
    if (found !== undefined) return found;
  }
  return undefined;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes UTF-8 strictly; on bad bytes, the reason names the first one's offset. */
export function decodeUtf8(bytes: Uint8Array): { text: string } | { error: string; at: number } {
  try {
    return { text: UTF8.decode(bytes) };
  } catch {
    const at = firstInvalidUtf8(bytes);
    return { error: `invalid UTF-8 at byte ${at + 1} of the line (0x${(bytes[at] ?? 0).toString(16).padStart(2, '0')})`, at };
  }
}

/** Offset of the first byte that does not belong to a well-formed UTF-8 sequence. */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    let need: number;
    let min: number;
    if (c < 0x80) {
      i++;
      continue;
    } else if (c >= 0xc2 && c <= 0xdf) [need, min] = [1, 0x80];
    else if (c >= 0xe0 && c <= 0xef) [need, min] = [2, 0x800];
    else if (c >= 0xf0 && c <= 0xf4) [need, min] = [3, 0x10000];
    else return i;
    let cp = c & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const d = b[i + k];
      if (d === undefined || (d & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return Math.max(0, b.length - 1);
}

type RawLine = { bytes: Buffer } | { tooLong: number };

/**
 * Splits a file into lines of bytes, holding at most maxLineBytes of one line: a longer line is
 * skipped to its end and reported by size, so a file without newlines cannot exhaust memory.
 * "\r\n" endings and a UTF-8 byte-order mark at the start are dropped.
 */
async function* fileLines(file: string, maxLineBytes: number): AsyncGenerator<RawLine> {
  const pending: Buffer[] = [];
  let pendingBytes = 0;
  let skipped = 0; // bytes of an over-long line seen so far (0: not skipping)
  let first = true;
  const finish = (tail: Buffer): RawLine => {
    if (skipped > 0) {
      const size = skipped + tail.length;
      skipped = 0;
      pending.length = 0;
      pendingBytes = 0;
      return { tooLong: size };
    }
    let bytes = pending.length === 0 ? tail : Buffer.concat([...pending, tail]);
    pending.length = 0;
    pendingBytes = 0;
    if (first) {
      first = false;
      if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) bytes = bytes.subarray(3);
    }
    if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    if (bytes.length > maxLineBytes) return { tooLong: bytes.length };
    return { bytes };
  };
  const keep = (piece: Buffer): void => {
    if (skipped > 0) {
      skipped += piece.length;
    } else if (pendingBytes + piece.length > maxLineBytes + 4) {
      // (+4: room for a BOM and a "\r" that are not counted against the line)
      skipped = pendingBytes + piece.length;
      pending.length = 0;
      pendingBytes = 0;
      first = false;
    } else {
      pending.push(Buffer.from(piece)); // copied: the stream may reuse its chunk
      pendingBytes += piece.length;
    }
  };
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    let pos = 0;
    for (let nl = chunk.indexOf(10, pos); nl >= 0; nl = chunk.indexOf(10, pos)) {
      const piece = chunk.subarray(pos, nl);
      if (skipped > 0 || pendingBytes + piece.length > maxLineBytes + 4) {
        keep(piece);
        yield finish(Buffer.alloc(0));
      } else {
        yield finish(piece);
      }
      pos = nl + 1;
    }
    if (pos < chunk.length) keep(chunk.subarray(pos));
  }
  if (pendingBytes > 0 || skipped > 0) yield finish(Buffer.alloc(0));
}

/**
 * Streams a JSONL file line by line; blank lines are skipped. A line that is not JSON, not
 * UTF-8, longer than maxLineBytes or nested deeper than maxDepth throws a RecordError naming
 * file:line, unless onParseError is given (then it decides). Invalid UTF-8 is never replaced
 * silently: the line is an error like any other bad record.
 */
export async function* readJsonl(
  file: string,
  opts: { onParseError?: (err: RecordError, raw: string) => void } & JsonLimits = {},
): AsyncGenerator<JsonlLine> {
  const { maxLineBytes, maxDepth } = jsonLimits(opts);
  let line = 0;
  for await (const item of fileLines(file, maxLineBytes)) {
    line++;
    let problem: string | undefined;
    let raw = '';
    let value: unknown;
    if ('tooLong' in item) {
      problem = `line of ${item.tooLong} bytes is longer than the limit of ${maxLineBytes} (PRMKIT_MAX_LINE_BYTES raises it)`;
    } else {
      const decoded = decodeUtf8(item.bytes);
      if ('error' in decoded) {
        problem = decoded.error;
        raw = item.bytes.toString('utf8');
      } else {
        raw = decoded.text;
        if (raw.trim() === '') continue;
        if (depthViolation(item.bytes, maxDepth) >= 0) {
          problem = `nested deeper than ${maxDepth} levels (PRMKIT_MAX_JSON_DEPTH raises it)`;
        } else {
          try {
            value = JSON.parse(raw);
          } catch (e) {
            problem = `invalid JSON (${(e as Error).message})`;
          }
        }
      }
    }
    if (problem !== undefined) {
      const err = new RecordError(file, line, undefined, problem);
      if (opts.onParseError) {
        opts.onParseError(err, raw);
        continue;
      }
      throw err;
    }
    yield { value, line, raw };
  }
}

/**
 * Writes one JSON value per line, respecting stream backpressure. A new file is written
 * atomically (see AtomicOutput): close() puts it in place, abort() leaves the old one.
 */
export class JsonlWriter {
  /** The first error the stream reported (disk full, ...): later writes throw it. */
  private failure: Error | undefined;

  private constructor(
    private readonly stream: WriteStream,
    private readonly output: AtomicOutput | undefined,
  ) {
    stream.on('error', (err) => {
      this.failure ??= err;
    });
  }

  /**
   * With `append`, lines go straight to the end of the existing file (a log that grows); with
   * `inPlace`, to `file` itself (a temporary file that an AtomicOutputSet puts in place).
   */
  static async open(file: string, opts: { append?: boolean; inPlace?: boolean } = {}): Promise<JsonlWriter> {
    await mkdir(dirname(file), { recursive: true });
    const output = opts.append || opts.inPlace ? undefined : await AtomicOutput.create(file);
    const stream = createWriteStream(output ? output.tempPath : file, { encoding: 'utf8', flags: opts.append ? 'a' : 'w' });
    try {
      await once(stream, 'open');
    } catch (err) {
      await output?.discard();
      throw err;
    }
    return new JsonlWriter(stream, output);
  }

  async write(value: unknown): Promise<void> {
    await this.writeLine(JSON.stringify(value));
  }

  /** Writes one line of already serialised JSON (a record spliced as text, numbers as written). */
  async writeLine(json: string): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.stream.write(`${json}\n`)) await once(this.stream, 'drain');
  }

  /** Finishes the file and, for a new file, moves it over the target. */
  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
    await this.output?.commit();
  }

  /** Stops writing and removes what was written; the target keeps its previous content. */
  async abort(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (this.stream.closed) resolve();
      else {
        this.stream.once('close', () => resolve());
        this.stream.end();
      }
    });
    await this.output?.discard();
  }
}

/**
 * Opens `file` for JSONL output, runs `fill`, and puts the file in place only when `fill`
 * resolves: a failure leaves no partial file and any earlier `file` as it was.
 */
export async function writeJsonlAtomically<T>(file: string, fill: (out: JsonlWriter) => Promise<T>): Promise<T> {
  const out = await JsonlWriter.open(file);
  return fillJsonl(out, fill);
}

/**
 * Adds a JSONL file to a set of outputs committed together (see AtomicOutputSet): written now
 * to its temporary name, put in place when the caller commits the set.
 */
export async function addJsonlOutput(set: AtomicOutputSet, file: string, records: Iterable<unknown> | AsyncIterable<unknown>): Promise<void> {
  const out = await JsonlWriter.open(await set.add(file), { inPlace: true });
  await fillJsonl(out, async (w) => {
    for await (const record of records) await w.write(record);
  });
}

async function fillJsonl<T>(out: JsonlWriter, fill: (out: JsonlWriter) => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await fill(out);
  } catch (err) {
    await out.abort();
    throw err;
  }
  await out.close();
  return result;
}

/** Reads a whole JSONL file into memory (for small files: fixtures, score files). */
export async function readJsonlAll(file: string, limits: JsonLimits = {}): Promise<JsonlLine[]> {
  const out: JsonlLine[] = [];
  for await (const item of readJsonl(file, limits)) out.push(item);
  return out;
}
