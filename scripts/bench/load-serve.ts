/**
 * Load test of the reward server (`prmkit serve`), loopback only, bounded in time and count.
 *
 *   node --import tsx scripts/bench/load-serve.ts [--seconds 60] [--clients 32] [--backend auto]
 *        [--malformed 0.05] [--max-requests 2000000] [--slices auto] [--hidden 64] [--layers 2]
 *        [--max-batch-tokens N] [--max-wait-ms N]   (passed to the batching server)
 *
 * Saves a tiny random PRM in a temp dir and starts two `prmkit serve` children on it (free
 * 127.0.0.1 ports): one batching across requests, one with batching off (--max-batch-requests 1
 * --max-wait-ms 0). `clients` closed-loop clients (each sends, waits for the answer, sends
 * again) load one server at a time, `seconds` per server in total, in `slices` alternating
 * turns. About `malformed` of the requests are bad on purpose, each with the 4xx it must get. Asserts: valid requests all get 200 (no 5xx), every
 * bad one gets exactly its 4xx, each server exits 0 after SIGTERM. Prints throughput, p50/p99
 * latency, forward passes, and the throughput ratio batching / no batching. Exit 1 on any
 * failed assertion. The machine is shared: compare figures from the same run only.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseHfConfig } from '../../src/model/config.js';
import { savePrmCheckpoint } from '../../src/model/checkpoint.js';
import { initPrm } from '../../src/model/prm.js';
import { PrmTokenizer } from '../../src/model/tokenizer.js';
import { buildWordLevelTokenizer } from '../../src/model/word-tokenizer.js';
import { selectBackend } from '../../src/backend/backend.js';
import { Rng } from '../../src/util/rng.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    clients: { type: 'string', default: '32' },
    backend: { type: 'string', default: 'auto' },
    malformed: { type: 'string', default: '0.05' },
    'max-requests': { type: 'string', default: '2000000' },
    slices: { type: 'string', default: 'auto' },
    'max-batch-tokens': { type: 'string' },
    'max-wait-ms': { type: 'string' },
    hidden: { type: 'string', default: '64' },
    layers: { type: 'string', default: '2' },
  },
});
const seconds = Number(args.seconds);
const clients = Number(args.clients);
const malformedRate = Number(args.malformed);
const maxRequests = Number(args['max-requests']);
// auto: turns of about 5 s, so both modes sample the machine's background load alike.
const slices = args.slices === 'auto' ? Math.max(2, Math.round(seconds / 5)) : Number(args.slices);
if (!(Number.isInteger(slices) && slices >= 1 && slices <= 60)) throw new Error(`--slices must be an integer in [1, 60], got ${args.slices}`);
if (!(seconds > 0 && seconds <= 600)) throw new Error(`--seconds must be in (0, 600], got ${args.seconds}`);
if (!(Number.isInteger(clients) && clients >= 1 && clients <= 256)) throw new Error(`--clients must be an integer in [1, 256], got ${args.clients}`);
if (!(malformedRate >= 0 && malformedRate < 1)) throw new Error(`--malformed must be in [0, 1), got ${args.malformed}`);

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const TOKEN = 'load-test-token';
const MAX_BODY = 65536;
const MAX_STEPS = 64;

// ---- the workload: GSM8K-like arithmetic problems with 2-8 steps ----

const NAMES = ['Ann', 'Ben', 'Cara', 'Dev', 'Eli', 'Fay'];
const THINGS = ['apples', 'pens', 'coins', 'books', 'cards', 'shells'];

function makeSample(rng: Rng): { problem: string; steps: string[] } {
  const name = NAMES[rng.int(0, NAMES.length)];
  const thing = THINGS[rng.int(0, THINGS.length)];
  let value = rng.int(2, 30);
  const problem = `${name} has ${value} ${thing}. Each day ${name} gets some more and gives some away. How many ${thing} does ${name} have at the end?`;
  const steps: string[] = [`${name} starts with ${value} ${thing}.`];
  const n = rng.int(2, 9);
  while (steps.length < n - 1) {
    const add = rng.int(1, 12);
    const next = value + add;
    steps.push(`Then ${name} gets ${add} more, so ${value} + ${add} = ${next} ${thing}.`);
    value = next;
  }
  steps.push(`The answer is ${value}.`);
  return { problem, steps };
}

const corpus: string[] = [];
{
  const rng = new Rng('load-serve-corpus');
  for (let i = 0; i < 200; i++) {
    const s = makeSample(rng);
    corpus.push(s.problem, ...s.steps);
  }
}

async function saveTinyCheckpoint(dir: string): Promise<void> {
  // The checkpoint is written with the pure-JS backend; the server picks its own.
  await selectBackend('cpu', { log: () => {} });
  const files = buildWordLevelTokenizer(corpus);
  const tok = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson);
  const hidden = Number(args.hidden);
  const config = parseHfConfig(
    {
      architectures: ['Qwen2ForProcessRewardModel'],
      model_type: 'qwen2',
      vocab_size: tok.vocabSize,
      hidden_size: hidden,
      intermediate_size: hidden * 2,
      num_hidden_layers: Number(args.layers),
      num_attention_heads: 4,
      num_key_value_heads: 2,
      max_position_embeddings: 1024,
      rms_norm_eps: 1e-6,
      rope_theta: 10000,
      tie_word_embeddings: false,
      num_labels: 2,
    },
    'load-serve config',
  );
  const model = initPrm(config, 3);
  try {
    model.setTokens({ stepToken: tok.stepToken, stepTokenId: tok.stepTokenId, padTokenId: tok.padTokenId });
    await savePrmCheckpoint(model, dir, tok.toFiles());
  } finally {
    model.dispose();
  }
}

// ---- requests, good and bad, each with the status it must get ----

interface Planned {
  kind: string;
  body: string;
  token: string;
  contentType: string;
  expect: number;
  steps: number;
}

const BAD_KINDS = ['bad-json', 'empty-steps', 'wrong-type', 'model-field', 'too-many-steps', 'oversized-body', 'no-token'] as const;

function plan(rng: Rng): Planned {
  const base = { token: TOKEN, contentType: 'application/json' };
  if (rng.next() < malformedRate) {
    const kind = BAD_KINDS[rng.int(0, BAD_KINDS.length)];
    const s = makeSample(rng);
    switch (kind) {
      case 'bad-json':
        return { ...base, kind, body: JSON.stringify(s).slice(0, -3), expect: 422, steps: 0 };
      case 'empty-steps':
        return { ...base, kind, body: JSON.stringify({ problem: s.problem, steps: [] }), expect: 422, steps: 0 };
      case 'wrong-type':
        return { ...base, kind, body: JSON.stringify({ problem: s.problem, steps: [1, 2] }), expect: 422, steps: 0 };
      case 'model-field':
        return { ...base, kind, body: JSON.stringify({ ...s, model: '/etc' }), expect: 422, steps: 0 };
      case 'too-many-steps':
        return { ...base, kind, body: JSON.stringify({ problem: s.problem, steps: Array.from({ length: MAX_STEPS + 1 }, (_, i) => `step ${i}`) }), expect: 413, steps: 0 };
      case 'oversized-body':
        return { ...base, kind, body: JSON.stringify({ problem: 'x'.repeat(MAX_BODY), steps: ['a'] }), expect: 413, steps: 0 };
      case 'no-token':
        return { ...base, kind, token: '', body: JSON.stringify(s), expect: 401, steps: 0 };
    }
  }
  if (rng.next() < 0.2) {
    const items = Array.from({ length: rng.int(2, 5) }, () => makeSample(rng));
    return { ...base, kind: 'valid-batch', body: JSON.stringify({ items }), expect: 200, steps: items.reduce((a, s) => a + s.steps.length, 0) };
  }
  const s = makeSample(rng);
  return { ...base, kind: 'valid', body: JSON.stringify(s), expect: 200, steps: s.steps.length };
}

// ---- the server child and the clients ----

interface Child {
  url: string;
  stop(): Promise<number | null>;
}

async function startServer(dir: string, extra: string[]): Promise<Child> {
  const argv = ['--import', 'tsx', 'src/cli/run.ts', 'serve', '--model', dir, '--host', '127.0.0.1', '--port', '0', '--backend', args.backend!,
    '--token', TOKEN, '--max-body-bytes', String(MAX_BODY), '--max-steps', String(MAX_STEPS), ...extra];
  const child = spawn(process.execPath, argv, { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      stderr += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
      if (m) resolve(m[1]);
    });
    void exit.then((code) => reject(new Error(`server exited with ${code}:\n${stderr}`)));
  });
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      const code = await exit;
      if (code !== 0) console.error(stderr);
      return code;
    },
  };
}

interface Reply {
  status: number;
  text: string;
}

function send(agent: Agent, url: string, p: Planned): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'Content-Type': p.contentType, 'Content-Length': String(Buffer.byteLength(p.body)) };
    if (p.token) headers.Authorization = `Bearer ${p.token}`;
    const req = request(`${url}/v1/score`, { method: 'POST', agent, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(p.body);
  });
}

async function getJson(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url, { headers: { Authorization: `Bearer ${TOKEN}` } });
  return (await res.json()) as Record<string, unknown>;
}

interface PhaseResult {
  label: string;
  seconds: number;
  valid: number;
  validSteps: number;
  bad: number;
  latencies: number[];
  /** Failed assertions: the count, and the first 20 described. */
  failureCount: number;
  failures: string[];
  byKind: Record<string, Record<number, number>>;
  health: Record<string, unknown>;
  exitCode: number | null;
}

interface Phase {
  result: PhaseResult;
  server: Child;
}

/**
 * Keep-alive connections for one slice. A fresh pool per slice: a socket left idle through the
 * other server's slice could be closed by the server's keep-alive timeout just as it is reused
 * (a client-side race of HTTP keep-alive, not a server failure).
 */
function newAgent(): Agent {
  return new Agent({ keepAlive: true, maxSockets: clients });
}

async function openPhase(label: string, dir: string, serverArgs: string[]): Promise<Phase> {
  const server = await startServer(dir, serverArgs);
  const agent = newAgent();
  const result: PhaseResult = { label, seconds: 0, valid: 0, validSteps: 0, bad: 0, latencies: [], failureCount: 0, failures: [], byKind: {}, health: {}, exitCode: null };
  // Warm-up: the first forward passes pay one-off costs (kernel setup), not part of the figures.
  const warm = new Rng('warm-up');
  for (let i = 0; i < 5; i++) await send(agent, server.url, { ...plan(warm), expect: 200 });
  agent.destroy();
  return { result, server };
}

let sent = 0;

/** Drives one server with all clients for `sliceSeconds`, adding to its result. */
async function runSlice(phase: Phase, slice: number, sliceSeconds: number): Promise<void> {
  const { result, server } = phase;
  const agent = newAgent();
  const fail = (message: string): void => {
    result.failureCount++;
    if (result.failures.length < 20) result.failures.push(message);
  };
  const start = performance.now();
  const deadline = start + sliceSeconds * 1000;
  const client = async (id: number): Promise<void> => {
    // Both phases send the same request sequence: each slice and client has its own stream.
    const rng = new Rng(`client-${slice}-${id}`);
    while (performance.now() < deadline && sent < maxRequests) {
      sent++;
      const p = plan(rng);
      const t0 = performance.now();
      let reply: Reply;
      try {
        reply = await send(agent, server.url, p);
      } catch (e) {
        fail(`${p.kind}: transport error ${(e as Error).message}`);
        continue;
      }
      const ms = performance.now() - t0;
      (result.byKind[p.kind] ??= {})[reply.status] = (result.byKind[p.kind]?.[reply.status] ?? 0) + 1;
      if (reply.status !== p.expect) {
        fail(`${p.kind}: expected ${p.expect}, got ${reply.status} ${reply.text.slice(0, 200)}`);
        continue;
      }
      if (p.expect === 200) {
        result.valid++;
        result.validSteps += p.steps;
        result.latencies.push(ms);
      } else result.bad++;
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, i) => client(i)));
  result.seconds += (performance.now() - start) / 1000;
  agent.destroy();
}

async function closePhase(phase: Phase): Promise<PhaseResult> {
  const { result, server } = phase;
  result.health = await getJson(`${server.url}/health`);
  result.exitCode = await server.stop();
  if (result.exitCode !== 0) {
    result.failureCount++;
    result.failures.push(`server exited with ${result.exitCode} after SIGTERM`);
  }
  return result;
}

function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

function summarize(r: PhaseResult): Record<string, unknown> {
  const sorted = [...r.latencies].sort((a, b) => a - b);
  return {
    phase: r.label,
    seconds: Number(r.seconds.toFixed(1)),
    valid_requests: r.valid,
    bad_requests: r.bad,
    requests_per_s: Number((r.valid / r.seconds).toFixed(1)),
    steps_per_s: Number((r.validSteps / r.seconds).toFixed(1)),
    p50_ms: Number(percentile(sorted, 0.5).toFixed(1)),
    p99_ms: Number(percentile(sorted, 0.99).toFixed(1)),
    forward_passes: r.health.forward_passes,
    requests_per_pass: Number((r.health.requests_per_pass as number).toFixed(2)),
    ms_per_pass: Number(((r.health.forward_ms as number) / (r.health.forward_passes as number)).toFixed(1)),
    forward_busy: Number(((r.health.forward_ms as number) / 1000 / r.seconds).toFixed(2)),
    backend: r.health.backend,
    statuses: r.byKind,
    failed_assertions: r.failureCount,
    exit_code: r.exitCode,
  };
}

const dir = join(mkdtempSync(join(tmpdir(), 'prmkit-load-')), 'prm');
try {
  await saveTinyCheckpoint(dir);
  console.error(
    `load-serve: ${clients} clients, ${seconds} s per mode in ${slices} alternating slices, ${(malformedRate * 100).toFixed(1)}% malformed, ` +
      `model hidden ${args.hidden} x ${args.layers} layers`,
  );
  // Both servers run side by side (the idle one costs nothing) and take turns under load, so
  // that the drift of a shared machine's background load hits both modes alike.
  const tuning = [
    ...(args['max-batch-tokens'] ? ['--max-batch-tokens', args['max-batch-tokens']] : []),
    ...(args['max-wait-ms'] ? ['--max-wait-ms', args['max-wait-ms']] : []),
  ];
  const batching = await openPhase('batching', dir, tuning);
  const noBatching = await openPhase('no-batching', dir, ['--max-batch-requests', '1', '--max-wait-ms', '0']);
  for (let slice = 0; slice < slices; slice++) {
    await runSlice(batching, slice, seconds / slices);
    await runSlice(noBatching, slice, seconds / slices);
  }
  const batched = await closePhase(batching);
  const single = await closePhase(noBatching);
  console.log(JSON.stringify(summarize(batched)));
  console.log(JSON.stringify(summarize(single)));
  const ratio = batched.valid / batched.seconds / (single.valid / single.seconds);
  console.log(JSON.stringify({ throughput_ratio_batching_over_no_batching: Number(ratio.toFixed(2)), requests_sent: sent }));
  const failures = [...batched.failures, ...single.failures];
  let failureCount = batched.failureCount + single.failureCount;
  if (malformedRate > 0 && batched.bad + single.bad === 0) {
    failures.push('no malformed request was sent');
    failureCount++;
  }
  for (const f of failures.slice(0, 20)) console.error(`load-serve: FAIL ${f}`);
  if (failureCount > 0) {
    console.error(`load-serve: ${failureCount} failed assertion(s)`);
    process.exitCode = 1;
  } else {
    console.error('load-serve: OK: every valid request got 200, every bad one its 4xx, both servers drained and exited 0');
  }
} finally {
  rmSync(join(dir, '..'), { recursive: true, force: true });
}
