import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { CasRequest } from './cas.js';

/**
 * Runs CAS comparisons in a worker thread and waits for each answer synchronously with a deadline
 * (Atomics.wait on a shared flag + receiveMessageOnPort). compute-engine's own time limits do not
 * cover every path (a \sum with 10^8 terms runs for minutes), so a hard bound needs a thread we
 * can kill: on a timeout the worker is terminated, the comparison counts as "not equivalent" and
 * "timeout", and a fresh worker starts loading at once (its start-up is waited for, outside any
 * deadline, by the next comparison). Written by hand because the
 * synchronous-worker libraries (synckit) do not terminate a worker that overruns its deadline.
 */

export interface CasStats {
  /** Comparisons sent to the CAS worker (cache hits excluded). */
  calls: number;
  cacheHits: number;
  /** Comparisons that overran their deadline (worker killed) or found the answer's budget spent; result false. */
  timeouts: number;
  /** Comparisons where the CAS threw (result false). */
  errors: number;
  /** Comparisons skipped because the worker could not start (result false). */
  unavailable: number;
  /** Total wall time spent waiting for comparisons, in ms (start-up excluded). */
  waitMs: number;
  /** Workers started (1 + one per timeout). */
  starts: number;
  /** Total wall time spent waiting for workers to start, in ms. */
  startupMs: number;
}

const STARTUP_TIMEOUT_MS = 60_000;
const CACHE_LIMIT = 20_000;

const stats: CasStats = { calls: 0, cacheHits: 0, timeouts: 0, errors: 0, unavailable: 0, waitMs: 0, starts: 0, startupMs: 0 };
const cache = new Map<string, boolean>();

export function casStats(): CasStats {
  return { ...stats };
}

/** A comparison skipped because its answer's overall CAS budget ran out: counted as a timeout. */
export function noteBudgetExhausted(): void {
  stats.timeouts++;
}

export function resetCasStats(): void {
  stats.calls = stats.cacheHits = stats.timeouts = stats.errors = stats.unavailable = stats.waitMs = 0;
  stats.starts = stats.startupMs = 0;
}

interface LiveWorker {
  worker: Worker;
  port: MessagePort;
  /** [0]: 1 when the current request is answered; [1]: 1 ready, 2 failed to start. */
  flag: Int32Array;
  ready: boolean;
}

let live: LiveWorker | undefined;
let startFailure: string | undefined;
let nextId = 1;

/**
 * An ESM bootstrap evaluated in the worker: it imports cas-worker (.js when compiled; .ts from
 * source, after registering tsx in the thread since Node 20 workers do not inherit its loader) and
 * reports a failed import on the flag (index 1 = 2) instead of leaving the caller to time out.
 */
function workerBootstrap(): string {
  const fromSource = import.meta.url.endsWith('.ts');
  const workerUrl = new URL(fromSource ? './cas-worker.ts' : './cas-worker.js', import.meta.url).href;
  let register = '';
  if (fromSource) {
    // import.meta.resolve is missing when tsx loads this file as CommonJS; require.resolve then
    // finds the CommonJS build of the API, whose ESM twin sits next to it.
    const tsxApi =
      typeof import.meta.resolve === 'function'
        ? import.meta.resolve('tsx/esm/api')
        : pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api').replace(/\.cjs$/, '.mjs')).href;
    register = `const { register } = await import(${JSON.stringify(tsxApi)}); register();`;
  }
  return [
    `import { workerData } from 'node:worker_threads';`,
    `try { ${register} await import(${JSON.stringify(workerUrl)}); }`,
    `catch (err) { workerData.port.postMessage({ startError: String(err && err.stack || err) });`,
    `  Atomics.store(workerData.flag, 1, 2); Atomics.notify(workerData.flag, 1); }`,
  ].join('\n');
}

/** Creates a worker without waiting for it: its start-up overlaps whatever the caller does next. */
function spawnWorker(): LiveWorker | undefined {
  if (startFailure !== undefined) return undefined;
  const flag = new Int32Array(new SharedArrayBuffer(8));
  const { port1, port2 } = new MessageChannel();
  let worker: Worker;
  try {
    worker = new Worker(workerBootstrap(), { eval: true, workerData: { port: port2, flag }, transferList: [port2] });
  } catch (err) {
    failStart(err instanceof Error ? err.message : String(err));
    return undefined;
  }
  worker.unref();
  // Errors surface asynchronously; the ready flag is what the caller waits on.
  worker.on('error', () => {});
  stats.starts++;
  return { worker, port: port1, flag, ready: false };
}

function failStart(reason: string): void {
  startFailure = reason;
  if (process.env.PRMKIT_DEBUG) console.error(`prmkit: CAS worker failed to start: ${reason}`);
}

/**
 * Blocks until the worker (spawned if needed) has loaded compute-engine. Start-up is not part of
 * any comparison's deadline; returns the ms spent waiting, so callers can exclude it from theirs.
 */
export function ensureCasReady(): number {
  live ??= spawnWorker();
  if (!live || live.ready) return 0;
  const started = performance.now();
  const deadline = started + STARTUP_TIMEOUT_MS;
  while (Atomics.load(live.flag, 1) === 0) {
    const left = deadline - performance.now();
    if (left <= 0) break;
    Atomics.wait(live.flag, 1, 0, Math.min(left, 1000));
  }
  const state = Atomics.load(live.flag, 1);
  if (state === 1) {
    live.ready = true;
  } else {
    const msg = state === 2 ? (receiveMessageOnPort(live.port)?.message as { startError?: string } | undefined) : undefined;
    failStart(msg?.startError ?? `CAS worker did not start within ${STARTUP_TIMEOUT_MS} ms`);
    killWorker();
  }
  const waited = performance.now() - started;
  stats.startupMs += waited;
  return waited;
}

function killWorker(): void {
  if (!live) return;
  void live.worker.terminate().catch(() => {});
  live.port.close();
  live = undefined;
}

/** Terminates the worker (tests, or a CLI that wants a clean exit); the next call restarts it. */
export function shutdownCas(): void {
  killWorker();
}

/**
 * Compares two LaTeX scalars in the CAS worker, giving up after timeoutMs. Results are cached, so
 * repeated pairs (majority voting, BoN) cost one call.
 */
export function casEquivalentBounded(req: CasRequest, timeoutMs: number): boolean {
  const key = `${req.mode}\u0000${req.relTol}\u0000${req.a}\u0000${req.b}`;
  const cached = cache.get(key);
  if (cached !== undefined) {
    stats.cacheHits++;
    return cached;
  }
  ensureCasReady();
  if (!live?.ready) {
    stats.unavailable++;
    return false;
  }
  stats.calls++;
  const id = nextId++;
  const started = performance.now();
  Atomics.store(live.flag, 0, 0);
  live.port.postMessage({ id, req });
  const deadline = started + timeoutMs;
  while (Atomics.load(live.flag, 0) === 0) {
    const left = deadline - performance.now();
    if (left <= 0 || (Atomics.wait(live.flag, 0, 0, left) === 'timed-out' && Atomics.load(live.flag, 0) === 0)) {
      stats.waitMs += performance.now() - started;
      stats.timeouts++;
      killWorker();
      live = spawnWorker(); // the replacement loads while grading goes on
      return false; // not cached: a later call with a longer deadline may succeed
    }
  }
  // One request is in flight at a time and a worker that overran is replaced, so the only
  // message on the port is the reply to this request (posted before the flag was set).
  const msg = receiveMessageOnPort(live.port)?.message as { id: number; equal: boolean; error?: string } | undefined;
  const reply = msg && msg.id === id ? msg : { id, equal: false, error: 'CAS reply missing' };
  stats.waitMs += performance.now() - started;
  if (reply.error !== undefined) stats.errors++;
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(key, reply.equal);
  return reply.equal;
}
