/**
 * A persistent response cache for API requests, so that a killed labeling run, started again,
 * re-sends nothing it already has.
 *
 * Layout: a directory of append-only JSONL shards, one per process that wrote (so concurrent
 * runs sharing a cache never interleave writes). A line is {"key", "response"}; a response
 * counts as cached only once its line is fsync'd. A torn last line (a kill mid-write) is
 * ignored on load. Only an index (key -> shard, offset, length) is held in memory; responses
 * are read back from disk on a hit, so a cache of millions of responses stays small in RAM.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

/** JSON with object keys sorted at every level: equal values give equal text. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/**
 * The cache key of a request: its API path (e.g. /v1/completions) and body, without the
 * endpoint's host, so the same request sent to any server of a fleet shares one entry.
 */
export function requestKey(path: string, body: unknown): string {
  return createHash('sha256').update(`${path}\n${canonicalJson(body)}`).digest('hex');
}

interface Location {
  shard: string;
  offset: number;
  length: number;
}

interface PendingWrite {
  key: string;
  line: Buffer;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface CacheLoadReport {
  shards: number;
  entries: number;
  /** Lines that were not valid entries (torn writes from a killed run). */
  skippedLines: number;
}

export class ResponseCache {
  private readonly index = new Map<string, Location>();
  private readonly readers = new Map<string, Promise<FileHandle>>();
  private writer: { handle: FileHandle; shard: string; size: number } | null = null;
  private pending: PendingWrite[] = [];
  private flushing: Promise<void> | null = null;
  private closed = false;

  private constructor(
    readonly dir: string,
    readonly loadReport: CacheLoadReport,
  ) {}

  /** Opens (creating if needed) a cache directory and indexes every shard in it. */
  static async open(dir: string): Promise<ResponseCache> {
    await mkdir(dir, { recursive: true });
    const report: CacheLoadReport = { shards: 0, entries: 0, skippedLines: 0 };
    const cache = new ResponseCache(dir, report);
    const shards = (await readdir(dir)).filter((n) => n.endsWith('.jsonl')).sort();
    for (const shard of shards) {
      report.shards++;
      await cache.indexShard(shard);
    }
    report.entries = cache.index.size;
    return cache;
  }

  private async indexShard(shard: string): Promise<void> {
    let offset = 0;
    let carry = Buffer.alloc(0);
    for await (const chunk of createReadStream(join(this.dir, shard)) as AsyncIterable<Buffer>) {
      const data = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
      let start = 0;
      for (let nl = data.indexOf(10, start); nl >= 0; nl = data.indexOf(10, start)) {
        this.indexLine(shard, offset + start, data.subarray(start, nl));
        start = nl + 1;
      }
      offset += start;
      carry = Buffer.from(data.subarray(start));
    }
    // A last line without its newline was cut off mid-write: not an entry.
    if (carry.length > 0) this.loadReport.skippedLines++;
  }

  private indexLine(shard: string, offset: number, line: Buffer): void {
    if (line.length === 0) return;
    try {
      const entry = JSON.parse(line.toString('utf8')) as { key?: unknown; response?: unknown };
      if (typeof entry.key !== 'string' || entry.response === undefined) throw new Error('not an entry');
      if (!this.index.has(entry.key)) this.index.set(entry.key, { shard, offset, length: line.length });
    } catch {
      this.loadReport.skippedLines++;
    }
  }

  get size(): number {
    return this.index.size;
  }

  has(key: string): boolean {
    return this.index.has(key);
  }

  /** Every key held (for tests and reports). */
  keys(): IterableIterator<string> {
    return this.index.keys();
  }

  async get(key: string): Promise<unknown | undefined> {
    const at = this.index.get(key);
    if (!at) return undefined;
    // The promise is shared so that concurrent first reads of a shard open it once.
    let opening = this.readers.get(at.shard);
    if (!opening) this.readers.set(at.shard, (opening = open(join(this.dir, at.shard), 'r')));
    const reader = await opening;
    const buf = Buffer.alloc(at.length);
    await reader.read(buf, 0, at.length, at.offset);
    return (JSON.parse(buf.toString('utf8')) as { response: unknown }).response;
  }

  /** Stores a response; resolves once it is on disk (fsync'd). Concurrent puts share one fsync. */
  put(key: string, response: unknown): Promise<void> {
    if (this.closed) return Promise.reject(new Error('response cache is closed'));
    if (this.index.has(key)) return Promise.resolve();
    const line = Buffer.from(`${JSON.stringify({ key, response })}\n`, 'utf8');
    const done = new Promise<void>((resolve, reject) => this.pending.push({ key, line, resolve, reject }));
    this.flushing ??= this.flushLoop();
    return done;
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        try {
          const writer = await this.openWriter();
          const seen = new Set<string>();
          const fresh = batch.filter((p) => {
            if (this.index.has(p.key) || seen.has(p.key)) return false;
            seen.add(p.key);
            return true;
          });
          const data = Buffer.concat(fresh.map((p) => p.line));
          await writer.handle.write(data, 0, data.length, null);
          await writer.handle.datasync();
          let offset = writer.size;
          for (const p of fresh) {
            this.index.set(p.key, { shard: writer.shard, offset, length: p.line.length - 1 });
            offset += p.line.length;
          }
          writer.size = offset;
          for (const p of batch) p.resolve();
        } catch (e) {
          for (const p of batch) p.reject(e as Error);
        }
      }
    } finally {
      this.flushing = null;
    }
  }

  private async openWriter(): Promise<{ handle: FileHandle; shard: string; size: number }> {
    if (this.writer) return this.writer;
    const shard = `responses-${Date.now()}-${process.pid}.jsonl`;
    const handle = await open(join(this.dir, shard), 'a');
    this.writer = { handle, shard, size: 0 };
    return this.writer;
  }

  /** Waits for pending writes, then closes every file. */
  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    this.closed = true;
    await this.writer?.handle.close();
    this.writer = null;
    for (const r of this.readers.values()) await (await r).close();
    this.readers.clear();
  }
}
