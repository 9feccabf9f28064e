/**
 * Tokenizing off the event loop. One request's text can take seconds to tokenize (BPE is slower
 * than linear on long words), and a tokenizer call cannot be cut into pieces, so the server hands
 * requests to worker threads: the event loop keeps accepting, answering and batching meanwhile.
 *
 * Two rules keep one client from holding up the others: a large request (by characters) may use
 * every worker but one, so small requests always find a worker free or about to be; and a request
 * that is still tokenizing after timeoutMs has its worker terminated (the only way to stop a
 * synchronous call) and is answered 413, and a fresh worker takes its place.
 */
import { Worker } from 'node:worker_threads';
import type { EncodedSample } from '../model/encode.js';
import type { PrmTokenizer } from '../model/tokenizer.js';
import { workerModuleSource } from '../util/worker-source.js';
import { HttpError } from './errors.js';
import type { EncodeJob, EncodeReply, EncodeWorkerData } from './encode-worker.js';
import type { EncodeLimits, ScoreRequest } from './request.js';

export interface EncodePoolOptions {
  /** Worker threads (default 2). */
  size: number;
  /** A request still tokenizing after this long is refused with 413 (default 30000). */
  timeoutMs: number;
  /** Requests with more characters than this are "large" (default 16384). */
  largeChars: number;
}

export const DEFAULT_ENCODE_POOL: EncodePoolOptions = { size: 2, timeoutMs: 30_000, largeChars: 16_384 };

interface Job {
  id: number;
  request: ScoreRequest;
  limits: EncodeLimits;
  large: boolean;
  resolve(sequences: EncodedSample[]): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  /** Settles when the worker has built its tokenizer (or failed to). */
  started: Promise<void>;
  ready: boolean;
  job?: Job;
  timer?: NodeJS.Timeout;
}

function charCount(request: ScoreRequest): number {
  let n = 0;
  for (const item of request.items) {
    n += item.problem.length;
    for (const step of item.steps) n += step.length;
  }
  return n;
}

export class EncodePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  private readonly workerData: EncodeWorkerData;

  private constructor(
    tokenizer: PrmTokenizer,
    private readonly opts: EncodePoolOptions,
    private readonly log: (line: string) => void,
  ) {
    const files = tokenizer.toFiles();
    this.workerData = { tokenizerJson: files.tokenizerJson, tokenizerConfigJson: files.tokenizerConfigJson, stepToken: tokenizer.stepToken };
  }

  /** Starts the workers and waits until each has built its tokenizer (a failure rejects). */
  static async start(tokenizer: PrmTokenizer, opts: Partial<EncodePoolOptions> = {}, log: (line: string) => void = () => {}): Promise<EncodePool> {
    const full: EncodePoolOptions = { ...DEFAULT_ENCODE_POOL, ...opts };
    if (!Number.isInteger(full.size) || full.size < 1) throw new RangeError(`encode workers must be an integer >= 1, got ${full.size}`);
    const pool = new EncodePool(tokenizer, full, log);
    for (let i = 0; i < full.size; i++) pool.slots.push(pool.spawn());
    try {
      await Promise.all(pool.slots.map((s) => s.started));
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  /** Encodes a request in a worker: the sequences, or the HttpError encodeRequest raised. */
  encode(request: ScoreRequest, limits: EncodeLimits): Promise<EncodedSample[]> {
    if (this.closed) return Promise.reject(new Error('the encode pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, request, limits, large: charCount(request) > this.opts.largeChars, resolve, reject });
      this.dispatch();
    });
  }

  /** Terminates the workers; queued and running requests are refused (503). */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new HttpError(503, 'the server is shutting down'));
    await Promise.all(
      this.slots.map(async (slot) => {
        if (slot.timer) clearTimeout(slot.timer);
        slot.job?.reject(new HttpError(503, 'the server is shutting down'));
        slot.job = undefined;
        await slot.worker.terminate();
      }),
    );
  }

  private spawn(): Slot {
    const worker = new Worker(workerModuleSource(import.meta.url, './encode-worker'), { eval: true, workerData: this.workerData });
    const slot: Slot = { worker, started: Promise.resolve(), ready: false };
    slot.started = new Promise<void>((resolve, reject) => {
      const onStart = (msg: { ready?: boolean; startError?: string }): void => {
        if (msg.startError !== undefined) reject(new Error(`tokenizer worker failed to start: ${msg.startError}`));
        else if (msg.ready) {
          worker.off('message', onStart);
          worker.on('message', (reply: EncodeReply) => this.finish(slot, reply));
          slot.ready = true;
          resolve();
          this.dispatch();
        }
      };
      worker.on('message', onStart);
      worker.once('exit', (code) => reject(new Error(`tokenizer worker exited (code ${code}) before it was ready`)));
    });
    slot.started.catch(() => {});
    worker.on('error', (err) => this.crashed(slot, err));
    worker.on('exit', (code) => {
      if (!this.closed && slot.job) this.crashed(slot, new Error(`tokenizer worker exited with code ${code}`));
    });
    return slot;
  }

  private busyLarge(): number {
    let n = 0;
    for (const s of this.slots) if (s.job?.large) n++;
    return n;
  }

  /** Gives queued jobs to idle, ready workers: oldest first, large ones only within their share. */
  private dispatch(): void {
    if (this.closed) return;
    const largeShare = Math.max(1, this.slots.length - 1);
    for (const slot of this.slots) {
      if (slot.job || !slot.ready) continue;
      const index = this.queue.findIndex((j) => !j.large || this.busyLarge() < largeShare);
      if (index < 0) return;
      const [job] = this.queue.splice(index, 1);
      slot.job = job;
      // A reply can be waiting behind a long forward pass on the event loop when the timer
      // fires (timers run first): one setImmediate lets pending messages in before judging.
      slot.timer = setTimeout(() => setImmediate(() => this.timedOut(slot, job)), this.opts.timeoutMs);
      const message: EncodeJob = { id: job.id, request: job.request, limits: job.limits };
      slot.worker.postMessage(message);
    }
  }

  private finish(slot: Slot, reply: EncodeReply): void {
    const job = slot.job;
    if (!job || job.id !== reply.id) return;
    clearTimeout(slot.timer);
    slot.job = undefined;
    if (reply.ok) {
      job.resolve(reply.sequences.map((s) => ({ inputIds: Array.from(s.inputIds), stepPositions: s.stepPositions, nSteps: s.nSteps })));
    } else {
      job.reject(new HttpError(reply.status, reply.message));
    }
    this.dispatch();
  }

  private timedOut(slot: Slot, job: Job): void {
    if (slot.job !== job) return;
    job.reject(new HttpError(413, `the request took more than ${this.opts.timeoutMs} ms to tokenize; send less text per request`));
    this.replace(slot);
  }

  private crashed(slot: Slot, err: Error): void {
    const job = slot.job;
    if (!job) return;
    this.log(`serve: tokenizer worker failed: ${err.message}`);
    job.reject(err);
    this.replace(slot);
  }

  /** Terminates a slot's worker (its job already answered) and starts a fresh one in its place. */
  private replace(slot: Slot): void {
    clearTimeout(slot.timer);
    slot.job = undefined;
    const index = this.slots.indexOf(slot);
    void slot.worker.terminate();
    if (this.closed || index < 0) return;
    const fresh = this.spawn();
    this.slots[index] = fresh;
    fresh.started.catch((e: Error) => this.log(`serve: ${e.message}`));
  }
}
