import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderSample } from '../../src/model/encode.js';
import { isPoolingUrl, openRemoteReward, vllmPoolingReward } from '../../src/search/reward.js';
import { runScore } from '../../src/cli/commands/score.js';
import { problems, tinyPrm } from '../support/tiny-prm.js';

/**
 * A loopback stand-in for `vllm serve --runner pooling` with a Qwen2ForProcessRewardModel: it
 * answers POST /pooling in vLLM's shape, one [P(wrong), P(right)] row per step token of each
 * input text (or raw logits), and 400 for a text longer than its "context".
 */
function fakeVllm(stepToken: string, mode: { logits?: boolean; contextChars?: number } = {}) {
  const bodies: { model?: string; input: string[] }[] = [];
  const server: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString('utf8')));
    req.on('end', () => {
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || req.url !== '/pooling') return send(404, { detail: 'Not Found' });
      const body = JSON.parse(text) as { model?: string; input: string[] };
      bodies.push(body);
      const inputs = typeof body.input === 'string' ? [body.input] : body.input;
      const tooLong = inputs.find((t) => t.length > (mode.contextChars ?? Infinity));
      if (tooLong !== undefined) {
        return send(400, { object: 'error', message: `This model's maximum context length is ${mode.contextChars} tokens. However, you requested more.`, type: 'BadRequestError', code: 400 });
      }
      const data = inputs.map((t, index) => {
        const steps = t.split(stepToken).length - 1;
        // Step k of a text scores p = (k + 1) / (steps + 2): known to the test, different per step.
        const rows = Array.from({ length: steps }, (_, k) => {
          const p = (k + 1) / (steps + 2);
          return mode.logits ? [0, Math.log(p / (1 - p))] : [1 - p, p];
        });
        return { index, object: 'pooling', data: rows };
      });
      send(200, { id: 'pool-1', object: 'list', created: 1, model: body.model ?? 'prm', data, usage: { prompt_tokens: 10, total_tokens: 10 } });
    });
  });
  return {
    bodies,
    async start(): Promise<string> {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}/pooling`;
    },
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const expectedFor = (steps: number): number[] => Array.from({ length: steps }, (_, k) => (k + 1) / (steps + 2));

describe('search/score: a PRM served by vLLM (/pooling)', function () {
  this.timeout(30_000);
  const { model, tokenizer, files } = tinyPrm();
  model.dispose();
  const dir = mkdtempSync(join(tmpdir(), 'prmkit-pooling-'));
  writeFileSync(join(dir, 'tokenizer.json'), files.tokenizerJson);
  writeFileSync(join(dir, 'tokenizer_config.json'), files.tokenizerConfigJson);

  it('recognises pooling URLs', () => {
    expect(isPoolingUrl('http://gpu:8000/pooling')).to.equal(true);
    expect(isPoolingUrl('http://gpu:8000/pooling/')).to.equal(true);
    expect(isPoolingUrl('http://gpu:8000')).to.equal(false);
    expect(isPoolingUrl('http://gpu:8000/v1/score')).to.equal(false);
  });

  for (const logits of [false, true]) {
    it(`sends prmkit's rendering of each item and reads one score per step (${logits ? 'raw logits' : 'probabilities'})`, async () => {
      const fake = fakeVllm(tokenizer.stepToken, { logits });
      const url = await fake.start();
      try {
        const reward = vllmPoolingReward(url, tokenizer, { model: 'my-prm', batchItems: 2 });
        const scores = await reward.score([...problems, { problem: 'no steps', steps: [] }]);
        problems.forEach((p, i) => {
          expect(scores[i]).to.have.lengthOf(p.steps.length);
          scores[i]!.forEach((x, k) => expect(x).to.be.closeTo(expectedFor(p.steps.length)[k], 1e-9));
        });
        expect(scores[problems.length]).to.equal(null);
        // The text vLLM tokenizes is the one prmkit encodes (chat template, steps closed by the step token).
        const sent = fake.bodies.flatMap((b) => b.input);
        expect(sent).to.deep.equal(problems.map((p) => renderSample(tokenizer, p)));
        expect(fake.bodies.every((b) => b.model === 'my-prm')).to.equal(true);
        expect(fake.bodies.map((b) => b.input.length)).to.deep.equal([2, 2, 1]);
      } finally {
        await fake.stop();
      }
    });
  }

  it('leaves an item longer than the context unscored (vLLM 400), retrying the rest alone', async () => {
    const longest = Math.max(...problems.map((p) => renderSample(tokenizer, p).length));
    const fake = fakeVllm(tokenizer.stepToken, { contextChars: longest - 1 });
    const url = await fake.start();
    try {
      const reward = await openRemoteReward(url, { tokenizerDir: dir });
      const scores = await reward.score(problems);
      const lengths = problems.map((p) => renderSample(tokenizer, p).length);
      scores.forEach((s, i) => {
        if (lengths[i] === longest) expect(s).to.equal(null);
        else expect(s).to.have.lengthOf(problems[i].steps.length);
      });
    } finally {
      await fake.stop();
    }
  });

  it('refuses a reply whose step count does not match, and a pooling URL without the tokenizer', async () => {
    const fake = fakeVllm('<not-the-step-token>');
    const url = await fake.start();
    try {
      const reward = vllmPoolingReward(url, tokenizer, { maxRetries: 0 });
      let error: unknown;
      await reward.score([problems[0]]).catch((e: unknown) => (error = e));
      expect(String(error)).to.match(/0 step scores for 3 steps \(serve the model with the STEP pooler and step_tag_id/);
    } finally {
      await fake.stop();
    }
    let missing: unknown;
    await openRemoteReward('http://127.0.0.1:9/pooling', {}).catch((e: unknown) => (missing = e));
    expect(String(missing)).to.match(/give --reward-tokenizer DIR/);
  });

  it('prmkit score --reward URL/pooling writes the step scores vLLM gave', async () => {
    const fake = fakeVllm(tokenizer.stepToken);
    const url = await fake.start();
    try {
      const input = join(dir, 'in.jsonl');
      const out = join(dir, 'out.jsonl');
      writeFileSync(input, problems.map((p, i) => JSON.stringify({ id: i, problem: p.problem, response: p.steps.join('\n\n') })).join('\n') + '\n');
      const result = await runScore({ reward: url, 'reward-tokenizer': dir, input, out, backend: 'auto' });
      expect(result).to.deep.include({ lines: problems.length, tooLongLines: [] });
      const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: number; steps: string[]; step_scores: number[] });
      lines.forEach((l, i) => {
        expect(l.id).to.equal(i);
        expect(l.steps).to.deep.equal(problems[i].steps);
        l.step_scores.forEach((x, k) => expect(x).to.be.closeTo(expectedFor(problems[i].steps.length)[k], 1e-9));
      });
    } finally {
      await fake.stop();
    }
  });
});

