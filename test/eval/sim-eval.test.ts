import { expect } from 'chai';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSimEval } from '../../src/eval/run-sim.js';
import type { StepScorer } from '../../src/eval/step-scorer.js';
import { checkSolution } from '../../src/sim/check.js';
import { parseProblem } from '../../src/sim/problems.js';
import { simBonCandidates } from '../../src/sim/world.js';
import { splitSteps } from '../../src/data/split.js';

/** The sim world's truth as a PRM: 0.9 before the first wrong step, 0.1 from it on. */
function firstErrorOf(problemText: string, steps: readonly string[]): number {
  const problem = parseProblem(problemText);
  if (!problem) throw new Error(`not a sim problem: ${problemText}`);
  return checkSolution(problem, steps).firstError;
}

const oracle: StepScorer = {
  backend: 'oracle',
  async score(samples) {
    const stepScores = samples.map((s) => {
      const fe = firstErrorOf(s.problem, s.steps);
      return s.steps.map((_, j) => (fe === -1 || j < fe ? 0.9 : 0.1));
    });
    return { stepScores, tooLong: [] };
  },
  dispose() {},
};

describe('eval sim with a truth oracle as the PRM', function () {
  let tmp: string;
  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'prmkit-sim-eval-'));
  });
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('finds every first error, and prm@N picks a clean solution whenever one exists', async () => {
    const problems = 40;
    const n = 4;
    const seed = 9;
    const result = await runSimEval({ scorer: oracle, problems, n, seed, bootstrap: { resamples: 100 }, out: tmp });
    expect(result.processbench.subsets.sim.n).to.equal(problems);
    expect(result.processbench.subsets.sim.f1).to.equal(100);

    // The expected prm@N: share of problems with at least one response without a process error
    // (the oracle ranks every clean response above every flawed one; clean implies right).
    const candidates = simBonCandidates(problems, n, seed);
    const withClean = candidates.filter((c) => c.responses.some((r) => firstErrorOf(c.problem, splitSteps(r)) === -1)).length;
    expect(result.bon.prm_at_n.min).to.be.closeTo((100 * withClean) / problems, 1e-9);
    expect(result.bon.prm_at_n.min).to.be.at.most(result.bon.pass_at_n);
    expect(result.bon.n_unscored).to.equal(0);

    const summary = JSON.parse(readFileSync(join(tmp, 'summary.json'), 'utf8'));
    expect(summary.backend).to.equal('oracle');
    expect(summary.processbench.f1).to.equal(100);
    expect(result.markdown).to.match(/\| sim \| 40 \|/);
  });
});
