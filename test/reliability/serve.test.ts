/**
 * The reward server under hostile and heavy use: a request whose text is one enormous word
 * next to a valid one (the valid one is answered within a latency bound, the enormous ones are
 * refused without being tokenized), a long word that must be tokenized (off the event loop,
 * so /health and valid requests are answered meanwhile), and SIGTERM while requests are still
 * arriving (every request gets an HTTP answer: 200, or 503 with a JSON body).
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import { selectBackend } from '../../src/backend/backend.js';
import { initPrm } from '../../src/model/prm.js';
import { CHATML_TEMPLATE, PrmTokenizer } from '../../src/model/tokenizer.js';
import type { Qwen2Config } from '../../src/model/config.js';
import { startRewardServer, type RewardServer } from '../../src/serve/server.js';
import { tinyCheckpoint } from '../support/tiny-prm.js';
import { qwenFiles } from '../support/tokenizer.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const VALID = { problem: 'Ann has 3 apples and buys 4 more. How many apples does she have?', steps: ['She starts with 3 apples.', 'She buys 4, so 3 + 4 = 7.'] };

/**
 * POST on a connection of its own, opened at once (no pool that holds requests back): a request
 * made is a request sent, so the server has received every one of them.
 */
function postOwnConnection(url: string, body: unknown): Promise<Answer> {
  const started = performance.now();
  const payload = JSON.stringify(body);
  return new Promise((resolve) => {
    const req = httpRequest(`${url}/v1/score`, { method: 'POST', agent: false, headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          // kept as text: the assertion shows it
        }
        resolve({ status: res.statusCode ?? 0, ms: performance.now() - started, body: parsed });
      });
      res.on('error', (e) => resolve({ status: 'no response', ms: performance.now() - started, body: null, error: e.message }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: 'no response', ms: performance.now() - started, body: null, error: e.code ?? e.message }));
    req.end(payload);
  });
}

interface Answer {
  status: number | 'no response';
  ms: number;
  body: unknown;
  error?: string;
}

async function post(url: string, body: unknown): Promise<Answer> {
  const started = performance.now();
  try {
    const res = await fetch(`${url}/v1/score`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // kept as text: the assertion shows it
    }
    return { status: res.status, ms: performance.now() - started, body: parsed };
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause;
    return { status: 'no response', ms: performance.now() - started, body: null, error: cause?.code ?? (e as Error).message };
  }
}

describe('reliability: the reward server under hostile and heavy load', function () {
  this.timeout(120_000);

  describe('huge and long single-word requests next to valid ones', () => {
    let server: RewardServer;

    before(async () => {
      await selectBackend('cpu', { log: () => {} });
      // The real Qwen vocabulary (BPE, slow on long words) under a tiny random model.
      const files = qwenFiles();
      const tokenizer = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson, { chatTemplate: CHATML_TEMPLATE });
      const config: Qwen2Config = {
        vocabSize: tokenizer.vocabSize,
        hiddenSize: 16,
        numHiddenLayers: 1,
        numAttentionHeads: 2,
        numKeyValueHeads: 1,
        headDim: 8,
        intermediateSize: 32,
        ropeTheta: 10000,
        rmsNormEps: 1e-6,
        tieWordEmbeddings: false,
        maxPositionEmbeddings: 4096,
        numLabels: 2,
        stepToken: tokenizer.stepToken,
        stepTokenId: tokenizer.stepTokenId,
        padTokenId: tokenizer.padTokenId,
        initializerRange: 0.5,
      };
      server = await startRewardServer({ model: { model: initPrm(config, 3), tokenizer }, port: 0, log: () => {} });
    });

    after(async () => {
      await server?.close();
    });

    it('refuses 1 MB single-word requests without tokenizing them, and answers a valid request next to them promptly', async () => {
      const word = { problem: 'p', steps: ['a'.repeat(1_000_000)] };
      expect((await post(server.url, VALID)).status).to.equal(200); // warm: workers and model ready
      const huge = Array.from({ length: 4 }, () => post(server.url, word));
      await new Promise((resolve) => setTimeout(resolve, 50));
      const valid = await post(server.url, VALID);
      const refused = await Promise.all(huge);
      expect(valid.status).to.equal(200);
      expect(valid.ms, 'valid request latency (ms)').to.be.below(3_000);
      for (const r of refused) {
        expect(r.status).to.equal(413);
        expect((r.body as { error: string }).error).to.match(/at least \d+ tokens \(counted from its characters\) exceed the model's context of 4096/);
        // Before, each was tokenized for ~10 s while the whole server waited.
        expect(r.ms, 'refusal latency (ms)').to.be.below(3_000);
      }
    });

    it('tokenizes a long word off the event loop: /health and a valid request are answered while it runs', async () => {
      // Short enough to pass the character bound (so it is tokenized), long enough to take seconds.
      const longWord = post(server.url, { problem: 'p', steps: ['b'.repeat(120_000)] });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const healthStarted = performance.now();
      const health = await fetch(`${server.url}/health`);
      const healthMs = performance.now() - healthStarted;
      const valid = await post(server.url, VALID);
      let longDone = false;
      void longWord.then(() => (longDone = true));
      await new Promise((resolve) => setImmediate(resolve));
      expect(health.status).to.equal(200);
      expect(healthMs, '/health latency (ms) while tokenizing').to.be.below(1_000);
      expect(valid.status).to.equal(200);
      expect(longDone, 'the valid request did not wait for the long word').to.equal(false);
      const long = await longWord;
      // Over the context once tokenized: an exact count, not the character bound.
      expect(long.status).to.equal(413);
      expect((long.body as { error: string }).error).to.match(/^body: \d+ tokens exceed the model's context of 4096$/);
    });
  });

  describe('SIGTERM under load', () => {
    let child: ChildProcess | undefined;

    after(() => {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });

    it('answers every request it received, 200 or 503 with a JSON body, then exits 0', async () => {
      const dir = await tinyCheckpoint();
      // Forward passes of one request each, so the queue drains slowly while more arrive.
      child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'serve', '--model', dir, '--port', '0', '--backend', 'cpu', '--max-batch-tokens', '512'], {
        cwd: repoRoot,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      const exit = new Promise<number | null>((resolve) => child!.on('exit', (code) => resolve(code)));
      const url = await new Promise<string>((resolve, reject) => {
        child!.stderr!.setEncoding('utf8');
        child!.stderr!.on('data', (d: string) => {
          stderr += d;
          const m = /listening on (http:\/\/\S+)/.exec(stderr);
          if (m) resolve(m[1]);
        });
        void exit.then((code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
      });
      const long = { problem: Array.from({ length: 60 }, (_, i) => ['Ann', 'has', 'apples', 'and', 'buys', 'more'][i % 6]).join(' '), steps: VALID.steps };
      const first = Array.from({ length: 20 }, () => postOwnConnection(url, long));
      await Promise.race(first);
      // A second wave is on its way (connecting, in the backlog or being read) when the signal lands.
      const second = Array.from({ length: 20 }, () => postOwnConnection(url, long));
      await new Promise((resolve) => setTimeout(resolve, 5));
      child.kill('SIGTERM');
      const answers = await Promise.all([...first, ...second]);
      const statuses: Record<string, number> = {};
      for (const a of answers) statuses[String(a.status)] = (statuses[String(a.status)] ?? 0) + 1;
      for (const a of answers) {
        expect(a.status, `every request answered: ${JSON.stringify(statuses)} ${a.error ?? ''}`).to.be.oneOf([200, 503]);
        if (a.status === 503) expect((a.body as { error: string }).error).to.be.a('string');
      }
      expect(statuses['200'], JSON.stringify(statuses)).to.be.at.least(1);
      expect(await exit).to.equal(0);
    });
  });

  describe('slow uploads, browsers and DNS rebinding (tiny model)', () => {
    let server: RewardServer;
    let port: number;

    before(async () => {
      await selectBackend('cpu', { log: () => {} });
      const dir = await tinyCheckpoint();
      server = await startRewardServer({ model: dir, port: 0, log: () => {}, maxQueue: 4, bodyTimeoutMs: 1500, maxBodiesPerAddress: 8, allowedHosts: ['prm.internal'], encodeWorkers: 0 });
      port = Number(new URL(server.url).port);
    });
    after(async () => {
      await server?.close();
    });

    /** A raw request with the given headers and body, from localAddress. */
    function raw(opts: { headers: Record<string, string | number>; body?: string; localAddress?: string; trickleMs?: number }): Promise<{ status: number | string; body: string }> {
      return new Promise((resolve) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: '/v1/score', method: 'POST', agent: false, headers: opts.headers, localAddress: opts.localAddress }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        });
        req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: e.code ?? e.message, body: '' }));
        if (opts.trickleMs === undefined) {
          req.end(opts.body ?? '');
          return;
        }
        // One byte now and then, never the whole declared body.
        req.flushHeaders();
        const timer = setInterval(() => (req.destroyed ? clearInterval(timer) : req.write('{')), opts.trickleMs);
        req.on('close', () => clearInterval(timer));
      });
    }

    const json = JSON.stringify(VALID);
    const jsonHeaders = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(json) };

    it('40 clients trickling 1 byte/200 ms hold no queue slot: a valid client is answered 200; the tricklers get 429 beyond 8 per address, 408 at the deadline', async () => {
      const slow = Array.from({ length: 40 }, () => raw({ headers: { 'Content-Type': 'application/json', 'Content-Length': 1000 }, localAddress: '127.0.0.2', trickleMs: 200 }));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const valid = await raw({ headers: jsonHeaders, body: json });
      expect(valid.status, valid.body).to.equal(200);
      const answers = await Promise.all(slow);
      const counts: Record<string, number> = {};
      for (const a of answers) counts[String(a.status)] = (counts[String(a.status)] ?? 0) + 1;
      expect(counts, JSON.stringify(counts)).to.deep.equal({ 408: 8, 429: 32 });
    });

    it('a POST without Content-Type (what a cross-site Blob or form post can send) or with text/plain is 415', async () => {
      for (const type of [undefined, 'text/plain', 'application/x-www-form-urlencoded', 'application/jsonp']) {
        const headers: Record<string, string | number> = { 'Content-Length': Buffer.byteLength(json) };
        if (type) headers['Content-Type'] = type;
        const r = await raw({ headers, body: json });
        expect(r.status, `${type}: ${r.body}`).to.equal(415);
      }
      expect((await raw({ headers: { ...jsonHeaders, 'Content-Type': 'application/json; charset=utf-8' }, body: json })).status).to.equal(200);
    });

    it('a Host that is not the bound address (DNS rebinding) is 421; localhost, 127.0.0.1 and --allowed-hosts names on the right port pass', async () => {
      for (const host of [`attacker.example:${port}`, `127.0.0.1:${port + 1}`, 'prm.internal', `127.0.0.1.attacker.example:${port}`]) {
        const r = await raw({ headers: { ...jsonHeaders, Host: host }, body: json });
        expect(r.status, `${host}: ${r.body}`).to.equal(421);
      }
      for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `PRM.internal:${port}`]) {
        const r = await raw({ headers: { ...jsonHeaders, Host: host }, body: json });
        expect(r.status, `${host}: ${r.body}`).to.equal(200);
      }
    });
  });
});
