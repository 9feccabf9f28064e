/**
 * A client for OpenAI-compatible servers (vLLM, SGLang, llama.cpp, Ollama, the sim server):
 * /v1/completions and /v1/chat/completions over several endpoints at once, with a concurrency
 * limit, least-in-flight balancing, retries with exponential backoff and jitter on 429, 5xx,
 * timeouts, network errors and malformed replies, and an optional persistent response cache.
 */
import { requestKey, type ResponseCache } from './cache.js';
import { CLIENT_DEFAULTS } from './defaults.js';

export interface CompletionRequest {
  model: string;
  prompt: string;
  n?: number;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  stop?: string[];
}

export interface CompletionResponse {
  choices: { index: number; text: string; finish_reason?: string | null }[];
  usage?: Record<string, number>;
  [key: string]: unknown;
}

export interface ChatRequest {
  model: string;
  messages: { role: string; content: string }[];
  n?: number;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
}

export interface ChatResponse {
  choices: { index: number; message: { role: string; content: string }; finish_reason?: string | null }[];
  usage?: Record<string, number>;
  [key: string]: unknown;
}

export interface ClientOptions {
  /** Base URLs: "http://host:8000" or "http://host:8000/v1". */
  endpoints: string[];
  /** Sent as a bearer token when set. */
  apiKey?: string;
  /** Requests in flight at once, over all endpoints. */
  concurrency?: number;
  /** Retries of one request before it fails. */
  maxRetries?: number;
  /** Per-attempt timeout (covers the whole reply, not only its start). */
  timeoutMs?: number;
  /** One request over all its attempts and backoffs: past it, no retry starts and a running attempt is cut. */
  deadlineMs?: number;
  /** Largest reply read, in bytes: a longer one is cut off and the request fails (a retry would get the same). */
  maxReplyBytes?: number;
  /** First backoff delay; doubles per retry, with jitter. */
  backoffMs?: number;
  maxBackoffMs?: number;
  cache?: ResponseCache;
}

export interface EndpointStats {
  url: string;
  requests: number;
  errors: number;
  inFlight: number;
}

export interface ClientStats {
  /** HTTP attempts sent (first tries and retries). */
  requests: number;
  /** Requests answered from the on-disk cache (or joined to an identical one in flight). */
  cacheHits: number;
  /** Attempts repeated after a retryable failure. */
  retries: number;
  /** Requests given up on (non-retryable error, or retries exhausted). */
  failures: number;
  /** Retryable failures by cause. */
  malformed: number;
  timeouts: number;
  networkErrors: number;
  httpErrors: Record<string, number>;
  endpoints: EndpointStats[];
}

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

interface Endpoint {
  base: string;
  stats: EndpointStats;
}

/** Normalises a base URL: no trailing slash, no trailing /v1 (paths add it). */
export function normalizeEndpoint(url: string): string {
  let u = url.trim();
  if (!/^https?:\/\//.test(u)) throw new Error(`endpoint "${url}" is not an http(s) URL`);
  u = u.replace(/\/+$/, '');
  return u.replace(/\/v1$/, '');
}

/** Splits "URL1,URL2" (and repeated options) into endpoint URLs. */
export function parseEndpoints(values: string | readonly string[]): string[] {
  const list = (typeof values === 'string' ? [values] : values).flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
  if (list.length === 0) throw new Error('no endpoint given');
  return list.map(normalizeEndpoint);
}

/** A counting semaphore: at most `limit` holders at once, served in arrival order. */
class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly limit: number) {}

  async acquire(): Promise<void> {
    if (this.active < this.limit) {
      this.active++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class OpenAIClient {
  private readonly endpoints: Endpoint[];
  private readonly slots: Semaphore;
  private readonly inFlightByKey = new Map<string, Promise<unknown>>();
  private readonly counters = { requests: 0, cacheHits: 0, retries: 0, failures: 0, malformed: 0, timeouts: 0, networkErrors: 0 };
  private readonly httpErrors: Record<string, number> = {};
  private rr = 0;
  readonly opts: Required<Omit<ClientOptions, 'apiKey' | 'cache'>> & Pick<ClientOptions, 'apiKey' | 'cache'>;

  constructor(options: ClientOptions) {
    this.opts = {
      concurrency: CLIENT_DEFAULTS.concurrency,
      maxRetries: CLIENT_DEFAULTS.retries,
      timeoutMs: CLIENT_DEFAULTS.timeoutSeconds * 1000,
      deadlineMs: CLIENT_DEFAULTS.deadlineSeconds * 1000,
      maxReplyBytes: CLIENT_DEFAULTS.maxReplyBytes,
      backoffMs: CLIENT_DEFAULTS.backoffMs,
      maxBackoffMs: CLIENT_DEFAULTS.maxBackoffMs,
      ...options,
      endpoints: parseEndpoints(options.endpoints),
    };
    if (!(this.opts.concurrency >= 1)) throw new Error(`concurrency must be >= 1 (got ${this.opts.concurrency})`);
    this.endpoints = this.opts.endpoints.map((base) => ({ base, stats: { url: base, requests: 0, errors: 0, inFlight: 0 } }));
    this.slots = new Semaphore(this.opts.concurrency);
  }

  completions(body: CompletionRequest): Promise<CompletionResponse> {
    return this.post('/v1/completions', body, (v) => validateCompletion(v, body.n ?? 1));
  }

  chat(body: ChatRequest): Promise<ChatResponse> {
    return this.post('/v1/chat/completions', body, (v) => validateChat(v, body.n ?? 1));
  }

  stats(): ClientStats {
    return { ...this.counters, httpErrors: { ...this.httpErrors }, endpoints: this.endpoints.map((e) => ({ ...e.stats })) };
  }

  /**
   * POSTs a request, or answers it from the cache. Identical requests in flight at once are
   * sent once. The reply is validated; a malformed one is retried like a server error.
   */
  async post<T>(path: string, body: object, validate: (value: unknown) => T): Promise<T> {
    const key = requestKey(path, body);
    const cache = this.opts.cache;
    if (cache?.has(key)) {
      const cached = await cache.get(key);
      try {
        const value = validate(cached);
        this.counters.cacheHits++;
        return value;
      } catch {
        // An entry that no longer validates (written by another version): fetch it afresh.
      }
    }
    const joined = this.inFlightByKey.get(key);
    if (joined) {
      this.counters.cacheHits++;
      return validate(await joined);
    }
    const sending = this.send(path, body, validate).then(async (value) => {
      await cache?.put(key, value);
      return value;
    });
    this.inFlightByKey.set(key, sending);
    try {
      return await sending;
    } finally {
      this.inFlightByKey.delete(key);
    }
  }

  private pickEndpoint(): Endpoint {
    // Least in flight; ties go round-robin so idle endpoints share the load.
    let best: Endpoint | undefined;
    const n = this.endpoints.length;
    for (let i = 0; i < n; i++) {
      const e = this.endpoints[(this.rr + i) % n];
      if (!best || e.stats.inFlight < best.stats.inFlight) best = e;
    }
    this.rr = (this.rr + 1) % n;
    return best!;
  }

  private async send<T>(path: string, body: object, validate: (value: unknown) => T): Promise<T> {
    const payload = JSON.stringify(body);
    const deadline = AbortSignal.timeout(this.opts.deadlineMs);
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      let failure: ApiError;
      let retryAfterMs: number | undefined;
      await this.slots.acquire();
      const endpoint = this.pickEndpoint();
      endpoint.stats.inFlight++;
      endpoint.stats.requests++;
      this.counters.requests++;
      try {
        const res = await fetch(`${endpoint.base}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {}) },
          body: payload,
          signal: AbortSignal.any([AbortSignal.timeout(this.opts.timeoutMs), deadline]),
        });
        const text = await readCapped(res, this.opts.maxReplyBytes);
        if (text === null) {
          failure = new ApiError(`${endpoint.base}${path}: the reply is longer than ${this.opts.maxReplyBytes} bytes (cut off)`, res.status, false);
        } else if (res.ok) {
          try {
            return validate(JSON.parse(text));
          } catch (e) {
            this.counters.malformed++;
            failure = new ApiError(`${endpoint.base}${path}: malformed reply (${(e as Error).message.slice(0, 200)})`, res.status, true);
          }
        } else {
          this.httpErrors[res.status] = (this.httpErrors[res.status] ?? 0) + 1;
          const retryable = res.status === 429 || res.status === 408 || res.status >= 500;
          failure = new ApiError(`${endpoint.base}${path}: HTTP ${res.status} ${text.slice(0, 300)}`, res.status, retryable);
          const header = Number(res.headers.get('retry-after'));
          if (Number.isFinite(header) && header >= 0) retryAfterMs = header * 1000;
        }
      } catch (e) {
        const err = e as Error;
        const timedOut = err.name === 'TimeoutError' || err.name === 'AbortError';
        if (timedOut) this.counters.timeouts++;
        else this.counters.networkErrors++;
        const causeOf = (err as { cause?: { code?: string; message?: string } }).cause;
        const cause = causeOf?.code ?? causeOf?.message;
        const what = deadline.aborted ? `no reply within the request's deadline of ${this.opts.deadlineMs} ms` : `no reply within ${this.opts.timeoutMs} ms`;
        failure = new ApiError(`${endpoint.base}${path}: ${timedOut ? what : `${err.message}${cause ? ` (${cause})` : ''}`}`, undefined, !deadline.aborted);
      } finally {
        endpoint.stats.inFlight--;
        this.slots.release();
      }
      endpoint.stats.errors++;
      if (!failure.retryable || attempt >= this.opts.maxRetries) {
        this.counters.failures++;
        if (failure.retryable) failure.message += ` (gave up after ${attempt + 1} attempts)`;
        throw failure;
      }
      const wait = this.backoff(attempt, retryAfterMs);
      if (Date.now() + wait >= started + this.opts.deadlineMs) {
        this.counters.failures++;
        failure.message += ` (gave up after ${attempt + 1} attempts: the request's deadline of ${this.opts.deadlineMs} ms would pass before the next)`;
        throw failure;
      }
      this.counters.retries++;
      await sleep(wait);
    }
  }

  private backoff(attempt: number, retryAfterMs?: number): number {
    const exp = Math.min(this.opts.maxBackoffMs, this.opts.backoffMs * 2 ** attempt);
    // Full jitter in [exp/2, exp) spreads retries of many clients hitting one overloaded server.
    const jittered = exp * (0.5 + 0.5 * Math.random());
    return Math.min(this.opts.maxBackoffMs, Math.max(jittered, retryAfterMs ?? 0));
  }
}

/** The reply's text, read as it streams in; null once it passes maxBytes (the rest is not read). */
async function readCapped(res: Response, maxBytes: number): Promise<string | null> {
  if (!res.body) return '';
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body.cancel();
    return null;
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.length;
    if (size > maxBytes) {
      await res.body.cancel().catch(() => {});
      return null;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function choicesOf(value: unknown, n: number): Record<string, unknown>[] {
  if (!isObject(value)) throw new Error('reply is not a JSON object');
  const choices = value.choices;
  if (!Array.isArray(choices)) throw new Error('reply has no "choices" array');
  if (choices.length !== n) throw new Error(`reply has ${choices.length} choices, asked for ${n}`);
  if (!choices.every(isObject)) throw new Error('a choice is not an object');
  // Servers may stream choices back out of order; index says which is which.
  return [...choices].sort((a, b) => Number(a.index ?? 0) - Number(b.index ?? 0));
}

export function validateCompletion(value: unknown, n: number): CompletionResponse {
  const choices = choicesOf(value, n);
  choices.forEach((c, i) => {
    if (typeof c.text !== 'string') throw new Error(`choices[${i}].text is not a string`);
  });
  return { ...(value as object), choices } as CompletionResponse;
}

export function validateChat(value: unknown, n: number): ChatResponse {
  const choices = choicesOf(value, n);
  choices.forEach((c, i) => {
    if (!isObject(c.message) || typeof c.message.content !== 'string') throw new Error(`choices[${i}].message.content is not a string`);
  });
  return { ...(value as object), choices } as ChatResponse;
}
