import { expect } from 'chai';
import type { StepSample } from '../../src/data/types.js';
import { BASELINES, constantScorer, randomScorer } from '../../src/run/eval-stage.js';
import { headlineMetrics } from '../../src/run/report-stage.js';
import { splitByProblem } from '../../src/run/train-stage.js';
import { simWorldOptions } from '../../src/run/data-stage.js';
import { DataSchema } from '../../src/recipes/schema.js';

function sample(id: string, problemId: string): StepSample {
  return { id, problem: `p ${problemId}`, steps: ['a', 'b'], labels: [1, 1], source: 'test', meta: { problemId } };
}

describe('run stages: pieces', () => {
  it('splits train/dev by problem, seeded, never splitting a problem across both', () => {
    const samples = Array.from({ length: 60 }, (_, i) => sample(`s${i}`, `q${i % 20}`));
    const a = splitByProblem(samples, 0.25, 7);
    const b = splitByProblem(samples, 0.25, 7);
    expect(a.dev.map((s) => s.id)).to.deep.equal(b.dev.map((s) => s.id));
    const devProblems = new Set(a.dev.map((s) => s.meta.problemId));
    expect(devProblems.size).to.equal(5);
    expect(a.train.some((s) => devProblems.has(s.meta.problemId))).to.equal(false);
    expect(a.train.length + a.dev.length).to.equal(60);
    expect(splitByProblem(samples, 0.25, 8).dev.map((s) => s.id)).to.not.deep.equal(a.dev.map((s) => s.id));
    expect(splitByProblem(samples, 0, 7).dev).to.deep.equal([]);
  });

  it('baseline scorers: constant, and random scores that depend only on the sample', async () => {
    const samples = [{ problem: 'x', steps: ['a', 'b', 'c'] }, { problem: 'y', steps: ['d'] }];
    expect((await constantScorer(1).score(samples)).stepScores).to.deep.equal([[1, 1, 1], [1]]);
    const r1 = (await randomScorer(5).score(samples)).stepScores;
    const r2 = (await randomScorer(5).score([samples[1], samples[0]])).stepScores;
    expect(r1[0]).to.deep.equal(r2[1]);
    expect(r1[0]!.every((v) => v >= 0 && v < 1)).to.equal(true);
    expect((await randomScorer(6).score(samples)).stepScores[0]).to.not.deep.equal(r1[0]);
    expect(BASELINES.map((b) => b.name)).to.include('constant score');
  });

  it('maps recipe world knobs onto the sim options', () => {
    const d = DataSchema.parse({ source: 'sim', world: { min_steps: 2, max_steps: 3, ops: ['+'], max_value: 9, policy_strength: 0.2 } });
    expect(simWorldOptions(d.world)).to.deep.equal({ problem: { minSteps: 2, maxSteps: 3, ops: ['+'], maxValue: 9 }, policy: { strength: 0.2 }, judge: {} });
  });

  it('headline metrics name the label source used for training', () => {
    const h = headlineMetrics(
      { method: 'consensus', train_file: 'labels/consensus.jsonl', endpoint: 'sim', sources: { consensus: { file: 'x', input: 10, output: 6, retention: 0.6, precision: 0.9, recall: 0.8, f1: 0.85 } } },
      null,
      null,
    );
    expect(h).to.deep.equal({ label_first_error_precision: 0.9, retained: 0.6 });
  });
});
