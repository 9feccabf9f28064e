import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/backend.js';
import { loadScoringModel, scoreSamples } from '../../src/eval/score.js';
import { DEFAULT_SYSTEM_PROMPT } from '../../src/model/encode.js';
import { PrmTokenizer } from '../../src/model/tokenizer.js';
import { buildWordLevelTokenizer } from '../../src/model/word-tokenizer.js';
import { chatFrame, splitQuery } from '../../src/serve/query-split.js';
import { startRewardServer, type LoadedScoringModel, type RewardServer } from '../../src/serve/server.js';
import { problems, tinyCheckpoint } from '../support/tiny-prm.js';
import { post } from './helpers.js';

const TOKEN = 'reward-routes-token';
const quiet = (): void => {};
const min = (xs: number[]): number => Math.min(...xs);

describe('serve: reward protocols (/get_reward, aggregate, id)', function () {
  this.timeout(60_000);
  let prm: LoadedScoringModel;
  let expected: number[][];
  let server: RewardServer;
  let tensorsBefore: number;

  before(async () => {
    await selectBackend('wasm', { log: quiet });
    const dir = await tinyCheckpoint();
    prm = await loadScoringModel(dir);
    expected = (await scoreSamples(prm.model, prm.tokenizer, problems)).stepScores as number[][];
    tensorsBefore = tf.memory().numTensors;
    server = await startRewardServer({ model: prm, port: 0, token: TOKEN, maxSteps: 12, maxWaitMs: 30, encodeWorkers: 0, log: quiet });
  });

  after(async () => {
    await server?.close();
    if (prm) expect(tf.memory().numTensors).to.equal(tensorsBefore);
    prm?.model.dispose();
  });

  /** What OpenRLHF sends: the policy's prompt rendered with a chat template, then the response and its end-of-turn token. */
  const promptOf = (problem: string, system: string | null = 'You are a careful solver.'): string => prm.tokenizer.renderChat(system, problem);
  const queryOf = (p: { problem: string; steps: string[] }): string => `${promptOf(p.problem)}${p.steps.join('\n\n')}<|im_end|>`;

  it('POST /get_reward answers OpenRLHF {query, prompts, labels} with {rewards}: min of the step scores', async () => {
    const body = { query: problems.map(queryOf), prompts: problems.map((p) => promptOf(p.problem)), labels: problems.map(() => '7') };
    const res = await post(`${server.url}/get_reward`, body, { token: TOKEN });
    expect(res.status).to.equal(200);
    const answer = res.body as { rewards: number[]; scores: number[]; step_scores: number[][]; aggregate: string };
    expect(answer.aggregate).to.equal('min');
    expect(answer.rewards).to.have.lengthOf(problems.length);
    answer.rewards.forEach((r, i) => expect(r).to.be.closeTo(min(expected[i]), 1e-6));
    expect(answer.scores).to.deep.equal(answer.rewards);
    answer.step_scores.forEach((s, i) => s.forEach((x, k) => expect(x).to.be.closeTo(expected[i][k], 1e-6)));
  });

  it('cuts queries without prompts by the chat template, and takes a per-request aggregate', async () => {
    const res = await post(`${server.url}/get_reward`, { query: problems.slice(0, 3).map(queryOf), aggregate: 'last' }, { token: TOKEN });
    expect(res.status).to.equal(200);
    (res.body as { rewards: number[] }).rewards.forEach((r, i) => expect(r).to.be.closeTo(expected[i].at(-1)!, 1e-6));
  });

  it('gives an empty response reward 0 without failing the batch; refuses a query it cannot cut (422)', async () => {
    const empty = `${promptOf('What is 9 * 8?')}<|im_end|>`;
    const res = await post(`${server.url}/get_reward`, { query: [empty, queryOf(problems[2])] }, { token: TOKEN });
    expect(res.status).to.equal(200);
    const answer = res.body as { rewards: number[]; step_scores: number[][] };
    expect(answer.rewards[0]).to.equal(0);
    expect(answer.step_scores[0]).to.deep.equal([]);
    expect(answer.rewards[1]).to.be.closeTo(min(expected[2]), 1e-6);

    const cases: [unknown, RegExp][] = [
      [{ query: ['no chat frame at all'] }, /^query\[0\]: no assistant turn found .*send "prompts" too\)$/],
      [{ query: [queryOf(problems[0])], prompts: ['another prompt'] }, /^query\[0\]: the query does not start with its prompt$/],
      [{ query: [queryOf(problems[0])], prompts: [] }, /prompts: 0 prompts for 1 queries/],
      [{ query: [] }, /query: must hold at least one query/],
      [{ prompts: ['x'] }, /^invalid request: query: .*expected \{"query"/],
      [{ query: [queryOf(problems[0])], aggregate: 'max' }, /aggregate: must be one of min, prod, last, mean, geomean, got "max"/],
    ];
    for (const [body, message] of cases) {
      const bad = await post(`${server.url}/get_reward`, body, { token: TOKEN });
      expect(bad.status, JSON.stringify(body)).to.equal(422);
      expect((bad.body as { error: string }).error).to.match(message);
    }
  });

  it('shares auth and limits with /v1/score', async () => {
    expect((await post(`${server.url}/get_reward`, { query: [queryOf(problems[0])] })).status).to.equal(401);
    // 13 steps over the request: the same step limit as /v1/score.
    const many = await post(`${server.url}/get_reward`, { query: [queryOf(problems[3]), queryOf(problems[3]), queryOf(problems[3]), queryOf(problems[0])] }, { token: TOKEN });
    expect(many.status).to.equal(413);
    expect((many.body as { error: string }).error).to.match(/too many steps: 15/);
    // An item the scorer refuses is named by its place in "query" (the empty first one is not scored).
    const long = { problem: 'apples '.repeat(300), steps: ['She buys 4, so 3 + 4 = 7.'] };
    const context = await post(`${server.url}/get_reward`, { query: [`${promptOf('x')}<|im_end|>`, queryOf(long)] }, { token: TOKEN });
    expect(context.status).to.equal(413);
    expect((context.body as { error: string }).error).to.match(/^query\[1\]: .*tokens exceed the model's context of 512$/);
  });

  it('batches /get_reward with /v1/score requests in shared forward passes', async () => {
    const before = server.stats();
    const replies = await Promise.all(
      Array.from({ length: 10 }, (_, k) =>
        k % 2 === 0 ? post(`${server.url}/get_reward`, { query: [queryOf(problems[k % 5])] }, { token: TOKEN }) : post(`${server.url}/v1/score`, problems[k % 5], { token: TOKEN }),
      ),
    );
    replies.forEach((r) => expect(r.status).to.equal(200));
    const after = server.stats();
    expect(after.batches - before.batches).to.be.below(10);
    expect(after.maxRequestsInBatch).to.be.greaterThan(1);
  });

  it('/v1/score: passes item ids through and adds one reward per item by the requested aggregate', async () => {
    const items = problems.slice(0, 4).map((p, i) => ({ ...p, id: i % 2 === 0 ? `rollout-${i}` : i }));
    for (const aggregate of ['min', 'prod', 'last', 'mean'] as const) {
      const res = await post(`${server.url}/v1/score`, { items, aggregate }, { token: TOKEN });
      expect(res.status).to.equal(200);
      const results = (res.body as { results: { id: unknown; reward: number; step_scores: number[] }[] }).results;
      results.forEach((r, i) => {
        expect(r.id).to.equal(items[i].id);
        const s = expected[i];
        const want = { min: min(s), prod: s.reduce((a, b) => a * b, 1), last: s[s.length - 1], mean: s.reduce((a, b) => a + b, 0) / s.length }[aggregate];
        expect(r.reward, aggregate).to.be.closeTo(want, 1e-6);
      });
    }
    const single = await post(`${server.url}/v1/score`, { ...problems[1], id: 'one' }, { token: TOKEN });
    expect(single.body).to.include({ id: 'one', aggregate: 'min' });
    expect((single.body as { reward: number }).reward).to.be.closeTo(min(expected[1]), 1e-6);
    const badId = await post(`${server.url}/v1/score`, { items: [{ ...problems[0], id: { x: 1 } }] }, { token: TOKEN });
    expect(badId.status).to.equal(422);
    expect((badId.body as { error: string }).error).to.equal('invalid request: items[0].id: must be a string or a number');
    const badAgg = await post(`${server.url}/v1/score`, { ...problems[0], aggregate: 3 }, { token: TOKEN });
    expect(badAgg.status).to.equal(422);
    // Other unknown fields are still refused.
    expect((await post(`${server.url}/v1/score`, { ...problems[0], model: 'x' }, { token: TOKEN })).status).to.equal(422);
  });

  it('refuses an unknown aggregate at start', async () => {
    let error: unknown;
    try {
      await startRewardServer({ model: prm, port: 0, aggregate: 'max' as never, log: quiet });
    } catch (e) {
      error = e;
    }
    expect(String(error)).to.match(/aggregate must be one of min, prod, last, mean, geomean, got "max"/);
  });
});

describe('serve: query splitting by the chat template', () => {
  const files = buildWordLevelTokenizer(['a b c']);

  it('finds the ChatML frame and cuts a query with or without its prompt', () => {
    const tok = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson);
    const frame = chatFrame(tok);
    expect(frame.userOpen).to.equal('<|im_start|>user\n');
    expect(frame.assistantOpen).to.equal('<|im_end|>\n<|im_start|>assistant\n');
    const prompt = tok.renderChat(DEFAULT_SYSTEM_PROMPT, 'What is 2+2?');
    const query = `${prompt}2+2 = 4.\n\nThe answer is 4.<|im_end|>\n`;
    const want = { problem: 'What is 2+2?', response: '2+2 = 4.\n\nThe answer is 4.' };
    expect(splitQuery(frame, query)).to.deep.equal(want);
    expect(splitQuery(frame, query, prompt)).to.deep.equal(want);
    // A raw prompt (no template): the whole prompt is the problem.
    expect(splitQuery(frame, 'Q: 2+2?\nA: 4', 'Q: 2+2?\n')).to.deep.equal({ problem: 'Q: 2+2?', response: 'A: 4' });
  });

  it('finds the user opener under a template that adds a default system turn (Qwen2.5 style)', () => {
    const template =
      "{%- if messages[0]['role'] != 'system' -%}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' -}}{%- endif -%}" +
      "{%- for message in messages -%}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' -}}{%- endfor -%}" +
      "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";
    const tok = PrmTokenizer.fromFiles(files.tokenizerJson, files.tokenizerConfigJson, { chatTemplate: template });
    const frame = chatFrame(tok);
    expect(frame.userOpen.endsWith('<|im_start|>user\n')).to.equal(true);
    const query = `${tok.renderChat(null, 'Find x.')}x = 3.<|im_end|>`;
    expect(splitQuery(frame, query)).to.deep.equal({ problem: 'Find x.', response: 'x = 3.' });
  });
});
