import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend, type BackendName } from '../model/backend.js';
import { loadScoringModel } from '../eval/score.js';
import type { PrmModel } from '../model/prm.js';
import type { PrmTokenizer } from '../model/tokenizer.js';
import { bearerTokenMatches } from './auth.js';
import { DynamicBatcher, QueueFullError, type BatchInfo, type BatcherStats } from './batcher.js';
import { parseJsonBody, readBody } from './body.js';
import { HttpError } from './errors.js';
import { forwardOnce } from './forward.js';
import { checkPositive, DEFAULT_BATCHING, DEFAULT_LIMITS, type BatchingOptions, type ServeLimits } from './limits.js';
import { encodeRequest, parseScoreRequest } from './request.js';

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
  /** When set, every route needs `Authorization: Bearer <token>` (401 otherwise). */
  token?: string;
  /** Backend selected before loading a model directory (default auto). */
  backend?: BackendName;
  /** Seconds a 503 asks the client to wait (Retry-After); default 1. */
  retryAfterSeconds?: number;
  /** close() waits this long for open connections, then cuts them (default 30000). */
  drainTimeoutMs?: number;
  /** Called before each forward pass (metrics, tracing; tests use it to hold the batcher). */
  beforeForward?: (info: BatchInfo) => void | Promise<void>;
  /** Log lines (start, errors); default stderr. */
  log?: (line: string) => void;
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

/**
 * Starts the reward server: POST /v1/score and GET /health over node:http, requests batched
 * across clients by a DynamicBatcher. Resolves once it listens.
 */
export async function startRewardServer(opts: RewardServerOptions): Promise<RewardServer> {
  const limits: ServeLimits = {
    maxBodyBytes: opts.maxBodyBytes ?? DEFAULT_LIMITS.maxBodyBytes,
    maxSteps: opts.maxSteps ?? DEFAULT_LIMITS.maxSteps,
    maxTokens: opts.maxTokens ?? DEFAULT_LIMITS.maxTokens,
    maxQueue: opts.maxQueue ?? DEFAULT_LIMITS.maxQueue,
  };
  const batching: BatchingOptions = {
    maxBatchTokens: opts.maxBatchTokens ?? DEFAULT_BATCHING.maxBatchTokens,
    maxWaitMs: opts.maxWaitMs ?? DEFAULT_BATCHING.maxWaitMs,
    maxBatchRequests: opts.maxBatchRequests ?? DEFAULT_BATCHING.maxBatchRequests,
  };
  checkPositive({ ...limits, ...batching }, ['maxWaitMs']);
  if (opts.token !== undefined && opts.token.length === 0) throw new RangeError('token must not be empty');
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const retryAfter = String(opts.retryAfterSeconds ?? 1);

  let loaded: LoadedScoringModel;
  let ownsModel = false;
  let modelName = opts.modelName;
  if (typeof opts.model === 'string') {
    await selectBackend(opts.backend ?? 'auto', { log });
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

  async function score(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const type = req.headers['content-type'];
    if (type !== undefined && !/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
      throw new HttpError(415, `Content-Type must be application/json, got "${type}"`);
    }
    // Cheap refusal before reading anything: the body would only be thrown away.
    if (batcher.full) throw busy();
    const request = parseScoreRequest(parseJsonBody(await readBody(req, limits.maxBodyBytes)));
    const sequences = encodeRequest(tokenizer, request, { maxSteps: limits.maxSteps, maxTokens: limits.maxTokens, maxLength });
    let scores: number[][];
    try {
      scores = await batcher.submit(sequences);
    } catch (e) {
      if (e instanceof QueueFullError) throw busy();
      throw e;
    }
    if (request.batch) send(res, 200, { results: scores.map((s) => ({ step_scores: s })) });
    else send(res, 200, { step_scores: scores[0] });
  }

  function busy(): HttpError {
    return new HttpError(503, draining ? 'the server is shutting down' : `the queue is full (${limits.maxQueue} requests); retry later`, {
      'Retry-After': retryAfter,
    });
  }

  const routes: Record<string, { methods: string[]; handle(req: IncomingMessage, res: ServerResponse): Promise<void> | void }> = {
    '/v1/score': { methods: ['POST'], handle: score },
    '/health': { methods: ['GET', 'HEAD'], handle: (_req, res) => send(res, 200, health()) },
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    const route = Object.prototype.hasOwnProperty.call(routes, path) ? routes[path] : undefined;
    if (!route) throw new HttpError(404, `no route ${path} (routes: POST /v1/score, GET /health)`);
    if (!route.methods.includes(req.method ?? '')) {
      throw new HttpError(405, `${req.method} is not allowed on ${path} (use ${route.methods.join(' or ')})`, { Allow: route.methods.join(', ') });
    }
    if (opts.token !== undefined && !bearerTokenMatches(req.headers.authorization, opts.token)) {
      throw new HttpError(401, 'missing or wrong bearer token', { 'WWW-Authenticate': 'Bearer' });
    }
    if (draining && path === '/v1/score') throw busy();
    await route.handle(req, res);
  }

  // Requests being handled (reading, queued or scoring): close() waits for all of them.
  const inFlight = new Set<Promise<void>>();
  const server = createServer((req, res) => {
    const done = handle(req, res).catch((e: unknown) => {
      if (e instanceof HttpError) {
        // A request refused before its body was read: close the connection after answering,
        // so the rest of that body is not parsed as the next request.
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
    if (ownsModel) model.dispose();
    throw e;
  }
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;

  let closing: Promise<void> | undefined;
  async function close(): Promise<void> {
    draining = true;
    const closed = new Promise<void>((done) => server.close(() => done()));
    server.closeIdleConnections();
    // Requests already started are answered: new ones get 503 (draining), the batcher stops
    // waiting for company, and every handler in flight is awaited.
    const flushed = batcher.flush();
    const timer = setTimeout(() => server.closeAllConnections(), opts.drainTimeoutMs ?? 30_000);
    try {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
      await flushed;
      // Connections that went idle while draining are closed now; responses sent while
      // draining carried "Connection: close", so the others end by themselves.
      server.closeIdleConnections();
      await closed;
    } finally {
      clearTimeout(timer);
      if (ownsModel) model.dispose();
    }
  }

  return {
    url,
    close: () => (closing ??= close()),
    stats: () => ({ ...batcher.stats(), responses: { ...responses }, draining }),
  };
}
