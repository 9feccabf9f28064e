import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';

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
}

/**
 * Streams a JSONL file line by line; blank lines are skipped. A line that is not JSON throws a
 * RecordError naming file:line, unless onParseError is given (then it decides).
 */
export async function* readJsonl(
  file: string,
  opts: { onParseError?: (err: RecordError, raw: string) => void } = {},
): AsyncGenerator<JsonlLine> {
  const input = createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const raw of lines) {
      line++;
      if (raw.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch (e) {
        const err = new RecordError(file, line, undefined, `invalid JSON (${(e as Error).message})`);
        if (opts.onParseError) {
          opts.onParseError(err, raw);
          continue;
        }
        throw err;
      }
      yield { value, line };
    }
  } finally {
    lines.close();
    input.destroy();
  }
}

/** Writes one JSON value per line, respecting stream backpressure. */
export class JsonlWriter {
  private constructor(private readonly stream: WriteStream) {}

  static async open(file: string, opts: { append?: boolean } = {}): Promise<JsonlWriter> {
    await mkdir(dirname(file), { recursive: true });
    const stream = createWriteStream(file, { encoding: 'utf8', flags: opts.append ? 'a' : 'w' });
    await once(stream, 'open');
    return new JsonlWriter(stream);
  }

  async write(value: unknown): Promise<void> {
    if (!this.stream.write(`${JSON.stringify(value)}\n`)) await once(this.stream, 'drain');
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve, reject) => this.stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}

/** Reads a whole JSONL file into memory (for small files: fixtures, score files). */
export async function readJsonlAll(file: string): Promise<JsonlLine[]> {
  const out: JsonlLine[] = [];
  for await (const item of readJsonl(file)) out.push(item);
  return out;
}
