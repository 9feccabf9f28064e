import type { EncodedSample } from '../model/encode.js';
import type { BatchingOptions } from './limits.js';

/** What one forward pass holds; passed to the beforeForward hook and counted in stats. */
export interface BatchInfo {
  /** Distinct requests with rows in this pass. */
  requests: number;
  /** Rows (encoded items). */
  sequences: number;
  /** Rows x longest row: the padded size the forward pass computes. */
  paddedTokens: number;
}

export interface BatcherStats {
  batches: number;
  sequences: number;
  /** Sum over batches of the distinct requests in each (divide by batches for the mean). */
  requestSlots: number;
  /** Most distinct requests seen in one batch. */
  maxRequestsInBatch: number;
  /** Wall time spent in forward passes, ms (busy time; compare with uptime). */
  forwardMs: number;
  /** Requests admitted and not yet answered. */
  depth: number;
}

/** Thrown by submit when maxQueue requests are already waiting; the server answers 503. */
export class QueueFullError extends Error {
  override name = 'QueueFullError';
}

interface Job {
  scores: (number[] | undefined)[];
  remaining: number;
  /** Rows of this job still in the queue (not yet taken into a batch). */
  queued: number;
  failed: boolean;
  arrival: number;
  resolve(scores: number[][]): void;
  reject(err: Error): void;
}

interface Row {
  job: Job;
  index: number;
  sequence: EncodedSample;
  /** Taken into a batch (or dropped with its failed job). */
  taken: boolean;
}

/** Rows looked at when cutting a batch: enough for any budget, bounded so a pass costs O(window). */
const WINDOW_ROWS = 1024;

export type ForwardFn = (sequences: readonly EncodedSample[]) => Promise<number[][]>;

/**
 * Dynamic batching: rows of many requests wait in one FIFO queue and are cut into forward passes
 * bounded by a padded-token budget and a number of requests. A pass starts when the budget is
 * full, when the oldest row has waited maxWaitMs, or at once after flush(); passes run one at a
 * time (the model is one set of weights on one backend).
 */
export class DynamicBatcher {
  private queue: Row[] = [];
  private head = 0;
  /** Rows queued and not taken. */
  private live = 0;
  private queuedTokens = 0;
  private queuedJobs = 0;
  private open = 0;
  private running = false;
  private flushing = false;
  private wake: (() => void) | undefined;
  private idleWaiters: (() => void)[] = [];
  private counters = { batches: 0, sequences: 0, requestSlots: 0, maxRequestsInBatch: 0, forwardMs: 0 };

  constructor(
    private readonly forward: ForwardFn,
    private readonly opts: BatchingOptions & { maxQueue: number },
    private readonly beforeForward?: (info: BatchInfo) => void | Promise<void>,
  ) {}

  /** Requests admitted and not yet answered. */
  get depth(): number {
    return this.open;
  }

  get full(): boolean {
    return this.open >= this.opts.maxQueue;
  }

  stats(): BatcherStats {
    return { ...this.counters, depth: this.open };
  }

  /** Queues one request's rows; resolves with their scores in order. */
  submit(sequences: readonly EncodedSample[]): Promise<number[][]> {
    if (this.full) return Promise.reject(new QueueFullError(`the queue is full (${this.opts.maxQueue} requests)`));
    if (sequences.length === 0) return Promise.resolve([]);
    return new Promise<number[][]>((resolve, reject) => {
      const job: Job = {
        scores: new Array(sequences.length),
        remaining: sequences.length,
        queued: sequences.length,
        failed: false,
        arrival: Date.now(),
        resolve,
        reject,
      };
      this.open++;
      this.queuedJobs++;
      sequences.forEach((sequence, index) => {
        this.queue.push({ job, index, sequence, taken: false });
        this.live++;
        this.queuedTokens += sequence.inputIds.length;
      });
      this.kick();
    });
  }

  /**
   * From now on rows are forwarded without waiting for company (used while shutting down: no
   * more requests are coming). Resolves when the queue is empty.
   */
  flush(): Promise<void> {
    this.flushing = true;
    this.wake?.();
    return this.idle();
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (!this.running && this.size() === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private size(): number {
    return this.live;
  }

  private ready(): boolean {
    return this.flushing || this.queuedTokens >= this.opts.maxBatchTokens || this.queuedJobs >= this.opts.maxBatchRequests;
  }

  private kick(): void {
    if (!this.running) {
      this.running = true;
      void this.loop();
    } else if (this.ready()) {
      this.wake?.();
    }
  }

  private async loop(): Promise<void> {
    try {
      while (this.size() > 0) {
        // A forward pass on a synchronous backend blocks the event loop, and requests that
        // arrived meanwhile sit unread in their sockets: let the poll phase run (setImmediate
        // comes after it) so they join the next pass instead of waiting for the one after.
        await new Promise<void>((resolve) => setImmediate(resolve));
        await this.waitForBatch();
        const rows = this.take();
        if (rows.length > 0) await this.run(rows);
      }
    } finally {
      this.running = false;
      const waiters = this.idleWaiters.splice(0);
      for (const w of waiters) w();
    }
  }

  /** Waits until a batch is worth running: budget full, oldest row waited long enough, or flushing. */
  private async waitForBatch(): Promise<void> {
    while (!this.ready()) {
      const oldest = this.queue[this.head];
      // The rest of a request already part-scored (it did not fit one pass) waits no more.
      if (oldest.job.queued < oldest.job.scores.length) return;
      const left = oldest.job.arrival + this.opts.maxWaitMs - Date.now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.wake = done;
      });
      this.wake = undefined;
    }
  }

  /**
   * Cuts the next batch: the oldest row, plus the rows of the window closest to it in length
   * (ties: older first) while the padded-token and request budgets allow. Rows of similar length
   * waste little on padding, and serving the oldest row in every pass bounds every row's wait.
   */
  private take(): Row[] {
    this.skipDone();
    const window: Row[] = [];
    for (let i = this.head; i < this.queue.length && window.length < WINDOW_ROWS; i++) {
      const row = this.queue[i];
      if (row.taken) continue;
      if (row.job.failed) this.remove(row);
      else window.push(row);
    }
    if (window.length === 0) {
      this.skipDone();
      return [];
    }
    const anchor = window[0];
    const anchorLength = anchor.sequence.inputIds.length;
    const candidates = window.slice(1).map((row, order) => ({ row, order, gap: Math.abs(row.sequence.inputIds.length - anchorLength) }));
    candidates.sort((a, b) => a.gap - b.gap || a.order - b.order);
    const rows = [anchor];
    const jobs = new Set<Job>([anchor.job]);
    let longest = anchorLength;
    for (const { row } of candidates) {
      const newLongest = Math.max(longest, row.sequence.inputIds.length);
      if ((rows.length + 1) * newLongest > this.opts.maxBatchTokens) continue;
      if (!jobs.has(row.job) && jobs.size >= this.opts.maxBatchRequests) continue;
      rows.push(row);
      jobs.add(row.job);
      longest = newLongest;
    }
    for (const row of rows) this.remove(row);
    this.skipDone();
    return rows;
  }

  /** Takes a row out of the queue's accounting (it stays in the array until the head passes it). */
  private remove(row: Row): void {
    row.taken = true;
    this.live--;
    this.queuedTokens -= row.sequence.inputIds.length;
    row.job.queued--;
    if (row.job.queued === 0) this.queuedJobs--;
  }

  /** Moves the head past taken rows and drops the dead prefix now and then. */
  private skipDone(): void {
    while (this.head < this.queue.length && this.queue[this.head].taken) this.head++;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }

  private async run(rows: Row[]): Promise<void> {
    const jobs = new Set(rows.map((r) => r.job));
    let longest = 0;
    for (const r of rows) longest = Math.max(longest, r.sequence.inputIds.length);
    const info: BatchInfo = { requests: jobs.size, sequences: rows.length, paddedTokens: rows.length * longest };
    let scores: number[][];
    try {
      await this.beforeForward?.(info);
      const start = performance.now();
      scores = await this.forward(rows.map((r) => r.sequence));
      this.counters.forwardMs += performance.now() - start;
      if (scores.length !== rows.length) throw new Error(`forward returned ${scores.length} rows for ${rows.length}`);
    } catch (e) {
      for (const job of jobs) this.fail(job, e instanceof Error ? e : new Error(String(e)));
      return;
    }
    this.counters.batches++;
    this.counters.sequences += rows.length;
    this.counters.requestSlots += jobs.size;
    this.counters.maxRequestsInBatch = Math.max(this.counters.maxRequestsInBatch, jobs.size);
    rows.forEach((row, i) => {
      const job = row.job;
      if (job.failed) return;
      job.scores[row.index] = scores[i];
      job.remaining--;
      if (job.remaining === 0) {
        this.open--;
        job.resolve(job.scores as number[][]);
      }
    });
  }

  private fail(job: Job, err: Error): void {
    if (job.failed) return;
    job.failed = true;
    this.open--;
    job.reject(err);
  }
}
