import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readGsm8kExampleSolutions, type BonCandidate } from '../../src/data/bon.js';
import { bonMetrics, type GradedProblem } from '../../src/eval/bon-metrics.js';
import type { BonSummary, GradedRecord } from '../../src/eval/bon.js';
import { gradeAnswer } from '../../src/math/index.js';
import { uniform } from './reference-scores.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const solutionsFile = join(repoRoot, '..', 'shared', 'data', 'gsm8k', 'example_model_solutions.jsonl');

interface BonReference {
  n_problems: number;
  seed: number;
  curve: { n: number; pass: number; maj: number; prm: number; weighted: number }[];
  /** Per N, per problem: "pass maj prm weighted" as 0/1 digits. */
  per_problem: Record<string, string[]>;
  graded: { answers: (string | null)[]; correct: boolean[] }[];
}
const reference = JSON.parse(readFileSync(join(repoRoot, 'test/fixtures/eval/bon_reference.json'), 'utf8')) as BonReference;

function runCli(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, PRMKIT_NO_PROGRESS: '1' },
  });
}

describe('Best-of-N vs the Python reference (GSM8K example solutions, 4 per problem)', function () {
  let candidates: BonCandidate[];
  let tmp: string;
  /** Problems where our grader and the reference's numeric normaliser disagree on some response. */
  const gradingDiffers = new Set<number>();

  before(async function () {
    if (!existsSync(solutionsFile)) {
      console.warn(`    skipped: ${solutionsFile} is absent (GSM8K example solutions)`);
      this.skip();
    }
    candidates = [];
    for await (const c of readGsm8kExampleSolutions(solutionsFile)) candidates.push(c);
    tmp = mkdtempSync(join(tmpdir(), 'prmkit-bon-ref-'));
    candidates.forEach((c, i) =>
      c.responses.forEach((response, j) => {
        if (gradeAnswer(response, c.answer).correct !== reference.graded[i].correct[j]) gradingDiffers.add(i);
      }),
    );
    if (gradingDiffers.size > 0) {
      console.warn(`    note: our grader and the reference normaliser disagree on ${gradingDiffers.size} problem(s): ${[...gradingDiffers].join(', ')}`);
    }
  });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  const scoreOf = (i: number, j: number) => uniform(reference.seed, `gsm8k-test-${i}`, j);

  it('the reference grading agrees with the dataset is_correct', () => {
    expect(candidates).to.have.length(reference.n_problems);
    candidates.forEach((c, i) => expect(reference.graded[i].correct, c.id).to.deep.equal(c.meta?.is_correct));
  });

  it('our grader agrees with the reference on (nearly) every response', () => {
    // A handful at most; the end-to-end test below confines any metric difference to them.
    expect(gradingDiffers.size).to.be.at.most(3);
  });

  it('metrics from the reference grading match pass@N, maj@N, prm@N and the weighted vote exactly', () => {
    // Same correctness and answers as the reference, grouped by string equality like it does:
    // this isolates the metric logic (ties, subsampling, clustering) from grading.
    const problems: GradedProblem[] = candidates.map((c, i) => ({
      id: c.id,
      responses: c.responses.map((_, j) => ({
        extracted: reference.graded[i].answers[j],
        correct: reference.graded[i].correct[j],
        score: scoreOf(i, j),
      })),
    }));
    const m = bonMetrics(problems, { n: 4, equivalent: (a, b) => a === b, bootstrap: { resamples: 0 } });
    expect(m.curve.map((p) => p.n)).to.deep.equal([1, 2, 4]);
    m.curve.forEach((p, k) => {
      const ref = reference.curve[k];
      expect(p.pass_at_n, `pass@${p.n}`).to.be.closeTo(ref.pass, 1e-9);
      expect(p.maj_at_n, `maj@${p.n}`).to.be.closeTo(ref.maj, 1e-9);
      // one score per response: reported once as rm@N (every aggregator would give that score back)
      expect(p.rm_at_n, `rm@${p.n}`).to.be.closeTo(ref.prm, 1e-9);
      expect(p.prm_at_n).to.deep.equal({});
      expect(p.weighted_vote, `weighted@${p.n}`).to.be.closeTo(ref.weighted, 1e-9);
    });
  });

  it('`prmkit eval bon` with our grader matches the reference problem by problem, over two sets', () => {
    // Two halves as two candidate sets: exercises the multi-set run and its plain average.
    const half = Math.ceil(candidates.length / 2);
    const files = [join(tmp, 'first.jsonl'), join(tmp, 'second.jsonl')];
    [candidates.slice(0, half), candidates.slice(half)].forEach((part, k) => {
      const lines = part.map((c) => {
        const i = Number(c.id.slice('gsm8k-test-'.length));
        return JSON.stringify({ idx: c.id, problem: c.problem, answer: c.answer, responses: c.responses, scores: c.responses.map((_, j) => scoreOf(i, j)) });
      });
      writeFileSync(files[k], `${lines.join('\n')}\n`);
    });
    const out = join(tmp, 'out');
    const r = runCli(['eval', 'bon', '--candidates', files.join(','), '--scores-field', 'scores', '--n', '4', '--bootstrap', '200', '--out', out]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/\| first \| 660 \| 4 \|/);
    expect(r.stdout).to.match(/\*\*average\*\*/);

    const expectedDigits = reference.per_problem['4'];
    const setMetrics: { pass_at_n: number; maj_at_n: number; rm_at_n: number; weighted_vote: number }[] = [];
    let offset = 0;
    for (const name of ['first', 'second']) {
      const graded = readFileSync(join(out, name, 'graded.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as GradedRecord);
      graded.forEach((g, k) => {
        const i = offset + k;
        if (gradingDiffers.has(i)) return;
        const digits = [g.pass, g.maj.correct, g.rm!.correct, g.weighted_vote.correct].map((b) => (b ? '1' : '0')).join('');
        expect(digits, `${g.id}: pass maj prm weighted`).to.equal(expectedDigits[i]);
      });
      // the set's figures, recounted from the reference per-problem outcomes
      const mine = expectedDigits.slice(offset, offset + graded.length);
      const share = (pos: number) => (100 * mine.filter((d) => d[pos] === '1').length) / mine.length;
      const metrics = JSON.parse(readFileSync(join(out, name, 'metrics.json'), 'utf8'));
      const slack = (100 * [...gradingDiffers].filter((i) => i >= offset && i < offset + graded.length).length) / graded.length;
      expect(metrics.pass_at_n).to.be.closeTo(share(0), slack + 1e-9);
      expect(metrics.maj_at_n).to.be.closeTo(share(1), slack + 1e-9);
      expect(metrics.rm_at_n).to.be.closeTo(share(2), slack + 1e-9);
      expect(metrics.weighted_vote).to.be.closeTo(share(3), slack + 1e-9);
      expect(metrics.ci.resamples).to.equal(200);
      expect(metrics.curve).to.have.length(3);
      setMetrics.push(metrics);
      offset += graded.length;
    }
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as BonSummary;
    expect(Object.keys(summary.sets)).to.deep.equal(['first', 'second']);
    expect(summary.average.pass_at_n).to.be.closeTo((setMetrics[0].pass_at_n + setMetrics[1].pass_at_n) / 2, 1e-12);
    expect(summary.average.rm_at_n).to.be.closeTo((setMetrics[0].rm_at_n + setMetrics[1].rm_at_n) / 2, 1e-12);
  });
});
