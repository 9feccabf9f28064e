import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, type BackendName } from '../backend/backend.js';
import { describeKernels, kernelInfo } from '../backend/fused/kernel-choice.js';
import { loadScoringModel } from '../eval/score.js';
import type { PrmModel } from '../model/prm.js';
import type { PrmTokenizer } from '../model/tokenizer.js';
import { bearerTokenMatches } from './auth.js';
import { DynamicBatcher, QueueFullError, type BatchInfo, type BatcherStats } from './batcher.js';
import { BodyReaders, discardBody, parseJsonBody } from './body.js';
import { HostCheck, requireJsonContentType } from './origin.js';
import { HttpError } from './errors.js';
import { forwardOnce } from './forward.js';
import { checkPositive, DEFAULT_BATCHING, DEFAULT_LIMITS, type BatchingOptions, type ServeLimits } from './limits.js';
import { checkRequestCheaply, encodeRequest, type EncodeLimits, type ScoreRequest } from './request.js';
import { handleGetReward, handleScore, SCORING_ROUTES, type ScoringContext } from './reward-routes.js';
import { chatFrame, type ChatFrame } from './query-split.js';
import { AGGREGATORS, isAggregator, type Aggregator } from '../eval/aggregate.js';
import { DEFAULT_ENCODE_POOL, EncodePool } from './encode-pool.js';
import type { EncodedSample } from '../model/encode.js';
import { createStepSplitter, type StepSplitOptions } from '../data/step-split.js';

/** A model already in memory, as loadScoringModel returns it. */
export interface LoadedScoringModel {
  model: PrmModel;
  tokenizer: PrmTokenizer;
}

export interface RewardServerOptions extends Partial<ServeLimits>, Partial<BatchingOptions> {
  /** A checkpoint directory (loaded, and disposed on close), or a model already loaded (kept). */
  model: string | LoadedScoringModel;
  /** Name reported by /health (default: the directory's basename, or "prm"). */
  modelName?: string;
  /** Default 8000; 0 picks a free port (see the returned url). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Host names (besides the bound address) requests may carry in Host; "*" allows any (default none). */
  allowedHosts?: string[];
  /** When set, every route needs `Authorization: Bearer <token>` (401 otherwise). */
  token?: string;
  /** Backend selected before loading a model directory (default auto). */
  backend?: BackendName;
  /** Seconds a 503 asks the client to wait (Retry-After); default 1. */
  retryAfterSeconds?: number;
  /** close() waits this long for open connections, then cuts them (default 30000). */
  drainTimeoutMs?: number;
  /**
   * Worker threads that tokenize requests, so a long text never blocks the event loop (default
   * 2); 0 tokenizes on the event loop (for programs that embed the server and want no threads).
   */
  encodeWorkers?: number;
  /** A request still tokenizing after this long is refused with 413 (default 30000). */
  encodeTimeoutMs?: number;
  /** Called before each forward pass (metrics, tracing; tests use it to hold the batcher). */
  beforeForward?: (info: BatchInfo) => void | Promise<void>;
  /** Log lines (start, errors); default stderr. */
  log?: (line: string) => void;
  /** How `{problem, response}` items are cut into steps (data/step-split.ts; default paragraphs). */
  split?: StepSplitOptions;
  /** How step scores become one reward per item (/get_reward, and /v1/score's "reward"); default min. */
  aggregate?: Aggregator;
}

export interface RewardServerStats extends BatcherStats {
  /** Requests answered, by status code. */
  responses: Record<number, number>;
  draining: boolean;
}

export interface RewardServer {
  /** e.g. http://127.0.0.1:8000 */
  url: string;
  /** Stops accepting, answers every admitted request, closes connections, frees the model. */
  close(): Promise<void>;
  stats(): RewardServerStats;
}

const JSON_TYPE = 'application/json; charset=utf-8';
/** How long a refused request's body is waited for before answering anyway (see discardBody). */
const DISCARD_WAIT_MS = 2_000;
/** How long close() waits with nothing arriving before it stops listening (see close). */
const QUIET_MS = 1000;

/**
 * Starts the reward server: POST /v1/score, POST /get_reward (OpenRLHF's remote reward model,
 * reward-routes.ts) and GET /health over node:http, requests batched
 * across clients by a DynamicBatcher. Resolves once it listens.
 */
export async function startRewardServer(opts: RewardServerOptions): Promise<RewardServer> {
  const limits: ServeLimits = {
    maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_LIMITS.maxBodyBytes,
    maxSteps: opts.maxSteps ?? DEFAULT_LIMITS.maxSteps,
    maxTokens: opts.maxTokens ?? DEFAULT_LIMITS.maxTokens,
    maxQueue: opts.maxQueue ?? DEFAULT_LIMITS.maxQueue,
    bodyTimeoutMs: opts.bodyTimeoutMs ?? DEFAULT_LIMITS.bodyTimeoutMs,
    maxBodiesPerAddress: opts.maxBodiesPerAddress ?? DEFAULT_LIMITS.maxBodiesPerAddress,
    maxBodiesReading: opts.maxBodiesReading ?? DEFAULT_LIMITS.maxBodiesReading,
  };
  const bodyReaders = new BodyReaders(limits);
  const batching: BatchingOptions = {
    maxBatchTokens: opts.maxBatchTokens ?? DEFAULT_BATCHING.maxBatchTokens,
    maxWaitMs: opts.maxWaitMs ?? DEFAULT_BATCHING.maxWaitMs,
    maxBatchRequests: opts.maxBatchRequests ?? DEFAULT_BATCHING.maxBatchRequests,
  };
  checkPositive({ ...limits, ...batching }, ['maxWaitMs']);
  if (opts.token !== undefined && opts.token.length === 0) throw new RangeError('token must not be empty');
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  // Checked before the model loads: a bad option is the caller's error, not a request's.
  const splitter = createStepSplitter(opts.split);
  const aggregate = opts.aggregate ?? 'min';
  if (!isAggregator(aggregate)) throw new RangeError(`aggregate must be one of ${AGGREGATORS.join(', ')}, got "${String(aggregate)}"`);
  const retryAfter = String(opts.retryAfterSeconds ?? 1);

  let loaded: LoadedScoringModel;
  let ownsModel = false;
  let modelName = opts.modelName;
  if (typeof opts.model === 'string') {
    await selectBackend(opts.backend ?? 'auto', { log });
    log(describeKernels(kernelInfo()));
    loaded = await loadScoringModel(opts.model);
    ownsModel = true;
    modelName ??= basename(resolve(opts.model));
  } else {
    loaded = opts.model;
  }
  modelName ??= 'prm';
  const { model, tokenizer } = loaded;
  const backendName = tf.getBackend();
  const maxLength = model.config.maxPositionEmbeddings;

  let encodePool: EncodePool | undefined;
  const encodeWorkers = opts.encodeWorkers ?? DEFAULT_ENCODE_POOL.size;
  if (encodeWorkers > 0) {
    try {
      encodePool = await EncodePool.start(tokenizer, { size: encodeWorkers, timeoutMs: opts.encodeTimeoutMs ?? DEFAULT_ENCODE_POOL.timeoutMs }, log);
    } catch (e) {
      if (ownsModel) model.dispose();
      throw e;
    }
  }
  const encode = async (request: ScoreRequest, encodeLimits: EncodeLimits): Promise<EncodedSample[]> =>
    encodePool ? encodePool.encode(request, encodeLimits) : encodeRequest(tokenizer, request, encodeLimits);
  // Requests from admission (after the body is read) until answered: tokenizing, queued or
  // scoring. maxQueue bounds them all, not only those already in the batcher.
  let admitted = 0;

  const batcher = new DynamicBatcher(
    (sequences) => forwardOnce(model, tokenizer.padTokenId, sequences),
    { ...batching, maxQueue: limits.maxQueue },
    opts.beforeForward,
  );
  const responses: Record<number, number> = {};
  let draining = false;

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    responses[status] = (responses[status] ?? 0) + 1;
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': JSON_TYPE,
      'Content-Length': String(Buffer.byteLength(text)),
      'Cache-Control': 'no-store',
      ...(draining ? { Connection: 'close' } : {}),
      ...headers,
    });
    res.end(text);
  }

  function health(): Record<string, unknown> {
    const counters = batcher.stats();
    return {
      status: draining ? 'draining' : 'ok',
      ready: !draining,
      model: modelName,
      backend: backendName,
      queue_depth: batcher.depth,
      max_queue: limits.maxQueue,
      forward_passes: counters.batches,
      sequences_scored: counters.sequences,
      requests_per_pass: counters.batches === 0 ? 0 : counters.requestSlots / counters.batches,
      forward_ms: Math.round(counters.forwardMs),
      limits: {
        max_body_bytes: limits.maxBodyBytes,
        max_steps: limits.maxSteps,
        max_tokens: limits.maxTokens,
        max_length: maxLength,
        max_batch_tokens: batching.maxBatchTokens,
        max_wait_ms: batching.maxWaitMs,
        max_batch_requests: Number.isFinite(batching.maxBatchRequests) ? batching.maxBatchRequests : null,
      },
    };
  }

  // What the scoring routes (reward-routes.ts) share: admission, limits, encoding, the batcher.
  let frame: ChatFrame | undefined;
  const scoring: ScoringContext = {
    async readJson(req, res) {
      requireJsonContentType(req);
      // The body is read whole (within its deadline and its address's share) before the request
      // may take a queue slot: a slow upload holds no slot.
      const body = await bodyReaders.read(req);
      if (admitted >= limits.maxQueue) throw busy();
      admitted++;
      res.once('close', () => admitted--);
      return parseJsonBody(body);
    },
    async score(request) {
      const encodeLimits: EncodeLimits = { maxSteps: limits.maxSteps, maxTokens: limits.maxTokens, maxLength };
      // The limits that need no tokenizing first; the tokenizing itself runs off the event loop.
      checkRequestCheaply(tokenizer, request, encodeLimits);
      const sequences = await encode(request, encodeLimits);
      try {
        return await batcher.submit(sequences);
      } catch (e) {
        if (e instanceof QueueFullError) throw busy();
        throw e;
      }
    },
    splitter,
    frame: () => (frame ??= chatFrame(tokenizer)),
    aggregate,
  };

  function busy(): HttpError {
    return new HttpError(503, draining ? 'the server is shutting down' : `the queue is full (${limits.maxQueue} requests); retry later`, {
      'Retry-After': retryAfter,
    });
  }

  const answer = (handler: (ctx: ScoringContext, req: IncomingMessage, res: ServerResponse) => Promise<unknown>) => async (req: IncomingMessage, res: ServerResponse) =>
    send(res, 200, await handler(scoring, req, res));
  const routes: Record<string, { methods: string[]; handle(req: IncomingMessage, res: ServerResponse): Promise<void> | void }> = {
    '/v1/score': { methods: ['POST'], handle: answer(handleScore) },
    '/get_reward': { methods: ['POST'], handle: answer(handleGetReward) },
    '/health': { methods: ['GET', 'HEAD'], handle: (_req, res) => send(res, 200, health()) },
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    hostCheck.check(req);
    const path = (req.url ?? '/').split('?')[0];
    const route = Object.prototype.hasOwnProperty.call(routes, path) ? routes[path] : undefined;
    if (!route) throw new HttpError(404, `no route ${path} (routes: POST /v1/score, POST /get_reward, GET /health)`);
    if (!route.methods.includes(req.method ?? '')) {
      throw new HttpError(405, `${req.method} is not allowed on ${path} (use ${route.methods.join(' or ')})`, { Allow: route.methods.join(', ') });
    }
    if (opts.token !== undefined && !bearerTokenMatches(req.headers.authorization, opts.token)) {
      throw new HttpError(401, 'missing or wrong bearer token', { 'WWW-Authenticate': 'Bearer' });
    }
    if (draining && (SCORING_ROUTES as readonly string[]).includes(path)) throw busy();
    await route.handle(req, res);
  }

  // Requests being handled (reading, queued or scoring): close() waits for all of them.
  const inFlight = new Set<Promise<void>>();
  // When a connection or request last arrived or an answer last went out (a client whose answer
  // closed its connection reconnects for its next request): close() waits for a quiet moment.
  let lastArrival = Date.now();
  // Responses not yet sent: a drain that runs out of time answers them 503 rather than cutting them.
  const unanswered = new Set<ServerResponse>();
  // Set once the port is known (before the first request can arrive).
  let hostCheck!: HostCheck;
  const server = createServer((req, res) => {
    lastArrival = Date.now();
    unanswered.add(res);
    res.once('close', () => {
      unanswered.delete(res);
      lastArrival = Date.now();
    });
    const done = handle(req, res).catch(async (e: unknown) => {
      if (e instanceof HttpError) {
        // A request refused before its body was read (busy, draining, unauthorised, ...): read
        // and drop a body of allowed size first, so the answer is not lost to a reset.
        if (!req.complete && e.status !== 413 && e.status !== 408) await discardBody(req, limits.maxBodyBytes, DISCARD_WAIT_MS);
        // Still unread (too large, or too slow): close the connection after answering, so the
        // rest of that body is not parsed as the next request.
        const unread = !req.complete;
        send(res, e.status, { error: e.message }, unread ? { ...e.headers, Connection: 'close' } : e.headers);
        if (unread) req.resume();
        return;
      }
      log(`serve: internal error on ${req.method} ${req.url}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      send(res, 500, { error: 'internal error' });
    });
    inFlight.add(done);
    void done.finally(() => inFlight.delete(done));
  });
  server.on('connection', () => {
    lastArrival = Date.now();
  });
  // A client that trickles its request in cannot hold a connection forever.
  server.requestTimeout = 60_000;
  server.headersTimeout = 20_000;

  try {
    await new Promise<void>((resolveListen, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 8000, opts.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolveListen();
      });
    });
  } catch (e) {
    await encodePool?.close();
    if (ownsModel) model.dispose();
    throw e;
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  hostCheck = new HostCheck(opts.host ?? '127.0.0.1', address.port, opts.allowedHosts);

  let closing: Promise<void> | undefined;
  async function close(): Promise<void> {
    draining = true;
    // The listener stays open while draining: a connection the kernel has already accepted (in
    // the backlog while a forward pass held the event loop) is answered 503 with a body instead
    // of being reset, and so is every request that arrives meanwhile. Requests admitted before
    // are answered in full: the batcher stops waiting for company, and every handler is awaited.
    const drainMs = opts.drainTimeoutMs ?? 30_000;
    const deadline = Date.now() + drainMs;
    let expire!: () => void;
    const expired = new Promise<void>((resolve) => (expire = resolve));
    const timer = setTimeout(() => {
      // Out of time: whatever is still unanswered gets 503 with a body, then connections close.
      for (const res of unanswered) send(res, 503, { error: `the server shut down before answering (drain limit ${drainMs} ms)` }, { 'Retry-After': retryAfter });
      expire();
    }, drainMs);
    const settled = async (): Promise<void> => {
      while (inFlight.size > 0 && Date.now() < deadline) await Promise.race([Promise.allSettled([...inFlight]), expired]);
    };
    try {
      await Promise.race([batcher.flush(), expired]);
      await settled();
      // Stop listening once nothing new has come in for a moment, so the backlog has been
      // accepted and answered. Node accepts one waiting connection per turn of the event loop,
      // in its poll phase, which follows the timers: after a timer (late, if the process was
      // starved of CPU) one setImmediate lets a poll phase run before quiet is judged.
      for (;;) {
        await new Promise((resolve) => setImmediate(resolve));
        await settled();
        if (Date.now() - lastArrival >= QUIET_MS || Date.now() >= deadline) break;
        await new Promise((resolve) => setTimeout(resolve, QUIET_MS / 4));
      }
      const closed = new Promise<void>((done) => server.close(() => done()));
      // Responses sent while draining carried "Connection: close", so their connections end by
      // themselves; idle keep-alive ones are closed now, the rest once the answers are out.
      server.closeIdleConnections();
      const cut = setTimeout(() => server.closeAllConnections(), Date.now() < deadline ? deadline - Date.now() : 1000);
      await closed;
      clearTimeout(cut);
    } finally {
      clearTimeout(timer);
      await encodePool?.close();
      if (ownsModel) model.dispose();
    }
  }

  return {
    url,
    close: () => (closing ??= close()),
    stats: () => ({ ...batcher.stats(), responses: { ...responses }, draining }),
  };
}
