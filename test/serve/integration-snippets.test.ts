import { expect } from 'chai';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { selectBackend } from '../../src/backend/backend.js';
import { loadScoringModel, scoreSamples } from '../../src/eval/score.js';
import { startRewardServer, type LoadedScoringModel, type RewardServer } from '../../src/serve/server.js';
import { problems, tinyCheckpoint } from '../support/tiny-prm.js';

const run = promisify(execFile);
const TOKEN = 'snippet-token';
const quiet = (): void => {};

/** The Python block that follows `<!-- snippet: NAME ... -->` in docs/integrations.md. */
function snippet(name: string): string {
  const doc = readFileSync(new URL('../../docs/integrations.md', import.meta.url), 'utf8');
  const match = new RegExp(`<!-- snippet: ${name}\\b[^>]*-->\\s*\`\`\`python\\n([\\s\\S]*?)\`\`\``).exec(doc);
  if (!match) throw new Error(`docs/integrations.md has no python snippet "${name}"`);
  return match[1];
}

const hasPython = spawnSync('python3', ['--version']).status === 0;

describe('docs/integrations.md: the RL trainers\' reward snippets against a running prmkit serve', function () {
  this.timeout(120_000);
  let prm: LoadedScoringModel;
  let expected: number[][];
  let server: RewardServer;
  const dir = mkdtempSync(join(tmpdir(), 'prmkit-snippets-'));

  before(async function () {
    if (!hasPython) {
      console.log('    skipped: python3 is not on PATH (the snippets are Python)');
      this.skip();
    }
    await selectBackend('wasm', { log: quiet });
    prm = await loadScoringModel(await tinyCheckpoint());
    expected = (await scoreSamples(prm.model, prm.tokenizer, problems)).stepScores as number[][];
    server = await startRewardServer({ model: prm, port: 0, host: '127.0.0.1', token: TOKEN, encodeWorkers: 0, log: quiet });
  });

  after(async () => {
    await server?.close();
    prm?.model.dispose();
  });

  /** Runs a snippet, then `driver` with the test's inputs as `_data`; returns what the driver printed as JSON. */
  async function python(code: string, driver: string, data: unknown = null): Promise<unknown> {
    const base = join(dir, `snippet-${Math.random().toString(36).slice(2)}`);
    writeFileSync(`${base}.json`, JSON.stringify(data));
    writeFileSync(`${base}.py`, `${code}\n\nimport json as _json\n_data = _json.load(open(${JSON.stringify(`${base}.json`)}))\n${driver}\n`);
    const file = `${base}.py`;
    const { stdout } = await run('python3', [file], { env: { ...process.env, PRMKIT_URL: server.url, PRMKIT_SERVE_TOKEN: TOKEN } });
    return JSON.parse(stdout);
  }

  it('TRL reward_funcs: one min-of-steps reward per completion, standard and conversational formats', async () => {
    const samples = problems.slice(0, 4);
    const standard = { prompts: samples.map((p) => p.problem), completions: [...samples.map((p) => p.steps.join('\n\n')), ''] };
    standard.prompts.push('What is 1 + 1?');
    const conversational = {
      prompts: samples.map((p) => [{ role: 'system', content: 'Solve it.' }, { role: 'user', content: p.problem }]),
      completions: samples.map((p) => [{ role: 'assistant', content: p.steps.join('\n\n') }]),
    };
    const driver = `print(_json.dumps([prm_reward(**_data["standard"]), prm_reward(**_data["conversational"], completion_ids=None)]))`;
    const [plain, chat] = (await python(snippet('trl'), driver, { standard, conversational })) as number[][];
    expect(plain).to.have.lengthOf(5);
    samples.forEach((_, i) => expect(plain[i]).to.be.closeTo(Math.min(...expected[i]), 1e-6));
    expect(plain[4]).to.equal(0);
    samples.forEach((_, i) => expect(chat[i]).to.be.closeTo(Math.min(...expected[i]), 1e-6));
  });

  it("verl compute_score: the response's reward, the problem from extra_info", async () => {
    const p = problems[3];
    const driver = `print(_json.dumps([compute_score("gsm8k", _data["response"], "90", {"question": _data["problem"]}), compute_score("gsm8k", "  ", "90", {"question": "x"})]))`;
    const [reward, empty] = (await python(snippet('verl'), driver, { problem: p.problem, response: p.steps.join('\n\n') })) as number[];
    expect(reward).to.be.closeTo(Math.min(...expected[3]), 1e-6);
    expect(empty).to.equal(0);
    // Without the problem it says what is missing instead of scoring a blank problem.
    const failed = await python(snippet('verl'), `print(_json.dumps(compute_score("gsm8k", "a", "b", {})))`).catch((e: { stderr: string }) => e.stderr);
    expect(failed).to.match(/extra_info has no 'question'/);
  });
});
