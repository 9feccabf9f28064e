import { expect } from 'chai';
import { aggregateScore, bestIndex, inapplicableReason, minIsOnLastStep, parseAggregators, scoreProfile, topIndices } from '../../src/eval/aggregate.js';
import {
  bonMetrics,
  cachedEquivalence,
  clusterAnswers,
  curveSizes,
  problemOutcome,
  voteWeightsOf,
  type GradedProblem,
  type GradedResponse,
} from '../../src/eval/bon-metrics.js';
import { bootstrapCounts, quantile } from '../../src/eval/bootstrap.js';
import { belowBaselineLines, candidateSetNames, summarizeBonSets } from '../../src/eval/bon.js';

/** Numeric equivalence for hand-made cases: "1/2" == "0.5" == "0.50". */
const numericEq = (a: string, b: string): boolean => {
  const value = (s: string) => {
    const [p, q] = s.split('/');
    return q === undefined ? Number(p) : Number(p) / Number(q);
  };
  return Math.abs(value(a) - value(b)) < 1e-9;
};

const r = (extracted: string | null, correct: boolean, score?: GradedResponse['score']): GradedResponse => ({ extracted, correct, score });
const opts = { aggregators: ['min', 'prod', 'last', 'mean', 'geomean'] as const, voteAggregator: 'prod' as const, equivalent: numericEq };

describe('aggregators', () => {
  const steps = [0.9, 0.5, 0.8];
  it('reduce step scores to one score', () => {
    expect(aggregateScore(steps, 'min')).to.equal(0.5);
    expect(aggregateScore(steps, 'prod')).to.be.closeTo(0.36, 1e-15);
    expect(aggregateScore(steps, 'last')).to.equal(0.8);
    expect(aggregateScore(steps, 'mean')).to.be.closeTo(2.2 / 3, 1e-15);
    expect(aggregateScore(steps, 'geomean')).to.be.closeTo(Math.cbrt(0.36), 1e-12);
    expect(aggregateScore([0.5, 0], 'geomean')).to.equal(0);
  });
  it('use a single number as is and rank unscored responses last', () => {
    for (const agg of ['min', 'prod', 'last', 'mean', 'geomean'] as const) {
      expect(aggregateScore(-1.5, agg)).to.equal(-1.5);
      expect(aggregateScore(null, agg)).to.equal(-Infinity);
      expect(aggregateScore([], agg)).to.equal(-Infinity);
    }
    expect(() => aggregateScore([0.5, -0.1], 'geomean')).to.throw(/nonnegative/);
  });
  it('parse aggregator lists and reject unknown names', () => {
    expect(parseAggregators('min, prod,min')).to.deep.equal(['min', 'prod']);
    expect(() => parseAggregators('min,median')).to.throw(/unknown aggregator "median"/);
  });
  it('locate the minimum on the last step (first occurrence on ties)', () => {
    expect(minIsOnLastStep([0.9, 0.8, 0.1])).to.equal(true);
    expect(minIsOnLastStep([0.1, 0.8, 0.1])).to.equal(false);
    expect(minIsOnLastStep([0.3])).to.equal(true);
    expect(minIsOnLastStep(0.3)).to.equal(null);
    expect(minIsOnLastStep(null)).to.equal(null);
  });
});

describe('answer clustering', () => {
  it('groups by equivalence, not by string, in order of first appearance', () => {
    expect(clusterAnswers(['1/2', '3', '0.5', null, '3.0', '0.50', '7'], numericEq)).to.deep.equal([0, 1, 0, -1, 1, 0, 2]);
  });
  it('caches equivalence calls', () => {
    let calls = 0;
    const eq = cachedEquivalence((a, b) => {
      calls++;
      return a === b;
    });
    eq('x', 'y');
    eq('x', 'y');
    eq('x', 'x');
    expect(calls).to.equal(1);
  });
});

describe('problem outcome', () => {
  it('majority by equivalence: 1/2 and 0.5 outvote 3', () => {
    const p: GradedProblem = { id: 'p', responses: [r('3', false), r('1/2', true), r('0.5', true)] };
    const o = problemOutcome(p, 3, opts);
    expect(o.majAnswer).to.equal('1/2');
    expect(o.maj).to.equal(true);
    expect(o.pass).to.equal(true);
  });
  it('majority ties go to the cluster seen first; missing answers do not vote', () => {
    const p: GradedProblem = { id: 'p', responses: [r(null, false), r('4', false), r('5', true), r('5', true), r('4', false)] };
    const o = problemOutcome(p, 5, opts);
    expect(o.majAnswer).to.equal('4');
    expect(o.maj).to.equal(false);
    expect(problemOutcome({ id: 'q', responses: [r(null, false)] }, 1, opts)).to.include({ maj: false, majAnswer: null });
  });
  it('prm@N picks the best aggregated score, the earliest on ties; aggregators disagree', () => {
    const p: GradedProblem = {
      id: 'p',
      responses: [
        r('1', false, [0.9, 0.9, 0.2]), // min 0.2, last 0.2, mean 0.667
        r('2', true, [0.6, 0.6, 0.95]), // min 0.6, prod 0.342, last 0.95, mean 0.717
        r('3', false, [0.7, 0.7]), // min 0.7, prod 0.49
        r('4', true, [0.7, 0.7]), // same scores as #3: tie, #3 wins
      ],
    };
    const o = problemOutcome(p, 4, opts);
    expect(o.prm.min).to.include({ pick: 2, correct: false });
    expect(o.prm.prod).to.include({ pick: 2, correct: false });
    expect(o.prm.last).to.include({ pick: 1, correct: true });
    expect(o.prm.mean).to.include({ pick: 1, correct: true });
  });
  it('weighted vote sums the scores of equivalent answers', () => {
    const p: GradedProblem = {
      id: 'p',
      responses: [r('10', false, 0.9), r('20', true, 0.5), r('20.0', true, 0.45), r('30', false, 0.1)],
    };
    const o = problemOutcome(p, 4, opts);
    expect(o.weightedAnswer).to.equal('20'); // 0.95 > 0.9
    expect(o.weighted).to.equal(true);
    expect(o.prm.prod).to.include({ pick: 0, correct: false });
  });
});

/** A deterministic set of problems with a known answer per response. */
function makeProblems(): GradedProblem[] {
  return [
    // all wrong
    { id: 'a', responses: [r('1', false, [0.9]), r('2', false, [0.8]), r('1', false, [0.7]), r('3', false, [0.6])] },
    // only the 4th right
    { id: 'b', responses: [r('5', false, [0.9, 0.2]), r('5', false, [0.3]), r('6', false, [0.1]), r('7', true, [0.95, 0.9])] },
    // all right
    { id: 'c', responses: [r('8', true, [0.5]), r('8', true, [0.6]), r('8', true, [0.7]), r('8', true, [0.8])] },
    // first right, majority wrong
    { id: 'd', responses: [r('9', true, [0.4, 0.9]), r('4', false, [0.9]), r('4', false, [0.8, 0.7]), r(null, false, null)] },
  ];
}

describe('bonMetrics', () => {
  const problems = makeProblems();

  it('computes pass/maj/prm/weighted at N and over the curve N = 1, 2, 4', () => {
    const m = bonMetrics(problems, { n: 4, equivalent: numericEq, bootstrap: { resamples: 0 } });
    expect(m.n_problems).to.equal(4);
    expect(m.n).to.equal(4);
    expect(m.pass_at_n).to.equal(75); // b, c, d
    expect(m.maj_at_n).to.equal(25); // a: 1 (wrong), b: 5 (wrong), c: 8, d: 4 (wrong)
    // prod: a picks #0 (wrong), b picks #3 0.855 (right), c #3 (right), d #1 0.9 (wrong)
    expect(m.prm_at_n.prod).to.equal(50);
    // last: b #3 0.9 vs #0 0.2; d #1 0.9 vs #0 0.9 tie -> #0 right
    expect(m.prm_at_n.last).to.equal(75);
    expect(m.curve.map((p) => p.n)).to.deep.equal([1, 2, 4]);
    expect(m.curve.map((p) => p.pass_at_n)).to.deep.equal([50, 50, 75]);
    // nested prefixes: pass@N never decreases
    expect(m.curve[0].prm_at_n.min).to.equal(m.curve[0].pass_at_n); // N=1: every metric = accuracy of response 0
    expect(m.curve[0].maj_at_n).to.equal(50);
    expect(m.n_unscored).to.equal(1);
    // min on last step, over the 15 scored step lists: single steps count as on the last step;
    // of the longer ones b#0, b#3 and d#2 have it last, d#0 (0.4 then 0.9) does not -> 14 of 15
    expect(m.min_at_last_step).to.be.closeTo((100 * 14) / 15, 1e-12);
    expect(m.ci).to.equal(undefined);
  });

  it('uses all responses by default, and needs n responses per problem', () => {
    expect(bonMetrics(problems, { equivalent: numericEq, bootstrap: { resamples: 0 } }).n).to.equal(4);
    expect(() => bonMetrics(problems, { n: 8, equivalent: numericEq })).to.throw(/problem "a" has 4 responses, fewer than n=8/);
    expect(() => bonMetrics([], {})).to.throw(/no problems/);
  });

  it('reports no PRM figures when nothing is scored', () => {
    const unscored = problems.map((p) => ({ ...p, responses: p.responses.map((x) => ({ ...x, score: undefined })) }));
    const m = bonMetrics(unscored, { equivalent: numericEq, bootstrap: { resamples: 50 } });
    expect(m.prm_at_n).to.deep.equal({});
    expect(m.weighted_vote).to.equal(null);
    expect(m.min_at_last_step).to.equal(null);
    expect(m.pass_at_n).to.equal(75);
  });

  it('gives all-correct problems 100 everywhere, with a degenerate interval', () => {
    const twoSteps = { ...problems[2], responses: problems[2].responses.map((x) => ({ ...x, score: [0.9, x.score as number] })) };
    const m = bonMetrics([twoSteps, twoSteps], { equivalent: numericEq, bootstrap: { resamples: 100 } });
    expect(m.pass_at_n).to.equal(100);
    expect(m.maj_at_n).to.equal(100);
    expect(m.prm_at_n).to.deep.equal({ min: 100, prod: 100, last: 100, mean: 100, geomean: 100 });
    expect(m.ci?.pass_at_n).to.deep.equal([100, 100]);
    // The same problem with one score per response: every aggregator is that score, reported once as rm@N.
    const scalar = bonMetrics([problems[2], problems[2]], { equivalent: numericEq, bootstrap: { resamples: 100 } });
    expect(scalar.score_kind).to.equal('scalar');
    expect(scalar.rm_at_n).to.equal(100);
    expect(scalar.prm_at_n).to.deep.equal({});
  });

  it('bootstrap intervals are seeded: same seed same intervals, and they bracket the estimate', () => {
    const many: GradedProblem[] = [];
    for (let k = 0; k < 25; k++) many.push(...makeProblems().map((p) => ({ ...p, id: `${p.id}${k}` })));
    const a = bonMetrics(many, { equivalent: numericEq, bootstrap: { resamples: 400, seed: 5 } });
    const b = bonMetrics(many, { equivalent: numericEq, bootstrap: { resamples: 400, seed: 5 } });
    const c = bonMetrics(many, { equivalent: numericEq, bootstrap: { resamples: 400, seed: 6 } });
    expect(a.ci).to.deep.equal(b.ci);
    expect(a.curve).to.deep.equal(b.curve);
    expect(a.ci?.prm_at_n.prod).to.not.deep.equal(c.ci?.prm_at_n.prod);
    expect(a.ci).to.include({ level: 95, resamples: 400, seed: 5 });
    for (const p of a.curve) {
      const ci = p.ci!;
      expect(ci.pass_at_n[0]).to.be.at.most(p.pass_at_n).and.at.least(0);
      expect(ci.pass_at_n[1]).to.be.at.least(p.pass_at_n).and.at.most(100);
      expect(ci.prm_at_n.prod![0]).to.be.below(ci.prm_at_n.prod![1]);
    }
  });

  it('curve sizes are powers of two up to n, then n', () => {
    expect(curveSizes(1)).to.deep.equal([1]);
    expect(curveSizes(8)).to.deep.equal([1, 2, 4, 8]);
    expect(curveSizes(6)).to.deep.equal([1, 2, 4, 6]);
  });
});

describe('bootstrap helpers', () => {
  it('draw n items per resample, deterministically', () => {
    const a = bootstrapCounts(10, 5, 1);
    expect(a.every((c) => c.reduce((s, x) => s + x, 0) === 10)).to.equal(true);
    expect(bootstrapCounts(10, 5, 1)).to.deep.equal(a);
  });
  it('interpolate quantiles linearly (numpy default)', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).to.equal(2.5);
    expect(quantile([1, 2, 3, 4], 0)).to.equal(1);
    expect(quantile([1, 2, 3, 4], 1)).to.equal(4);
    expect(quantile([0, 10], 0.025)).to.be.closeTo(0.25, 1e-12);
  });
});

describe('outcome reward model scores and unbounded step scores', () => {
  // One unbounded score per response, as Qwen2.5-Math-RM gives (a one-item list or a number).
  const orm: GradedProblem[] = [
    { id: 'a', responses: [r('1', false, [-2.6875]), r('2', true, [1.25]), r('2', true, [-0.5]), r('3', false, [0.75])] },
    { id: 'b', responses: [r('5', true, -1), r('6', false, -0.25), r('6', false, -3), r('5', true, -1.5)] },
    { id: 'c', responses: [r('7', false, [3]), r('8', true, [2.5]), r('8', true, [2.5]), r('8', true, [2.5])] },
  ];

  it('profiles a set: one score per response is scalar, any longer list makes it steps', () => {
    expect(scoreProfile([[-2.6875], 1.5, null, []])).to.deep.equal({ kind: 'scalar', min: -2.6875, max: 1.5, bounded: false });
    expect(scoreProfile([[0.2, 0.9], [0.5]])).to.deep.equal({ kind: 'steps', min: 0.2, max: 0.9, bounded: true });
    expect(scoreProfile([null, undefined]).kind).to.equal('none');
    expect(inapplicableReason('geomean', scoreProfile([[0.5, -0.1]]))).to.match(/nonnegative step scores; these go down to -0.1/);
    expect(inapplicableReason('prod', scoreProfile([[0.5, -0.1]]))).to.match(/nonnegative/);
    expect(inapplicableReason('min', scoreProfile([[0.5, -0.1]]))).to.equal(null);
    expect(inapplicableReason('min', scoreProfile([[-3]]))).to.match(/outcome reward model.*rm@N/);
  });

  it('reports rm@N for one score per response, marks every aggregator not applicable, and never throws', () => {
    const m = bonMetrics(orm, { equivalent: numericEq, bootstrap: { resamples: 50 } });
    expect(m.score_kind).to.equal('scalar');
    expect(m.score_range).to.deep.equal([-3, 3]);
    // a: 1.25 (#1, right); b: -0.25 (#1, wrong); c: 3 (#0, wrong)
    expect(m.rm_at_n).to.be.closeTo(100 / 3, 1e-12);
    expect(m.prm_at_n).to.deep.equal({});
    expect(m.aggregators).to.deep.equal([]);
    expect(Object.keys(m.not_applicable)).to.deep.equal(['min', 'prod', 'last', 'mean', 'geomean']);
    expect(m.min_at_last_step).to.equal(null);
    expect(m.curve[0].rm_at_n).to.be.closeTo(100 / 3, 1e-12); // N=1: response #0 of each problem, only b's is right
    expect(m.ci?.rm_at_n?.[0]).to.be.at.most(m.rm_at_n as number);
    // Unbounded scores: softmax weights. a: 2 (1 + e^-1.75) beats 3 (e^-0.5) and 1 -> right;
    // b: 6 (1 + e^-2.75 = 1.06) beats 5 (e^-0.75 + e^-1.25 = 0.76) -> wrong; c: 8 (3 e^-0.5 = 1.82) beats 7 (1) -> right.
    expect(m.vote_weights).to.equal('softmax');
    expect(m.weighted_vote).to.be.closeTo(200 / 3, 1e-12);
  });

  it('softmax weights are invariant to the score offset; plain sums of negative scores are not', () => {
    const w = voteWeightsOf([-1, -2, -Infinity, -3], 'softmax');
    expect(w.reduce((a, b) => a + b, 0)).to.be.closeTo(1, 1e-15);
    expect(w[2]).to.equal(0);
    expect(w[0] / w[1]).to.be.closeTo(Math.E, 1e-12);
    expect(voteWeightsOf([9, 8, -Infinity, 7], 'softmax')).to.deep.equal(w);
    // Two responses say 20 and score -0.1 and -0.3, one says 10 at -0.2: summed as they are the
    // majority loses for having more (negative) votes; softmax weights let it win.
    const p: GradedProblem = { id: 'p', responses: [r('10', false, -0.2), r('20', true, -0.1), r('20', true, -0.3)] };
    const base = { aggregators: [] as const, voteAggregator: 'last' as const, equivalent: numericEq, scalar: true };
    expect(problemOutcome(p, 3, { ...base, voteWeights: 'score' }).weightedAnswer).to.equal('10');
    expect(problemOutcome(p, 3, { ...base, voteWeights: 'softmax' }).weightedAnswer).to.equal('20');
  });

  it('step scores below 0: prod and geomean are not applicable, min/last/mean still rank', () => {
    const logits: GradedProblem[] = [
      { id: 'a', responses: [r('1', false, [2, -1]), r('2', true, [1, 0.5])] },
      { id: 'b', responses: [r('3', true, [-0.5, 3]), r('4', false, [0.2, 0.1])] },
    ];
    const m = bonMetrics(logits, { equivalent: numericEq, bootstrap: { resamples: 0 } });
    expect(m.score_kind).to.equal('steps');
    expect(m.aggregators).to.deep.equal(['min', 'last', 'mean']);
    expect(m.not_applicable.prod).to.match(/nonnegative step scores; these go down to -1/);
    expect(m.not_applicable.geomean).to.match(/nonnegative/);
    expect(m.prm_at_n).to.deep.equal({ min: 50, last: 100, mean: 100 });
    // The default vote aggregator (prod) does not apply: no weighted vote, and the note says why.
    expect(m.weighted_vote).to.equal(null);
    expect(m.weighted_vote_note).to.match(/vote aggregator prod needs nonnegative/);
    const byMean = bonMetrics(logits, { equivalent: numericEq, voteAggregator: 'mean', bootstrap: { resamples: 0 } });
    expect(byMean.vote_weights).to.equal('softmax');
    expect(byMean.weighted_vote).to.equal(100);
    const forced = bonMetrics(logits, { equivalent: numericEq, voteAggregator: 'mean', voteWeights: 'score', bootstrap: { resamples: 0 } });
    expect(forced.weighted_vote).to.equal(null);
    expect(forced.weighted_vote_note).to.match(/score weights need nonnegative scores/);
  });

  it('keeps score weights for probabilities (auto)', () => {
    const m = bonMetrics(makeProblems(), { equivalent: numericEq, bootstrap: { resamples: 0 } });
    expect(m.vote_weights).to.equal('score');
    expect(m.not_applicable).to.deep.equal({});
  });
});

describe('multi-set summary', () => {
  it('names sets by file, or by folder when names clash', () => {
    expect(candidateSetNames(['x/gsm8k.jsonl', 'y/math.jsonl'])).to.deep.equal(['gsm8k', 'math']);
    expect(candidateSetNames(['bon/gsm8k/test.jsonl', 'bon/math/test.jsonl'])).to.deep.equal(['gsm8k', 'math']);
    expect(candidateSetNames(['a/t.jsonl', 'a/t.jsonl'])).to.deep.equal(['a-1', 'a-2']);
  });
  it('averages the sets plainly (not weighted by problem count)', () => {
    const one = bonMetrics(makeProblems(), { equivalent: numericEq, bootstrap: { resamples: 0 } });
    const allRight = makeProblems()[2];
    const twoSteps = { ...allRight, responses: allRight.responses.map((x) => ({ ...x, score: [0.9, x.score as number] })) };
    const two = bonMetrics([twoSteps], { equivalent: numericEq, bootstrap: { resamples: 0 } });
    const s = summarizeBonSets([
      { name: 'one', metrics: one },
      { name: 'two', metrics: two },
    ]);
    expect(s.average.n_sets).to.equal(2);
    expect(s.average.pass_at_n).to.equal((75 + 100) / 2);
    expect(s.average.prm_at_n.prod).to.equal((50 + 100) / 2);
    expect(s.sets.two.n_problems).to.equal(1);
  });
});

describe('picks and baselines', () => {
  it('treats scores equal up to float32 noise as a tie, so in-process and served scores pick alike', () => {
    // The same PRM in-process and behind `prmkit serve`: the last digit moves between the two.
    const local = { id: 'p', responses: [r('1', false, [0.9515726]), r('2', true, [0.9515727])] };
    const served = { id: 'p', responses: [r('1', false, [0.9515727]), r('2', true, [0.9515726])] };
    const a = problemOutcome(local, 2, { ...opts, aggregators: ['last'] });
    const b = problemOutcome(served, 2, { ...opts, aggregators: ['last'] });
    expect(a.prm.last?.pick).to.equal(0);
    expect(b.prm.last?.pick).to.equal(0);
    // A real difference still decides.
    const clear = { id: 'p', responses: [r('1', false, [0.95]), r('2', true, [0.96])] };
    expect(problemOutcome(clear, 2, { ...opts, aggregators: ['last'] }).prm.last?.pick).to.equal(1);
    expect(bestIndex([0.5, Number.NaN, 0.5000001])).to.equal(0);
    expect(topIndices([0.2, 0.9, 0.9000001, 0.5], 3)).to.deep.equal([1, 2, 3]);
  });

  it('gives a random pick and a constant score beside every PRM pick, and says when a pick is no better than chance', () => {
    const problems: GradedProblem[] = [
      { id: 'a', responses: [r('1', false, [1, 0.9]), r('2', true, [1, 0.1]), r('2', true, [1, 0.2]), r('3', false, [1, 0.8])] },
      { id: 'b', responses: [r('5', true, [1, 0.1]), r('6', false, [1, 0.9]), r('6', false, [1, 0.7]), r('5', true, [1, 0.3])] },
    ];
    const m = bonMetrics(problems, { aggregators: ['min'], equivalent: numericEq, bootstrap: { resamples: 0 } });
    // 2 of 4 right in each problem: a random pick is right half the time.
    expect(m.random_pick).to.equal(50);
    // A constant score picks the first response: wrong in a, right in b.
    expect(m.constant_score).to.equal(50);
    expect(m.prm_at_n.min).to.equal(0);
    const summary = summarizeBonSets([{ name: 'set', metrics: m }]);
    const lines = belowBaselineLines([{ name: 'set', row: summary.sets.set }], ['min']);
    expect(lines.join('\n')).to.contain('set: prm@N min 0.0 at or below a random pick (50.0)');
  });

  it('counts the picks whose lowest step score is their last step (§3.2)', () => {
    const problems: GradedProblem[] = [
      // min picks response 1 ([0.8, 0.7]: its minimum is the last step); last picks response 0.
      { id: 'a', responses: [r('1', true, [0.2, 0.95]), r('2', false, [0.8, 0.7])] },
      // both pick response 0, whose minimum is its first step.
      { id: 'b', responses: [r('5', true, [0.6, 0.9]), r('6', false, [0.1, 0.5])] },
    ];
    const m = bonMetrics(problems, { aggregators: ['min', 'last'], equivalent: numericEq, bootstrap: { resamples: 0 } });
    expect(m.picked_min_at_last_step).to.deep.equal({ min: 50, last: 0 });
    expect(m.min_at_last_step).to.equal(25);
  });
});
