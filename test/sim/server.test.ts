import { expect } from 'chai';
import { gradeAnswer } from '../../src/math/index.js';
import { requestKey } from '../../src/labels/cache.js';
import { buildJudgeMessages, parseJudgeReply, renderPolicyPrompt } from '../../src/labels/prompts.js';
import { startSimServer, type SimServer } from '../../src/sim/server.js';
import { simProblems, simSolutions } from '../../src/sim/world.js';

async function post(url: string, body: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { status: res.status, text: await res.text() };
}

describe('sim server (OpenAI-compatible, over loopback HTTP)', () => {
  const sample = simSolutions(simProblems(5, 1), 1, 2).find((s) => s.steps.length >= 3)!;
  const prompt = renderPolicyPrompt(sample.problem, sample.steps.slice(0, 1));
  const completionBody = { model: 'sim-policy', prompt, n: 4, max_tokens: 512, temperature: 0.7, seed: 5 };
  let server: SimServer;

  before(async () => {
    server = await startSimServer({ seed: 1 });
  });
  after(async () => {
    await server.close();
  });

  it('listens on 127.0.0.1 and lists its models', async () => {
    expect(server.url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${server.url}/v1/models`);
    const body = (await res.json()) as { data: { id: string }[] };
    expect(body.data.map((m) => m.id)).to.deep.equal(['sim-policy', 'sim-judge']);
  });

  it('continues the solution in a completion prompt, n choices, each ending in a boxed answer', async () => {
    const { status, text } = await post(`${server.url}/v1/completions`, completionBody);
    expect(status).to.equal(200);
    const body = JSON.parse(text) as { choices: { index: number; text: string; finish_reason: string }[] };
    expect(body.choices.map((c) => c.index)).to.deep.equal([0, 1, 2, 3]);
    for (const c of body.choices) {
      expect(c.finish_reason).to.equal('stop');
      const full = `${sample.steps[0]}\n\n${c.text}`;
      expect(gradeAnswer(full, sample.answer!).extracted).to.not.equal(null);
    }
  });

  it('replies deterministically: the same request gives the same bytes; another seed other samples; temperature 0 one answer', async () => {
    const a = await post(`${server.url}/v1/completions`, completionBody);
    const b = await post(`${server.url}/v1/completions`, completionBody);
    expect(b.text).to.equal(a.text);
    const texts = (t: string) => (JSON.parse(t) as { choices: { text: string }[] }).choices.map((c) => c.text);
    const seeds = await Promise.all([6, 7, 8].map((seed) => post(`${server.url}/v1/completions`, { ...completionBody, seed })));
    expect(seeds.some((r) => JSON.stringify(texts(r.text)) !== JSON.stringify(texts(a.text)))).to.equal(true);
    const greedy = texts((await post(`${server.url}/v1/completions`, { ...completionBody, temperature: 0 })).text);
    expect(new Set(greedy).size).to.equal(1);
  });

  it('honours max_tokens (OpenAI default 16) and stop', async () => {
    const short = JSON.parse((await post(`${server.url}/v1/completions`, { model: 'm', prompt, seed: 1 })).text) as { choices: { text: string; finish_reason: string }[] };
    expect(short.choices[0].finish_reason).to.equal('length');
    expect(short.choices[0].text.length).to.be.at.most(64);
    const stopped = JSON.parse((await post(`${server.url}/v1/completions`, { model: 'm', prompt, seed: 1, max_tokens: 500, stop: ['\n\n'] })).text) as { choices: { text: string }[] };
    expect(stopped.choices[0].text).to.not.contain('\n\n');
  });

  it('judges on /v1/chat/completions with a boxed paragraph index', async () => {
    const { status, text } = await post(`${server.url}/v1/chat/completions`, { model: 'sim-judge', messages: buildJudgeMessages(sample.problem, sample.steps), temperature: 0, seed: 1 });
    expect(status).to.equal(200);
    const reply = (JSON.parse(text) as { choices: { message: { content: string } }[] }).choices[0].message.content;
    const parsed = parseJudgeReply(reply, sample.steps.length);
    expect(parsed.ok, reply).to.equal(true);
    if (parsed.ok) expect(parsed.index).to.be.within(-1, sample.steps.length - 1);
  });

  it('rejects bad requests with 400/404 and counts requests per content key', async () => {
    expect((await post(`${server.url}/v1/completions`, '{not json')).status).to.equal(400);
    expect((await post(`${server.url}/v1/completions`, { model: 'm', prompt: 3 })).status).to.equal(400);
    expect((await post(`${server.url}/v1/nothing`, {})).status).to.equal(404);
    server.resetStats();
    await post(`${server.url}/v1/completions`, completionBody);
    await post(`${server.url}/v1/completions`, completionBody);
    expect(server.stats.byKey.get(requestKey('/v1/completions', completionBody))).to.deep.equal({ seen: 2, answered: 2 });
  });

  it('injects faults (500, 429, malformed bodies, latency) without changing what a successful reply contains', async () => {
    const faulty = await startSimServer({ seed: 1, faultRate: 0.4, malformedRate: 0.3, latencyMs: 5 });
    try {
      const clean = (await post(`${server.url}/v1/completions`, completionBody)).text;
      const statuses = new Map<number, number>();
      let ok = 0;
      let malformed = 0;
      for (let i = 0; i < 40; i++) {
        const r = await post(`${faulty.url}/v1/completions`, completionBody);
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        if (r.status !== 200) continue;
        try {
          JSON.parse(r.text);
        } catch {
          malformed++;
          continue;
        }
        expect(r.text).to.equal(clean);
        ok++;
      }
      expect(statuses.get(500), 'some 500s').to.be.greaterThan(0);
      expect(statuses.get(429), 'some 429s').to.be.greaterThan(0);
      expect(malformed).to.be.greaterThan(0);
      expect(ok).to.be.greaterThan(0);
      expect(faulty.stats.faults.status500 + faulty.stats.faults.status429 + faulty.stats.faults.malformed).to.equal(40 - ok);
    } finally {
      await faulty.close();
    }
  });
});
