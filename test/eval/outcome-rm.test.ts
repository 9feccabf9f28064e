import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readGsm8kExampleSolutions, type BonCandidate } from '../../src/data/bon.js';
import type { BonMetrics } from '../../src/eval/bon-metrics.js';
import type { GradedRecord } from '../../src/eval/bon.js';
import { gradeAnswer } from '../../src/math/index.js';
import { uniform } from './reference-scores.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const solutionsFile = join(repoRoot, '..', 'shared', 'data', 'gsm8k', 'example_model_solutions.jsonl');

/**
 * `prmkit eval bon --scores-field pred_score` as a new user runs it on an outcome reward model's
 * output (Qwen2.5-Math-RM: one unbounded score per response, as a one-item list, often
 * negative), here on the real GSM8K example solutions with seeded RM-like scores: higher for
 * right responses, with noise so that the RM sometimes prefers a wrong one.
 */
describe('eval bon on outcome reward model scores (real GSM8K responses)', function () {
  let tmp: string;
  let candidates: BonCandidate[];
  let file: string;
  const rmScore = (c: BonCandidate, j: number) => {
    const right = (c.meta?.is_correct as boolean[] | undefined)?.[j] === true;
    return [Number(((right ? 0.5 : -1.5) + 4 * (uniform(7, c.id, j) - 0.5)).toFixed(4))];
  };

  before(async function () {
    if (!existsSync(solutionsFile)) {
      console.warn(`    skipped: ${solutionsFile} is absent (GSM8K example solutions)`);
      this.skip();
    }
    candidates = [];
    for await (const c of readGsm8kExampleSolutions(solutionsFile)) {
      candidates.push(c);
      if (candidates.length === 150) break;
    }
    tmp = mkdtempSync(join(tmpdir(), 'prmkit-orm-'));
    file = join(tmp, 'rm.jsonl');
    const lines = candidates.map((c) => JSON.stringify({ idx: c.id, question: c.problem, answer: c.answer, code: c.responses, pred_score: c.responses.map((_, j) => rmScore(c, j)) }));
    writeFileSync(file, `${lines.join('\n')}\n`);
  });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('runs with the default aggregators: rm@N, aggregators marked n/a with the reason, softmax vote', () => {
    const out = join(tmp, 'out');
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'eval', 'bon', '--candidates', file, '--scores-field', 'pred_score', '--n', '4', '--bootstrap', '200', '--out', out], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, PRMKIT_NO_PROGRESS: '1' },
    });
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/\| rm@N \|/);
    expect(r.stdout).to.contain('| n/a |');
    expect(r.stdout).to.match(/prm@N geomean: one score per response \(an outcome reward model\): reported as rm@N/);
    expect(r.stdout).to.match(/softmax weights/);
    const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as BonMetrics;
    expect(m.score_kind).to.equal('scalar');
    expect(m.score_range![0]).to.be.below(0);
    expect(m.not_applicable.geomean).to.match(/outcome reward model/);
    expect(m.vote_weights).to.equal('softmax');

    // rm@4 recomputed here: the response with the highest score (earliest on ties), graded by the grader.
    let right = 0;
    candidates.forEach((c) => {
      const scores = c.responses.map((_, j) => rmScore(c, j)[0]);
      const pick = scores.indexOf(Math.max(...scores));
      if (gradeAnswer(c.responses[pick], c.answer).correct) right++;
    });
    expect(m.rm_at_n).to.be.closeTo((100 * right) / candidates.length, 1e-9);
    // Scores that favour right answers beat the first response alone and stay within pass@N.
    expect(m.rm_at_n as number).to.be.above(m.curve[0].pass_at_n);
    expect(m.rm_at_n as number).to.be.at.most(m.pass_at_n);
    const graded = readFileSync(join(out, 'graded.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as GradedRecord);
    expect(graded).to.have.length(candidates.length);
    expect(graded[0].rm).to.have.keys(['pick', 'score', 'correct']);
    expect(graded[0].prm).to.deep.equal({});
  });

  it('a list of step scores with negative values: prod and geomean n/a, min/last/mean reported', () => {
    const steps = join(tmp, 'steps.jsonl');
    const lines = candidates.map((c) =>
      JSON.stringify({ idx: c.id, question: c.problem, answer: c.answer, code: c.responses, logits: c.responses.map((_, j) => [0.3, rmScore(c, j)[0]]) }),
    );
    writeFileSync(steps, `${lines.join('\n')}\n`);
    const out = join(tmp, 'steps-out');
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'eval', 'bon', '--candidates', steps, '--scores-field', 'logits', '--n', '4', '--vote-agg', 'last', '--bootstrap', '0', '--out', out], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, PRMKIT_NO_PROGRESS: '1' },
    });
    expect(r.status, r.stderr).to.equal(0);
    const m = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as BonMetrics;
    expect(m.score_kind).to.equal('steps');
    expect(Object.keys(m.prm_at_n)).to.deep.equal(['min', 'last', 'mean']);
    expect(Object.keys(m.not_applicable)).to.deep.equal(['prod', 'geomean']);
    expect(m.weighted_vote).to.be.a('number');
    expect(r.stdout).to.match(/prm@N prod: needs nonnegative step scores/);
  });
});
