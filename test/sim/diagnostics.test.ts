import { expect } from 'chai';
import { evaluateProcessBench } from '../../src/eval/processbench.js';
import { recallByKind, stepScoreDistribution } from '../../src/eval/sim-diagnostics.js';
import { checkSolution } from '../../src/sim/check.js';
import { parseProblem } from '../../src/sim/problems.js';
import { simProcessBench } from '../../src/sim/world.js';

/**
 * A scorer that checks one kind of error perfectly and nothing else: it reads the problem and
 * steps like the world's checker and scores the first error 0 only when it is of `kind`.
 */
function oneKindOracle(kind: string) {
  return (problem: string, steps: string[]): number[] => {
    const truth = checkSolution(parseProblem(problem)!, steps);
    return steps.map((_, j) => (j === truth.firstError && truth.kind === kind ? 0 : 1));
  };
}

describe('sim diagnostics: recall per error kind and step-score distributions', () => {
  const samples = simProcessBench(300, 5);
  const oracle = oneKindOracle('arithmetic');
  const scores = samples.map((s) => oracle(s.problem, s.steps));
  const { predictions } = evaluateProcessBench(samples, scores, { threshold: 0.5 });

  it('credits a scorer only with the kinds of error it finds', () => {
    const byKind = recallByKind(samples, predictions);
    expect(Object.keys(byKind).slice(0, 4)).to.deep.equal(['arithmetic', 'wrong_operand', 'skipped_step', 'repeated_step']);
    const erroneous = samples.filter((s) => s.firstError !== -1);
    for (const [kind, k] of Object.entries(byKind)) {
      expect(k.n, kind).to.equal(erroneous.filter((s) => s.meta.errorKind === kind).length);
    }
    expect(byKind.arithmetic.n).to.be.greaterThan(10);
    expect(byKind.arithmetic.recall).to.equal(100);
    expect(byKind.wrong_operand.n).to.be.greaterThan(10);
    expect(byKind.wrong_operand.recall).to.equal(0);
    expect(byKind.skipped_step.recall).to.equal(0);
  });

  it('counts right steps and first wrong steps apart, and their AUROC', () => {
    const dist = stepScoreDistribution(samples, scores, 10);
    expect(dist.edges).to.have.length(11);
    expect(dist.edges[0]).to.equal(0);
    expect(dist.edges[10]).to.equal(1);
    const rightSteps = samples.reduce((a, s) => a + (s.firstError === -1 ? s.steps.length : s.firstError!), 0);
    const wrongSteps = samples.filter((s) => s.firstError !== -1).length;
    expect(dist.right.reduce((a, b) => a + b, 0)).to.equal(rightSteps);
    expect(dist.wrong.reduce((a, b) => a + b, 0)).to.equal(wrongSteps);
    // Every right step scores 1 (last bin); arithmetic first errors 0 (first bin), the rest 1.
    expect(dist.right[9]).to.equal(rightSteps);
    const arithmetic = samples.filter((s) => s.meta.errorKind === 'arithmetic').length;
    expect(dist.wrong[0]).to.equal(arithmetic);
    expect(dist.wrong[9]).to.equal(wrongSteps - arithmetic);
    // Ties count one half: AUROC = (arithmetic + 0.5 * others) / wrong steps.
    expect(dist.auroc).to.be.closeTo((100 * (arithmetic + 0.5 * (wrongSteps - arithmetic))) / wrongSteps, 1e-9);
  });

  it('leaves out samples too long to score and refuses mismatched inputs', () => {
    const partial = scores.map((s, i) => (i % 2 === 0 ? null : s));
    const dist = stepScoreDistribution(samples, partial, 4);
    const total = dist.right.reduce((a, b) => a + b, 0) + dist.wrong.reduce((a, b) => a + b, 0);
    const expected = samples.filter((_, i) => i % 2 === 1).reduce((a, s) => a + (s.firstError === -1 ? s.steps.length : s.firstError! + 1), 0);
    expect(total).to.equal(expected);
    expect(() => stepScoreDistribution(samples, scores.slice(1))).to.throw(/samples but/);
    expect(() => recallByKind(samples, predictions.slice(1))).to.throw(/samples but/);
  });
});
