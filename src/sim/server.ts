/**
 * The sim world behind an OpenAI-compatible HTTP API, so the labeling pipeline runs over real
 * HTTP exactly as against vLLM: the policy on POST /v1/completions (continues the solution in
 * a rendered chat prompt), the judge on POST /v1/chat/completions, GET /v1/models.
 *
 * Replies are a pure function of the request (the server seed, the request's seed and its
 * content), so identical requests get byte-identical replies. Fault injection for tests
 * (500/429, latency, malformed bodies, hung requests) draws from a separate stream and
 * never changes what a successful reply contains.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { requestKey } from '../labels/cache.js';
import { parseJudgePrompt, parsePolicyPrompt, STEP_SEPARATOR } from '../labels/prompts.js';
import { hashString, Rng } from '../util/rng.js';
import { SimJudge, type JudgeOptions } from './judge.js';
import { SimPolicy, type PolicyOptions } from './policy.js';

export const SIM_POLICY_MODEL = 'sim-policy';
export const SIM_JUDGE_MODEL = 'sim-judge';

export interface SimServerOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** World seed: mixed into every reply. */
  seed?: number;
  /** Share of requests answered 500 or 429 (half each). */
  faultRate?: number;
  /** Each request waits uniformly in [0, latencyMs] before it is answered. */
  latencyMs?: number;
  /** Share of requests answered 200 with a body that is not valid JSON. */
  malformedRate?: number;
  /** Share of requests never answered (until the client gives up or the server closes). */
  hangRate?: number;
  policy?: Partial<PolicyOptions>;
  judge?: Partial<JudgeOptions>;
  /** Largest request body accepted (bytes). */
  maxBodyBytes?: number;
}

export interface SimServerStats {
  requests: number;
  completions: number;
  chats: number;
  /** Successful replies. */
  answered: number;
  /** Replies not sent because the client had gone away. */
  abandoned: number;
  faults: { status500: number; status429: number; malformed: number; hung: number; badRequest: number };
  /** Per request content key (requestKey of path and body): arrivals and successful replies. */
  byKey: Map<string, { seen: number; answered: number }>;
}

export interface SimServer {
  url: string;
  port: number;
  stats: SimServerStats;
  /** Zeroes the stats (e.g. between two phases of a test). */
  resetStats(): void;
  close(): Promise<void>;
}

function emptyStats(): SimServerStats {
  return {
    requests: 0,
    completions: 0,
    chats: 0,
    answered: 0,
    abandoned: 0,
    faults: { status500: 0, status429: 0, malformed: 0, hung: 0, badRequest: 0 },
    byKey: new Map(),
  };
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startSimServer(opts: SimServerOptions = {}): Promise<SimServer> {
  const seed = opts.seed ?? 0;
  const policy = new SimPolicy(opts.policy);
  const judge = new SimJudge(opts.judge);
  const faults = new Rng(seed).fork('faults');
  const maxBody = opts.maxBodyBytes ?? 16 * 1024 * 1024;
  let currentStats = emptyStats();
  const hung = new Set<ServerResponse>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '');
    if (req.method === 'GET' && path === '/v1/models') {
      return sendJson(res, 200, {
        object: 'list',
        data: [SIM_POLICY_MODEL, SIM_JUDGE_MODEL].map((id) => ({ id, object: 'model', created: 0, owned_by: 'prmkit-sim' })),
      });
    }
    if (path !== '/v1/completions' && path !== '/v1/chat/completions') throw new HttpError(404, `no route ${req.method} ${path}`);
    if (req.method !== 'POST') throw new HttpError(405, `${path} takes POST`);
    const body = await readBody(req, maxBody);
    // Requests still running when the stats are reset count in the stats they arrived under.
    const stats = currentStats;
    stats.requests++;
    const key = requestKey(path, body);
    const seen = stats.byKey.get(key) ?? { seen: 0, answered: 0 };
    seen.seen++;
    stats.byKey.set(key, seen);

    // The reply is computed first and from the request alone; faults only decide its delivery.
    const reply = path === '/v1/completions' ? completion(body, key) : chatCompletion(body, key);
    if (opts.latencyMs) await new Promise((r) => setTimeout(r, faults.next() * opts.latencyMs!));
    const u = faults.next();
    const faultRate = opts.faultRate ?? 0;
    if (u < faultRate / 2) {
      stats.faults.status500++;
      return sendJson(res, 500, { error: { message: 'injected server error', type: 'server_error' } });
    }
    if (u < faultRate) {
      stats.faults.status429++;
      res.setHeader('retry-after', '0');
      return sendJson(res, 429, { error: { message: 'injected rate limit', type: 'rate_limit' } });
    }
    if (faults.next() < (opts.malformedRate ?? 0)) {
      stats.faults.malformed++;
      const text = JSON.stringify(reply);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(text.slice(0, Math.floor(text.length / 2)));
      return;
    }
    if (faults.next() < (opts.hangRate ?? 0)) {
      stats.faults.hung++;
      hung.add(res);
      res.on('close', () => hung.delete(res));
      return;
    }
    if (res.destroyed || req.socket.destroyed) {
      // The client went away (e.g. was killed) while the reply was being made: not answered.
      stats.abandoned++;
      return;
    }
    if (path === '/v1/completions') stats.completions++;
    else stats.chats++;
    stats.answered++;
    seen.answered++;
    sendJson(res, 200, reply);
  };

  const completion = (body: Record<string, unknown>, key: string) => {
    const prompt = body.prompt;
    const prompts = typeof prompt === 'string' ? [prompt] : Array.isArray(prompt) && prompt.every((p) => typeof p === 'string') ? (prompt as string[]) : null;
    if (!prompts) throw new HttpError(400, '"prompt" must be a string or an array of strings');
    // 16 is the OpenAI (and vLLM) default for completions: clients must ask for more.
    const { n, temperature, requestSeed, maxTokens, stop } = samplingOf(body, 16);
    const choices = prompts.flatMap((p, pi) => {
      const parsed = parsePolicyPrompt(p);
      return Array.from({ length: n }, (_, i) => {
        const rng = replyRng(seed, requestSeed, temperature, p, i);
        const steps = parsed ? policy.continueText(parsed.problem, parsed.steps, rng) : policy.continueText(p, [], rng);
        const { text, finish, stopReason } = limitText(steps.join(STEP_SEPARATOR), maxTokens, stop);
        // stop_reason as vLLM reports it: the stop string that ended the text, null at the end of the solution.
        return { index: pi * n + i, text, logprobs: null, finish_reason: finish, stop_reason: stopReason };
      });
    });
    return {
      id: `cmpl-${key.slice(0, 24)}`,
      object: 'text_completion',
      created: 0,
      model: String(body.model ?? SIM_POLICY_MODEL),
      choices,
      usage: usage(prompts.join(''), choices.map((c) => c.text).join('')),
    };
  };

  const chatCompletion = (body: Record<string, unknown>, key: string) => {
    const messages = body.messages;
    if (!Array.isArray(messages) || !messages.every((m) => m && typeof m === 'object' && typeof (m as { role?: unknown }).role === 'string')) {
      throw new HttpError(400, '"messages" must be an array of {role, content}');
    }
    const { n, temperature, requestSeed, maxTokens } = samplingOf(body, Infinity);
    const parsed = parseJudgePrompt(messages as { role: string; content: unknown }[]);
    const content = JSON.stringify(messages);
    const choices = Array.from({ length: n }, (_, i) => {
      const rng = replyRng(seed, requestSeed, temperature, content, i);
      const reply = parsed ? judge.judge(parsed.problem, parsed.steps, rng).reply : 'I cannot find a numbered solution to check in this message.';
      const { text, finish } = limitText(reply, maxTokens, []);
      return { index: i, message: { role: 'assistant', content: text }, logprobs: null, finish_reason: finish };
    });
    return {
      id: `chatcmpl-${key.slice(0, 24)}`,
      object: 'chat.completion',
      created: 0,
      model: String(body.model ?? SIM_JUDGE_MODEL),
      choices,
      usage: usage(content, choices.map((c) => c.message.content).join('')),
    };
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      const status = err instanceof HttpError ? err.status : 500;
      if (status === 400 || status === 413) currentStats.faults.badRequest++;
      if (!res.headersSent) sendJson(res, status, { error: { message: err.message, type: status === 500 ? 'server_error' : 'invalid_request_error' } });
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    get stats() {
      return currentStats;
    },
    resetStats() {
      currentStats = emptyStats();
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const res of hung) res.destroy();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/**
 * The generator of one choice. At temperature 0 a model's output depends on the content only
 * (every choice the same, the seed ignored), as with greedy decoding.
 */
function replyRng(worldSeed: number, requestSeed: number, temperature: number, content: string, choice: number): Rng {
  const contentHash = hashString(content);
  return temperature === 0 ? new Rng(`${worldSeed}:${contentHash}:${content.length}`) : new Rng(`${worldSeed}:${requestSeed}:${contentHash}:${content.length}:${choice}`);
}

function samplingOf(body: Record<string, unknown>, defaultMaxTokens: number) {
  const num = (field: string, fallback: number) => {
    const v = body[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new HttpError(400, `"${field}" must be a number`);
    return v;
  };
  const n = num('n', 1);
  if (!Number.isInteger(n) || n < 1 || n > 128) throw new HttpError(400, '"n" must be an integer in [1, 128]');
  const stop = body.stop === undefined || body.stop === null ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop;
  if (!Array.isArray(stop) || !stop.every((s) => typeof s === 'string')) throw new HttpError(400, '"stop" must be a string or an array of strings');
  return { n, temperature: num('temperature', 1), requestSeed: num('seed', 0), maxTokens: num('max_tokens', defaultMaxTokens), stop: stop as string[] };
}

/** Roughly 4 characters a token, as for English text; `stop` cuts where it first appears. */
function limitText(text: string, maxTokens: number, stop: readonly string[]): { text: string; finish: 'stop' | 'length'; stopReason: string | null } {
  let out = text;
  let stopReason: string | null = null;
  for (const s of stop) {
    const at = s === '' ? -1 : out.indexOf(s);
    if (at >= 0) {
      out = out.slice(0, at);
      stopReason = s;
    }
  }
  const maxChars = Math.max(0, maxTokens * 4);
  if (out.length > maxChars) return { text: out.slice(0, Math.floor(maxChars)), finish: 'length', stopReason: null };
  return { text: out, finish: 'stop', stopReason };
}

function usage(prompt: string, completion: string) {
  const p = Math.ceil(prompt.length / 4);
  const c = Math.ceil(completion.length / 4);
  return { prompt_tokens: p, completion_tokens: c, total_tokens: p + c };
}

async function readBody(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new HttpError(413, `request body over ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'request body is not JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'request body must be a JSON object');
  return body as Record<string, unknown>;
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
