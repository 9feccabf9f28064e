/**
 * What the labeling commands share: opening the client (endpoints, cache), reading the input
 * as StepSamples, labeling many samples concurrently while writing them in input order, and
 * writing the output atomically (a killed run never leaves a complete-looking file).
 */
import { createReadStream } from 'node:fs';
import { orderFields } from '../data/prmkit.js';
import { detectFormat, openStepSamples } from '../data/read.js';
import type { DataFormat } from '../data/formats.js';
import { JsonlWriter } from '../data/jsonl.js';
import type { StepSample } from '../data/types.js';
import { progressBar } from '../util/progress.js';
import { acquireWriteLock } from '../util/write-lock.js';
import { ResponseCache } from './cache.js';
import { OpenAIClient, type ClientOptions } from './client.js';

/** How to reach the model servers: either a ready client, or endpoints (and an optional cache dir). */
export interface EndpointOptions {
  client?: OpenAIClient;
  /** "URL" or "URL1,URL2" or a list. */
  endpoint?: string | string[];
  apiKey?: string;
  /** Requests in flight at once over all endpoints (default CLIENT_DEFAULTS.concurrency). */
  concurrency?: number;
  retries?: number;
  timeoutMs?: number;
  deadlineMs?: number;
  maxReplyBytes?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Persistent response cache directory (resume after a kill re-sends nothing cached). */
  cacheDir?: string;
}

export async function openClient(opts: EndpointOptions): Promise<{ client: OpenAIClient; close: () => Promise<void> }> {
  if (opts.client) return { client: opts.client, close: async () => {} };
  if (!opts.endpoint || (Array.isArray(opts.endpoint) && opts.endpoint.length === 0)) throw new Error('no endpoint given (--endpoint URL[,URL...])');
  const cache = opts.cacheDir ? await ResponseCache.open(opts.cacheDir) : undefined;
  const clientOpts: ClientOptions = {
    endpoints: typeof opts.endpoint === 'string' ? [opts.endpoint] : opts.endpoint,
    apiKey: opts.apiKey,
    cache,
  };
  if (opts.concurrency !== undefined) clientOpts.concurrency = opts.concurrency;
  if (opts.retries !== undefined) clientOpts.maxRetries = opts.retries;
  if (opts.timeoutMs !== undefined) clientOpts.timeoutMs = opts.timeoutMs;
  if (opts.deadlineMs !== undefined) clientOpts.deadlineMs = opts.deadlineMs;
  if (opts.maxReplyBytes !== undefined) clientOpts.maxReplyBytes = opts.maxReplyBytes;
  if (opts.backoffMs !== undefined) clientOpts.backoffMs = opts.backoffMs;
  if (opts.maxBackoffMs !== undefined) clientOpts.maxBackoffMs = opts.maxBackoffMs;
  return { client: new OpenAIClient(clientOpts), close: async () => cache?.close() };
}

export interface InputOptions {
  input: string;
  /** Input layout; detected from the first record when not given. */
  format?: DataFormat;
  onBadRecord?: 'fail' | 'skip';
}

export async function openInput(opts: InputOptions): Promise<{ samples: AsyncGenerator<StepSample>; format: DataFormat }> {
  let format = opts.format;
  if (!format) {
    const detected = await detectFormat(opts.input);
    if (!detected.format) throw new Error(`${opts.input}: cannot tell the record layout from the first record; pass --format`);
    format = detected.format;
  }
  const { samples } = openStepSamples(opts.input, { format, onBadRecord: opts.onBadRecord });
  return { samples, format };
}

/** Non-blank lines of a JSONL file (the progress total), by scanning bytes without parsing. */
export async function countJsonlLines(file: string): Promise<number> {
  let lines = 0;
  let lastWasNewline = true;
  let blank = true;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (c === 10) {
        if (!blank) lines++;
        blank = true;
      } else if (c !== 13 && c !== 32 && c !== 9) blank = false;
    }
    lastWasNewline = chunk[chunk.length - 1] === 10;
  }
  if (!lastWasNewline && !blank) lines++;
  return lines;
}

/**
 * Runs `fn` over items with up to `window` running at once and hands results to `onResult`
 * strictly in input order. A throw from `fn` stops the run (after the others settle).
 */
export async function mapOrdered<T, R>(
  items: AsyncIterable<T>,
  window: number,
  fn: (item: T, index: number) => Promise<R>,
  onResult: (result: R, item: T, index: number) => Promise<void>,
): Promise<void> {
  type Settled = { ok: true; value: R } | { ok: false; error: unknown };
  const queue: { item: T; index: number; done: Promise<Settled> }[] = [];
  const drainOne = async () => {
    const head = queue.shift()!;
    const settled = await head.done;
    if (!settled.ok) throw settled.error;
    await onResult(settled.value, head.item, head.index);
  };
  try {
    let index = 0;
    for await (const item of items) {
      const i = index++;
      queue.push({
        item,
        index: i,
        done: fn(item, i).then(
          (value): Settled => ({ ok: true, value }),
          (error): Settled => ({ ok: false, error }),
        ),
      });
      if (queue.length >= window) await drainOne();
    }
    while (queue.length > 0) await drainOne();
  } catch (e) {
    // Let the work already started finish before the caller closes what it uses.
    await Promise.all(queue.map((q) => q.done));
    throw e;
  }
}

export interface SampleFailure {
  id: string;
  error: string;
}

export interface LabelingRun {
  input: number;
  written: number;
  failed: SampleFailure[];
}

/**
 * The common loop: labels each input sample with `label` (null = a sample that failed, with
 * the reason recorded) and writes the results, in input order, to `out` atomically. Stops
 * when more than maxFailures samples failed.
 */
export async function runLabeling(opts: {
  samples: AsyncIterable<StepSample>;
  total: number;
  out: string;
  progressLabel: string;
  window: number;
  maxFailures: number;
  progress?: boolean;
  label: (sample: StepSample, index: number) => Promise<StepSample>;
  onWritten?: (record: StepSample, input: StepSample) => void;
}): Promise<LabelingRun> {
  // One labeller per output (two would each write the whole file and pay for every request twice).
  const lock = acquireWriteLock(`${opts.out}.lock`, `labels output ${opts.out}`);
  try {
    return await labelLocked(opts);
  } finally {
    lock.release();
  }
}

async function labelLocked(opts: Parameters<typeof runLabeling>[0]): Promise<LabelingRun> {
  // JsonlWriter writes atomically: close() puts the file in place, abort() leaves the old one.
  const writer = await JsonlWriter.open(opts.out);
  const bar = progressBar(opts.progressLabel, opts.total, { enabled: opts.progress });
  const run: LabelingRun = { input: 0, written: 0, failed: [] };
  try {
    await mapOrdered(
      opts.samples,
      opts.window,
      async (sample, index): Promise<{ record: StepSample } | { error: string }> => {
        try {
          return { record: await opts.label(sample, index) };
        } catch (e) {
          return { error: e instanceof Error ? e.message : String(e) };
        }
      },
      async (result, sample) => {
        run.input++;
        bar.tick(1, { failed: run.failed.length });
        if ('error' in result) {
          run.failed.push({ id: sample.id, error: result.error });
          if (run.failed.length > opts.maxFailures) {
            throw new Error(`${run.failed.length} samples failed (more than --max-failures ${opts.maxFailures}); last: ${sample.id}: ${result.error}`);
          }
          return;
        }
        await writer.write(orderFields(result.record));
        run.written++;
        opts.onWritten?.(result.record, sample);
      },
    );
    await writer.close();
  } catch (e) {
    await writer.abort();
    throw e;
  } finally {
    bar.stop();
  }
  return run;
}
