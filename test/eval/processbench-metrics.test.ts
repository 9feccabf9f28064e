import { expect } from 'chai';
import {
  chooseThreshold,
  confusionTable,
  harmonicF1,
  predictFirstError,
  processBenchMetrics,
  subsetMetrics,
  type ProcessBenchItem,
  type ScoredItem,
} from '../../src/eval/processbench-metrics.js';
import { Rng } from '../../src/util/rng.js';

const item = (subset: string, label: number, predicted: number, finalAnswerCorrect?: boolean): ProcessBenchItem => ({
  subset,
  label,
  predicted,
  finalAnswerCorrect,
});

describe('predictFirstError', () => {
  it('returns the first step strictly below the threshold, else -1', () => {
    expect(predictFirstError([0.9, 0.4, 0.1], 0.5)).to.equal(1);
    expect(predictFirstError([0.9, 0.5, 0.7], 0.5)).to.equal(-1); // 0.5 is not < 0.5
    expect(predictFirstError([0.2], 0.5)).to.equal(0);
    expect(predictFirstError([], 0.5)).to.equal(-1);
  });
});

describe('ProcessBench metrics', () => {
  it('computes error/correct accuracy and their harmonic mean per subset', () => {
    // 3 erroneous (2 right), 2 correct (1 right): acc_error 66.67, acc_correct 50, F1 = 2*a*c/(a+c)
    const m = subsetMetrics([item('a', 2, 2), item('a', 0, 0), item('a', 1, 3), item('a', -1, -1), item('a', -1, 0)]);
    expect(m).to.include({ n: 5, n_error: 3, n_correct: 2 });
    expect(m.acc_error).to.be.closeTo(200 / 3, 1e-12);
    expect(m.acc_correct).to.equal(50);
    expect(m.f1).to.be.closeTo((2 * (200 / 3) * 50) / (200 / 3 + 50), 1e-12);
  });

  it('gives F1 0 when both accuracies are 0 and null when a class is empty', () => {
    expect(subsetMetrics([item('a', 1, 0), item('a', -1, 2)]).f1).to.equal(0);
    const allCorrect = subsetMetrics([item('a', -1, -1), item('a', -1, -1)]);
    expect(allCorrect.acc_correct).to.equal(100);
    expect(allCorrect.acc_error).to.equal(null);
    expect(allCorrect.f1).to.equal(null);
    expect(harmonicF1(100, 100)).to.equal(100);
    expect(harmonicF1(null, 50)).to.equal(null);
  });

  it('averages F1 over the subsets present, unweighted, skipping undefined ones', () => {
    const items = [
      // big subset: F1 100
      ...Array.from({ length: 50 }, () => item('big', 1, 1)),
      ...Array.from({ length: 50 }, () => item('big', -1, -1)),
      // small subset: acc_error 0, acc_correct 100 -> F1 0
      item('small', 0, -1),
      item('small', -1, -1),
      // all-correct subset: F1 undefined, left out of the mean
      item('clean', -1, -1),
    ];
    const m = processBenchMetrics(items);
    expect(Object.keys(m.subsets)).to.deep.equal(['big', 'small', 'clean']);
    expect(m.subsets.big.f1).to.equal(100);
    expect(m.subsets.small.f1).to.equal(0);
    expect(m.subsets.clean.f1).to.equal(null);
    expect(m.avg_f1).to.equal(50);
  });

  it('has no subsets and null figures for no items', () => {
    const m = processBenchMetrics([]);
    expect(m.subsets).to.deep.equal({});
    expect(m.avg_f1).to.equal(null);
    expect(m.extracted_accuracy).to.equal(null);
    expect(m.n_extracted).to.equal(0);
  });

  it('scores the extracted set: wrong process, right final answer', () => {
    const m = processBenchMetrics([
      item('a', 2, 2, true), // extracted, hit
      item('a', 1, -1, true), // extracted, miss (the PRM trusted the right answer)
      item('a', 1, 1, false), // wrong answer: not extracted
      item('a', -1, -1, true), // no process error: not extracted
    ]);
    expect(m.n_extracted).to.equal(2);
    expect(m.extracted_accuracy).to.equal(50);
    // 2 of the 3 right-answer samples have a process error
    expect(m.process_error_rate_among_correct_answers.a).to.be.closeTo(200 / 3, 1e-12);
  });

  it('tabulates predicted vs true first-error positions with a last bucket', () => {
    const c = confusionTable([item('a', -1, -1), item('a', 0, 3), item('a', 12, 15), item('a', 12, -1)], 10);
    expect(c.labels[0]).to.equal('none');
    expect(c.labels[11]).to.equal('10+');
    expect(c.counts[0][0]).to.equal(1);
    expect(c.counts[1][4]).to.equal(1);
    expect(c.counts[11][11]).to.equal(1);
    expect(c.counts[11][0]).to.equal(1);
    expect(c.counts.flat().reduce((a, b) => a + b, 0)).to.equal(4);
  });
});

/** Brute force: F1 of every candidate from its definition, best first, smallest on ties. */
function bruteForce(items: ScoredItem[], subset: string): { threshold: number; f1: number } {
  const chosen = items.filter((it) => it.subset === subset);
  const values = [...new Set(chosen.flatMap((it) => [...it.stepScores]))].sort((a, b) => a - b);
  const candidates = [values[0], ...values.slice(0, -1).map((v, i) => (v + values[i + 1]) / 2)];
  let best = { threshold: NaN, f1: -1 };
  for (const t of candidates) {
    const f1 = subsetMetrics(chosen.map((it) => item(subset, it.label, predictFirstError(it.stepScores, t)))).f1 as number;
    if (f1 > best.f1) best = { threshold: t, f1 };
  }
  return best;
}

describe('chooseThreshold (auto)', () => {
  it('finds the separating threshold of a hand-made case', () => {
    const items: ScoredItem[] = [
      { subset: 'gsm8k', label: -1, stepScores: [0.9, 0.8] },
      { subset: 'gsm8k', label: 1, stepScores: [0.7, 0.3] },
      { subset: 'gsm8k', label: 0, stepScores: [0.2, 0.9] },
      { subset: 'math', label: -1, stepScores: [0.01] }, // other subsets do not count
    ];
    const c = chooseThreshold(items);
    expect(c.f1).to.equal(100);
    // Perfect for t in (0.3, 0.7]. Distinct values 0.2 0.3 0.7 0.8 0.9 give the candidates 0.2
    // and the midpoints 0.25 0.5 0.75 0.85; only 0.5 lies in that interval.
    expect(c.threshold).to.equal(0.5);
    expect(c.candidates).to.equal(5);
  });

  it('breaks ties toward the smallest threshold', () => {
    // Scores 0.2 (error at step 0) and 0.6/0.9 (correct): any t in (0.2, 0.6] is perfect.
    const items: ScoredItem[] = [
      { subset: 'gsm8k', label: 0, stepScores: [0.2] },
      { subset: 'gsm8k', label: -1, stepScores: [0.6] },
      { subset: 'gsm8k', label: -1, stepScores: [0.9] },
    ];
    // candidates: 0.2 (F1 0), 0.4 (100), 0.75 (acc_correct 50)
    expect(chooseThreshold(items)).to.deep.equal({ threshold: 0.4, f1: 100, candidates: 3 });
  });

  it('matches a brute-force search on random scores', () => {
    const rng = new Rng(11);
    for (let trial = 0; trial < 20; trial++) {
      const items: ScoredItem[] = Array.from({ length: 60 }, () => {
        const steps = rng.int(1, 6);
        // coarse scores make ties between samples likely
        const stepScores = Array.from({ length: steps }, () => rng.int(0, 12) / 12);
        const label = rng.bernoulli(0.4) ? -1 : rng.int(0, steps - 1);
        return { subset: 'gsm8k', label, stepScores };
      });
      const c = chooseThreshold(items);
      const b = bruteForce(items, 'gsm8k');
      expect(c.threshold, `trial ${trial}`).to.equal(b.threshold);
      expect(c.f1).to.equal(b.f1);
    }
  });

  it('refuses a subset without both classes', () => {
    expect(() => chooseThreshold([{ subset: 'gsm8k', label: -1, stepScores: [0.5] }])).to.throw(/both erroneous and all-correct/);
    expect(() => chooseThreshold([{ subset: 'math', label: 0, stepScores: [0.5] }])).to.throw(/"gsm8k"/);
  });
});
