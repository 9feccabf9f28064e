import { expect } from 'chai';
import { appendFile, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson, requestKey, ResponseCache } from '../../src/labels/cache.js';
import { normalizeEndpoint, OpenAIClient, parseEndpoints } from '../../src/labels/client.js';
import { renderPolicyPrompt } from '../../src/labels/prompts.js';
import { startSimServer, type SimServer } from '../../src/sim/server.js';
import { simProblems, simSolutions } from '../../src/sim/world.js';

const samples = simSolutions(simProblems(12, 3), 1, 4);
const body = (i: number, seed = 1) => ({ model: 'sim-policy', prompt: renderPolicyPrompt(samples[i].problem, samples[i].steps.slice(0, 1)), n: 4, max_tokens: 400, temperature: 0.7, seed });

describe('OpenAI-compatible client', () => {
  let server: SimServer;
  let dir: string;
  before(async () => {
    server = await startSimServer({ seed: 2 });
    dir = await mkdtemp(join(tmpdir(), 'prmkit-client-'));
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('normalises endpoints and splits comma lists', () => {
    expect(normalizeEndpoint('http://h:8000/v1/')).to.equal('http://h:8000');
    expect(parseEndpoints('http://a:1,http://b:2/v1')).to.deep.equal(['http://a:1', 'http://b:2']);
    expect(() => parseEndpoints('localhost:8000')).to.throw(/not an http/);
  });

  it('keys requests by canonical body, independent of key order and endpoint', () => {
    expect(canonicalJson({ b: 1, a: [1, { d: 2, c: 3 }] })).to.equal('{"a":[1,{"c":3,"d":2}],"b":1}');
    expect(requestKey('/v1/completions', { a: 1, b: 2 })).to.equal(requestKey('/v1/completions', { b: 2, a: 1 }));
    expect(requestKey('/v1/completions', { a: 1 })).to.not.equal(requestKey('/v1/chat/completions', { a: 1 }));
  });

  it('retries 500/429/malformed replies with backoff and returns what a clean server returns', async () => {
    const faulty = await startSimServer({ seed: 2, faultRate: 0.3, malformedRate: 0.15, latencyMs: 3 });
    try {
      const clean = new OpenAIClient({ endpoints: [server.url] });
      const flaky = new OpenAIClient({ endpoints: [faulty.url], backoffMs: 2, maxBackoffMs: 10, maxRetries: 30 });
      for (let i = 0; i < samples.length; i++) expect(await flaky.completions(body(i))).to.deep.equal(await clean.completions(body(i)));
      const s = flaky.stats();
      expect(s.retries).to.be.greaterThan(0);
      expect(s.retries).to.equal(s.malformed + (s.httpErrors['500'] ?? 0) + (s.httpErrors['429'] ?? 0));
      expect(s.requests).to.equal(samples.length + s.retries);
      expect(s.failures).to.equal(0);
    } finally {
      await faulty.close();
    }
  });

  it('times out hung requests, retries them, and gives up after maxRetries', async () => {
    const hung = await startSimServer({ hangRate: 1 });
    try {
      const client = new OpenAIClient({ endpoints: [hung.url], timeoutMs: 150, maxRetries: 1, backoffMs: 1 });
      let error: Error | undefined;
      await client.completions(body(0)).catch((e: Error) => (error = e));
      expect(error?.message).to.match(/no reply within 150 ms.*gave up after 2 attempts/);
      expect(client.stats()).to.include({ requests: 2, timeouts: 2, retries: 1, failures: 1 });
    } finally {
      await hung.close();
    }
  });

  it('does not retry a request the server rejects as bad (4xx)', async () => {
    const client = new OpenAIClient({ endpoints: [server.url], backoffMs: 1 });
    let error: Error | undefined;
    await client.completions({ model: 'm', prompt: 'x', n: 0 }).catch((e: Error) => (error = e));
    expect(error?.message).to.match(/HTTP 400/);
    expect(client.stats()).to.include({ requests: 1, retries: 0, failures: 1 });
  });

  it('balances over several endpoints by least in flight', async () => {
    const second = await startSimServer({ seed: 2, latencyMs: 10 });
    try {
      const client = new OpenAIClient({ endpoints: [server.url, second.url], concurrency: 6 });
      await Promise.all(samples.map((_, i) => client.completions(body(i, 9))));
      const [a, b] = client.stats().endpoints;
      expect(a.requests + b.requests).to.equal(samples.length);
      expect(a.requests).to.be.greaterThan(0);
      expect(b.requests).to.be.greaterThan(0);
    } finally {
      await second.close();
    }
  });

  it('sends identical requests in flight at once only once', async () => {
    server.resetStats();
    const client = new OpenAIClient({ endpoints: [server.url] });
    const [x, y] = await Promise.all([client.completions(body(1, 77)), client.completions(body(1, 77))]);
    expect(x).to.deep.equal(y);
    expect(server.stats.requests).to.equal(1);
    expect(client.stats().cacheHits).to.equal(1);
  });

  it('caches responses on disk: a new client (new process) re-sends nothing it has; torn lines are ignored', async () => {
    const cacheDir = join(dir, 'cache');
    const first = await ResponseCache.open(cacheDir);
    const a = new OpenAIClient({ endpoints: [server.url], cache: first });
    const replies = await Promise.all(samples.map((_, i) => a.completions(body(i, 3))));
    await first.close();
    // A killed writer leaves a partial last line behind.
    const [shard] = await readdir(cacheDir);
    await appendFile(join(cacheDir, shard), '{"key":"abc","respo');

    server.resetStats();
    const second = await ResponseCache.open(cacheDir);
    expect(second.loadReport).to.deep.equal({ shards: 1, entries: samples.length, skippedLines: 1 });
    const b = new OpenAIClient({ endpoints: [server.url], cache: second });
    const again = await Promise.all(samples.map((_, i) => b.completions(body(i, 3))));
    expect(again).to.deep.equal(replies);
    expect(server.stats.requests).to.equal(0);
    expect(b.stats()).to.include({ requests: 0, cacheHits: samples.length });
    await b.completions(body(0, 4));
    expect(server.stats.requests).to.equal(1);
    await second.close();
    const reopened = await ResponseCache.open(cacheDir);
    expect(reopened.size).to.equal(samples.length + 1);
    expect(reopened.loadReport.shards).to.equal(2);
    await reopened.close();
  });
});
