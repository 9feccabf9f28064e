import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import type { CasRequest } from './cas.js';

/**
 * Runs CAS comparisons in a worker thread and waits for each answer synchronously with a deadline
 * (Atomics.wait on a shared flag + receiveMessageOnPort). compute-engine's own time limits do not
 * cover every path (a \sum with 10^8 terms runs for minutes), so a hard bound needs a thread we
 * can kill: on a timeout the worker is terminated, the comparison counts as "not equivalent" and
 * "timeout", and a fresh worker is started on the next call. Written by hand because the
 * synchronous-worker libraries (synckit) do not terminate a worker that overruns its deadline.
 */

export interface CasStats {
  /** Comparisons sent to the CAS worker (cache hits excluded). */
  calls: number;
  cacheHits: number;
  /** Comparisons that overran their deadline (worker killed, result false). */
  timeouts: number;
  /** Comparisons where the CAS threw (result false). */
  errors: number;
  /** Comparisons skipped because the worker could not start (result false). */
  unavailable: number;
  /** Total wall time spent waiting for the worker, in ms. */
  waitMs: number;
}

const STARTUP_TIMEOUT_MS = 60_000;
const CACHE_LIMIT = 20_000;

const stats: CasStats = { calls: 0, cacheHits: 0, timeouts: 0, errors: 0, unavailable: 0, waitMs: 0 };
const cache = new Map<string, boolean>();

export function casStats(): CasStats {
  return { ...stats };
}

export function resetCasStats(): void {
  stats.calls = stats.cacheHits = stats.timeouts = stats.errors = stats.unavailable = stats.waitMs = 0;
}

interface LiveWorker {
  worker: Worker;
  port: MessagePort;
  flag: Int32Array;
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

function startWorker(): LiveWorker | undefined {
  if (startFailure !== undefined) return undefined;
  const flag = new Int32Array(new SharedArrayBuffer(8));
  const { port1, port2 } = new MessageChannel();
  let worker: Worker;
  try {
    worker = new Worker(workerBootstrap(), { eval: true, workerData: { port: port2, flag }, transferList: [port2] });
  } catch (err) {
    startFailure = err instanceof Error ? err.message : String(err);
    if (process.env.PRMKIT_DEBUG) console.error(`prmkit: CAS worker failed to start: ${startFailure}`);
    return undefined;
  }
  worker.unref();
  // Errors surface asynchronously; the ready flag below is what we wait on.
  worker.on('error', () => {});
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Atomics.load(flag, 1) === 0) {
    const left = deadline - Date.now();
    if (left <= 0) {
      void worker.terminate();
      startFailure = `CAS worker did not start within ${STARTUP_TIMEOUT_MS} ms`;
      return undefined;
    }
    Atomics.wait(flag, 1, 0, Math.min(left, 1000));
  }
  if (Atomics.load(flag, 1) === 2) {
    const msg = receiveMessageOnPort(port1)?.message as { startError?: string } | undefined;
    startFailure = msg?.startError ?? 'CAS worker failed to start';
    if (process.env.PRMKIT_DEBUG) console.error(`prmkit: CAS worker failed to start: ${startFailure}`);
    void worker.terminate();
    return undefined;
  }
  return { worker, port: port1, flag };
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
  live ??= startWorker();
  if (!live) {
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
