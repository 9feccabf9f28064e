import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { simBonCandidates } from '../../src/sim/world.js';
import { createStepSplitter } from '../../src/data/step-split.js';
import { openStepScorer } from '../../src/eval/model-scorer.js';
import { startRewardServer } from '../../src/serve/server.js';
import type { GradedRecord } from '../../src/eval/bon.js';
import { testBackend } from '../support/backend.js';
import { saveTinyPrm } from './tiny-model.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

function prmkit(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, PRMKIT_NO_PROGRESS: '1' },
  });
}

/**
 * The one step splitter behind score, eval bon and serve: each command, given the same split
 * options, scores exactly the steps createStepSplitter gives, and the scores are the model's
 * for those steps.
 */
describe('step splitting options on score, eval bon and serve (tiny PRM)', function () {
  let tmp: string;
  let modelDir: string;
  const candidates = simBonCandidates(2, 2, 21);
  // Sim responses written as a reasoning model would: a think block (a first try), then the solution.
  const withThink = candidates.map((c) => ({ ...c, responses: c.responses.map((r, j) => (j === 0 ? r : `<think>\n${c.responses[0]}\n</think>\n\n${r}`)) }));

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'prmkit-split-cmd-'));
    modelDir = join(tmp, 'model');
    // Room for a think block plus the solution (word-level tokens, one per word).
    await saveTinyPrm(modelDir, candidates.flatMap((c) => [c.problem, ...c.responses]), { maxPositions: 2048 });
  });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('eval bon --think skipped/alone --split lines scores the splitter\'s steps', () => {
    const file = join(tmp, 'bon.jsonl');
    writeFileSync(file, withThink.map((c) => JSON.stringify({ idx: c.id, problem: c.problem, answer: c.answer, responses: c.responses })).join('\n') + '\n');
    for (const think of ['skipped', 'alone'] as const) {
      const out = join(tmp, `bon-${think}`);
      const r = prmkit(['eval', 'bon', '--candidates', file, '--model', modelDir, '--backend', testBackend(), '--n', '2', '--bootstrap', '0', '--split', 'lines', '--think', think, '--out', out]);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stdout).to.match(new RegExp(`Steps \\(lines, think ${think}\\): 4 responses split into \\d+ steps; 2 think blocks`));
      const splitter = createStepSplitter({ mode: 'lines', think });
      const graded = readFileSync(join(out, 'graded.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as GradedRecord);
      graded.forEach((g, i) =>
        g.responses.forEach((resp, j) => expect((resp.score as number[]).length, `${g.id} #${j}`).to.equal(splitter.split(withThink[i].responses[j]).length)),
      );
      const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
      expect(metrics.step_split.options).to.deep.include({ mode: 'lines', think });
      expect(metrics.step_split.stats.think_blocks).to.equal(2);
    }
  });

  it('score takes {problem, response} lines, writes the steps it scored next to their scores', async () => {
    const input = join(tmp, 'score-in.jsonl');
    const rows = withThink.flatMap((c) => c.responses.map((response) => ({ problem: c.problem, response })));
    writeFileSync(input, `${rows.map((x) => JSON.stringify(x)).join('\n')}\n${JSON.stringify({ problem: 'p', steps: ['given', 'steps'] })}\n`);
    const out = join(tmp, 'score-out.jsonl');
    const r = prmkit(['score', '--model', modelDir, '--backend', testBackend(), '--input', input, '--think', 'alone', '--split-max-steps', '3', '--out', out]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stderr).to.match(/4 responses split into \d+ steps; .*capped/);
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { problem: string; response?: string; steps: string[]; step_scores: number[] });
    const splitter = createStepSplitter({ think: 'alone', maxSteps: 3 });
    const scorer = await openStepScorer(modelDir, { backend: testBackend() });
    try {
      const direct = await scorer.score(lines.map((l) => ({ problem: l.problem, steps: l.steps })));
      lines.forEach((l, i) => {
        if (l.response !== undefined) expect(l.steps).to.deep.equal(splitter.split(l.response));
        expect(l.step_scores).to.have.length(l.steps.length);
        l.step_scores.forEach((v, j) => expect(v).to.be.closeTo(direct.stepScores[i]![j], 1e-6));
      });
    } finally {
      scorer.dispose();
    }
    expect(lines[lines.length - 1].steps).to.deep.equal(['given', 'steps']);
  });

  it('serve splits {problem, response} items with its own options and returns the steps', async () => {
    const server = await startRewardServer({ model: modelDir, port: 0, host: '127.0.0.1', backend: testBackend(), split: { mode: 'lines', think: 'skipped' }, log: () => {} });
    try {
      const c = withThink[0];
      const post = async (body: unknown) => {
        const res = await fetch(`${server.url}/v1/score`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      const one = await post({ problem: c.problem, response: c.responses[1] });
      expect(one.status).to.equal(200);
      const steps = createStepSplitter({ mode: 'lines', think: 'skipped' }).split(c.responses[1]);
      expect(one.body.steps).to.deep.equal(steps);
      expect(one.body.step_scores).to.have.length(steps.length);
      const byStepList = await post({ problem: c.problem, steps });
      expect(byStepList.body.step_scores).to.deep.equal(one.body.step_scores);
      expect(byStepList.body).to.not.have.property('steps');
      const batch = await post({ items: [{ problem: c.problem, steps: ['a b'] }, { problem: withThink[1].problem, response: withThink[1].responses[1] }] });
      expect(batch.status).to.equal(200);
      const results = batch.body.results as { steps?: string[]; step_scores: number[] }[];
      expect(results[0]).to.include.keys(['step_scores']);
      expect(results[0]).to.not.have.property('steps');
      expect(results[1].steps).to.have.length(results[1].step_scores.length);
      const both = await post({ problem: 'p', steps: ['a'], response: 'b' });
      expect(both.status).to.equal(422);
      expect(both.body.error).to.match(/response: give steps or a response, not both/);
      const empty = await post({ problem: 'p', response: '<think>only thinking' });
      expect(empty.status).to.equal(422);
      expect(empty.body.error).to.match(/no step in the response/);
    } finally {
      await server.close();
    }
  });

  it('a bad split option is a usage error (exit 2) naming the flag', () => {
    const r = prmkit(['score', '--model', modelDir, '--input', 'x.jsonl', '--out', join(tmp, 'x.jsonl'), '--split-max-steps', '0']);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/--split-max-steps: maximum steps must be a positive integer, got 0/);
  });
});
