import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/backend.js';
import { loadScoringModel, scoreSamples } from '../../src/eval/score.js';
import { startRewardServer, type LoadedScoringModel, type RewardServer } from '../../src/serve/server.js';
import { problems, tinyCheckpoint } from '../support/tiny-prm.js';
import { Gate, get, post, postChunked, until } from './helpers.js';

const TOKEN = 'test-secret-token';
const quiet = (): void => {};

function expectScores(actual: unknown, expected: number[]): void {
  expect(actual).to.be.an('array').with.lengthOf(expected.length);
  (actual as number[]).forEach((s, i) => expect(s).to.be.closeTo(expected[i], 1e-6));
}

describe('serve: reward server', function () {
  this.timeout(60_000);
  let dir: string;
  let prm: LoadedScoringModel;
  let expected: number[][];
  let server: RewardServer;
  const gate = new Gate();

  before(async () => {
    await selectBackend('wasm', { log: quiet });
    dir = await tinyCheckpoint();
    prm = await loadScoringModel(dir);
    expected = (await scoreSamples(prm.model, prm.tokenizer, problems)).stepScores as number[][];
    const tensorsBefore = tf.memory().numTensors;
    server = await startRewardServer({
      model: dir,
      port: 0,
      backend: 'wasm',
      token: TOKEN,
      maxBodyBytes: 4096,
      maxSteps: 12,
      maxTokens: 600,
      maxWaitMs: 30,
      beforeForward: gate.pass,
      log: quiet,
    });
    // The server's model lives in the same TensorFlow.js engine the leak check below reads.
    expect(tf.memory().numTensors - tensorsBefore).to.equal(prm.model.variables.size);
  });

  after(async () => {
    await server?.close();
    prm?.model.dispose();
  });

  it('listens on loopback and reports health', async () => {
    expect(server.url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await get(`${server.url}/health`, { token: TOKEN });
    expect(res.status).to.equal(200);
    expect(res.body).to.include({ status: 'ok', ready: true, model: 'prm', backend: 'wasm', queue_depth: 0 });
  });

  it('scores one {problem, steps} exactly as scoreSamples does', async () => {
    for (let i = 0; i < problems.length; i++) {
      const res = await post(`${server.url}/v1/score`, problems[i], { token: TOKEN });
      expect(res.status).to.equal(200);
      expectScores((res.body as { step_scores: unknown }).step_scores, expected[i]);
    }
  });

  it('scores a batch {items: [...]} in order', async () => {
    const res = await post(`${server.url}/v1/score`, { items: problems.slice(0, 4) }, { token: TOKEN });
    expect(res.status).to.equal(200);
    const results = (res.body as { results: { step_scores: unknown }[] }).results;
    expect(results).to.have.lengthOf(4);
    results.forEach((r, i) => expectScores(r.step_scores, expected[i]));
  });

  it('batches concurrent requests of many clients into shared forward passes', async () => {
    const before = server.stats();
    const replies = await Promise.all(Array.from({ length: 20 }, (_, k) => post(`${server.url}/v1/score`, problems[k % problems.length], { token: TOKEN })));
    replies.forEach((res, k) => {
      expect(res.status).to.equal(200);
      expectScores((res.body as { step_scores: unknown }).step_scores, expected[k % problems.length]);
    });
    const after = server.stats();
    const batches = after.batches - before.batches;
    expect(after.sequences - before.sequences).to.equal(20);
    expect(batches).to.be.below(20);
    expect(after.maxRequestsInBatch).to.be.greaterThan(1);
  });

  it('enforces the bearer token (401) on every route', async () => {
    const sample = problems[0];
    for (const token of [undefined, 'wrong-token', `${TOKEN}x`, '']) {
      const res = await post(`${server.url}/v1/score`, sample, { token });
      expect(res.status, `token ${token}`).to.equal(401);
      expect(res.headers.get('www-authenticate')).to.equal('Bearer');
    }
    const basic = await post(`${server.url}/v1/score`, sample, { headers: { Authorization: `Basic ${TOKEN}` } });
    expect(basic.status).to.equal(401);
    expect((await get(`${server.url}/health`)).status).to.equal(401);
  });

  it('refuses a body over the limit with 413, announced or streamed', async () => {
    const big = { problem: 'x'.repeat(5000), steps: ['a'] };
    const res = await post(`${server.url}/v1/score`, big, { token: TOKEN });
    expect(res.status).to.equal(413);
    expect((res.body as { error: string }).error).to.match(/Content-Length \d+ exceeds the limit of 4096 bytes/);
    // Chunked, no Content-Length: refused while streaming, long before the 1 MB are sent.
    const streamed = await postChunked(`${server.url}/v1/score`, 256, 4096, TOKEN);
    expect(streamed.status).to.equal(413);
    expect((streamed.body as { error: string }).error).to.match(/more than 4096 bytes/);
    // The server is still fine afterwards.
    expect((await post(`${server.url}/v1/score`, problems[2], { token: TOKEN })).status).to.equal(200);
  });

  it('refuses too many steps and too many tokens with 413', async () => {
    const steps = await post(`${server.url}/v1/score`, { problem: 'p', steps: Array.from({ length: 13 }, () => 'a') }, { token: TOKEN });
    expect(steps.status).to.equal(413);
    expect((steps.body as { error: string }).error).to.equal('too many steps: 13 in this request, the limit is 12');
    const spread = await post(`${server.url}/v1/score`, { items: [problems[3], problems[3], problems[3], problems[3]] }, { token: TOKEN });
    expect(spread.status).to.equal(413);
    expect((spread.body as { error: string }).error).to.match(/too many steps: 16/);
    const medium = { problem: 'apples '.repeat(120), steps: ['She buys 4, so 3 + 4 = 7.'] };
    const tokens = await post(`${server.url}/v1/score`, { items: [medium, medium, medium] }, { token: TOKEN });
    expect(tokens.status).to.equal(413);
    expect((tokens.body as { error: string }).error).to.match(/^too many tokens: more than 600 in this request \(\d+ after items\[[12]\]\)$/);
    // One item longer than the model's context (512 positions) cannot be scored whole.
    const long = { problem: 'apples '.repeat(300), steps: ['She buys 4, so 3 + 4 = 7.'] };
    const context = await post(`${server.url}/v1/score`, long, { token: TOKEN });
    expect(context.status).to.equal(413);
    expect((context.body as { error: string }).error).to.match(/^body: \d+ tokens exceed the model's context of 512$/);
  });

  it('answers malformed requests with 422 and the reason', async () => {
    const cases: [unknown, RegExp][] = [
      ['{"problem": "p", "steps": [', /^malformed JSON: /],
      ['', /empty body/],
      ['[1, 2]', /expected a JSON object/],
      ['"text"', /expected a JSON object/],
      [{ problem: 3, steps: ['a'] }, /^invalid request: problem: Invalid input: expected string, received number/],
      [{ problem: 'p' }, /steps: Invalid input: expected array, received undefined/],
      [{ problem: 'p', steps: [] }, /steps: must hold at least one step/],
      [{ problem: 'p', steps: ['ok', 7] }, /steps\[1\]: Invalid input: expected string/],
      [{ problem: 'p', steps: 'one step' }, /steps: Invalid input: expected array/],
      [{ items: [] }, /items: must hold at least one item/],
      [{ items: [problems[0], { problem: 'p', steps: [] }] }, /items\[1\]\.steps: must hold at least one step/],
      [{ problem: 'p', steps: ['a <extra_0> b'] }, /^body\.steps\[0\]: contains the step token <extra_0>/],
      [{ items: [{ problem: 'p <extra_0>', steps: ['a'] }] }, /^items\[0\]\.problem: contains the step token/],
    ];
    for (const [body, reason] of cases) {
      const res = await post(`${server.url}/v1/score`, body, { token: TOKEN });
      expect(res.status, JSON.stringify(body)).to.equal(422);
      expect((res.body as { error: string }).error).to.match(reason);
    }
  });

  it('lets no request choose a model or a path (422 names the field)', async () => {
    for (const extra of [{ model: '/etc' }, { path: '/etc/passwd' }, { model_dir: '../x', backend: 'wasm' }]) {
      const res = await post(`${server.url}/v1/score`, { ...problems[0], ...extra }, { token: TOKEN });
      expect(res.status).to.equal(422);
      const error = (res.body as { error: string }).error;
      for (const key of Object.keys(extra)) expect(error).to.include(`"${key}"`);
      expect(error).to.include('the model is fixed when the server starts');
    }
    const nested = await post(`${server.url}/v1/score`, { items: [{ ...problems[0], model: 'x' }] }, { token: TOKEN });
    expect(nested.status).to.equal(422);
    expect((nested.body as { error: string }).error).to.match(/items\[0\]: unknown field "model"/);
  });

  it('refuses a non-JSON content type with 415', async () => {
    const res = await post(`${server.url}/v1/score`, JSON.stringify(problems[0]), { token: TOKEN, headers: { 'Content-Type': 'text/plain' } });
    expect(res.status).to.equal(415);
  });

  it('answers unknown routes with 404 and wrong methods with 405 + Allow', async () => {
    const missing = await get(`${server.url}/v1/nothing`, { token: TOKEN });
    expect(missing.status).to.equal(404);
    const wrong = await get(`${server.url}/v1/score`, { token: TOKEN });
    expect(wrong.status).to.equal(405);
    expect(wrong.headers.get('allow')).to.equal('POST');
    const del = await get(`${server.url}/health`, { token: TOKEN, method: 'DELETE' });
    expect(del.status).to.equal(405);
    expect(del.headers.get('allow')).to.equal('GET, HEAD');
  });

  it('answers 500 when a forward pass fails, and keeps serving', async () => {
    const failing = await startRewardServer({
      model: prm,
      port: 0,
      beforeForward: () => {
        throw new Error('injected failure');
      },
      log: quiet,
    });
    try {
      const res = await post(`${failing.url}/v1/score`, problems[0]);
      expect(res.status).to.equal(500);
      expect(res.body).to.deep.equal({ error: 'internal error' });
      expect(failing.stats().depth).to.equal(0);
    } finally {
      await failing.close();
    }
    expect((await post(`${server.url}/v1/score`, problems[0], { token: TOKEN })).status).to.equal(200);
  });

  it('leaks no tensors over many requests', async () => {
    await post(`${server.url}/v1/score`, problems[0], { token: TOKEN });
    const start = tf.memory().numTensors;
    for (let round = 0; round < 3; round++) {
      await Promise.all(problems.map((p) => post(`${server.url}/v1/score`, p, { token: TOKEN })));
      await post(`${server.url}/v1/score`, { items: problems }, { token: TOKEN });
      await post(`${server.url}/v1/score`, { problem: 'p', steps: [] }, { token: TOKEN });
    }
    expect(tf.memory().numTensors).to.equal(start);
  });

  it('answers 503 with Retry-After when the queue is full', async () => {
    const hold = new Gate();
    hold.close();
    const small = await startRewardServer({ model: prm, port: 0, maxQueue: 2, maxWaitMs: 0, retryAfterSeconds: 3, beforeForward: hold.pass, log: quiet });
    try {
      const first = post(`${small.url}/v1/score`, problems[0]);
      const second = post(`${small.url}/v1/score`, problems[1]);
      await until(() => small.stats().depth === 2, 10_000, 'two queued requests');
      const refused = await post(`${small.url}/v1/score`, problems[2]);
      expect(refused.status).to.equal(503);
      expect(refused.headers.get('retry-after')).to.equal('3');
      expect((refused.body as { error: string }).error).to.match(/queue is full \(2 requests\)/);
      const health = await get(`${small.url}/health`);
      expect(health.body).to.include({ queue_depth: 2, max_queue: 2 });
      hold.open();
      const [a, b] = await Promise.all([first, second]);
      expect([a.status, b.status]).to.deep.equal([200, 200]);
      expectScores((a.body as { step_scores: unknown }).step_scores, expected[0]);
      expectScores((b.body as { step_scores: unknown }).step_scores, expected[1]);
      expect((await post(`${small.url}/v1/score`, problems[2])).status).to.equal(200);
    } finally {
      hold.open();
      await small.close();
    }
  });

  it('close() answers every admitted request, then refuses connections', async () => {
    const hold = new Gate();
    hold.close();
    const s = await startRewardServer({ model: prm, port: 0, maxWaitMs: 0, beforeForward: hold.pass, log: quiet });
    const pending = problems.map((p) => post(`${s.url}/v1/score`, p));
    await until(() => s.stats().depth === problems.length, 10_000, 'queued requests');
    const closed = s.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(s.stats().draining).to.equal(true);
    hold.open();
    const replies = await Promise.all(pending);
    replies.forEach((res, i) => {
      expect(res.status).to.equal(200);
      expectScores((res.body as { step_scores: unknown }).step_scores, expected[i]);
    });
    await closed;
    let refused: unknown;
    try {
      await fetch(`${s.url}/health`);
    } catch (e) {
      refused = e;
    }
    expect(refused, 'connection after close').to.be.instanceOf(Error);
  });

  it('fails to start on a port in use, freeing the model it loaded', async () => {
    const port = Number(new URL(server.url).port);
    const start = tf.memory().numTensors;
    let err: unknown;
    try {
      await startRewardServer({ model: dir, port, backend: 'wasm', log: quiet });
    } catch (e) {
      err = e;
    }
    expect((err as NodeJS.ErrnoException).code).to.equal('EADDRINUSE');
    expect(tf.memory().numTensors).to.equal(start);
  });

  it('rejects bad limits at start', async () => {
    for (const bad of [{ maxQueue: 0 }, { maxBatchTokens: -1 }, { maxWaitMs: 1.5 }, { maxSteps: Number.NaN }]) {
      let err: unknown;
      try {
        await startRewardServer({ model: prm, port: 0, log: quiet, ...bad });
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(bad)).to.be.instanceOf(RangeError);
      expect((err as Error).message).to.include(Object.keys(bad)[0]);
    }
  });
});
