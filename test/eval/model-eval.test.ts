import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { simBonCandidates, simProcessBench } from '../../src/sim/world.js';
import { openStepScorer } from '../../src/eval/model-scorer.js';
import { runProcessBench } from '../../src/eval/run-processbench.js';
import { runBon } from '../../src/eval/run-bon.js';
import { splitSteps } from '../../src/data/split.js';
import type { ProcessBenchPrediction } from '../../src/eval/processbench.js';
import type { GradedRecord } from '../../src/eval/bon.js';
import { saveTinyPrm } from './tiny-model.js';
import { runEvalStage } from '../../src/run/eval-stage.js';
import { EvalSchema, RecipeSchema as EvalRecipe } from '../../src/recipes/schema.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

describe('evaluation with a model (tiny random PRM, cpu backend)', function () {
  let tmp: string;
  let modelDir: string;
  let pbDir: string;
  let bonFile: string;
  const pbSamples = simProcessBench(8, 3);
  const bonCandidates = simBonCandidates(4, 4, 4);
  const longId = 'sim-long';

  let progressSetting: string | undefined;

  before(async () => {
    progressSetting = process.env.PRMKIT_NO_PROGRESS;
    process.env.PRMKIT_NO_PROGRESS = '1';
    tmp = mkdtempSync(join(tmpdir(), 'prmkit-eval-model-'));
    modelDir = join(tmp, 'model');
    const corpus = [...pbSamples.flatMap((s) => [s.problem, ...s.steps]), ...bonCandidates.flatMap((c) => [c.problem, ...c.responses])];
    await saveTinyPrm(modelDir, corpus, { maxPositions: 512 });
    pbDir = join(tmp, 'pb');
    mkdirSync(pbDir);
    const records = pbSamples.map((s) => ({ id: s.id, problem: s.problem, steps: s.steps, label: s.firstError, final_answer_correct: s.firstError === -1 }));
    // One sample longer than the context: it must be reported, not cut.
    records.push({ id: longId, problem: pbSamples[0].problem, steps: Array.from({ length: 200 }, () => 'one two three four'), label: 3, final_answer_correct: false });
    writeFileSync(join(pbDir, 'sim.json'), JSON.stringify(records));
    bonFile = join(tmp, 'bon.jsonl');
    writeFileSync(bonFile, bonCandidates.map((c) => JSON.stringify({ idx: c.id, problem: c.problem, answer: c.answer, responses: c.responses })).join('\n') + '\n');
  });

  after(() => {
    if (progressSetting === undefined) delete process.env.PRMKIT_NO_PROGRESS;
    else process.env.PRMKIT_NO_PROGRESS = progressSetting;
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('eval processbench --model: scores every step, reports the too-long sample, leaks no tensors', async () => {
    const before = tf.memory().numTensors;
    const scorer = await openStepScorer(modelDir, { backend: 'cpu' });
    const afterLoad = tf.memory().numTensors;
    try {
      const { report, markdown } = await runProcessBench({ data: pbDir, scorer, threshold: 'auto', thresholdSubset: 'sim', out: join(tmp, 'pb-out') });
      expect(report.n).to.equal(pbSamples.length);
      // The average says what it is over, with its interval.
      expect(markdown).to.contain(`**average** (over ${pbSamples.length} of ${pbSamples.length + 1} samples)`);
      expect(report.ci?.avg).to.be.an('array').with.length(2);
      expect(report.n_too_long).to.equal(1);
      expect(report.too_long_ids).to.deep.equal([longId]);
      expect(report.subsets.sim.n).to.equal(pbSamples.length);
      const predictions = readFileSync(join(tmp, 'pb-out', 'predictions.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as ProcessBenchPrediction);
      // The step scores written are the model's, aligned with the right sample.
      const direct = await scorer.score(pbSamples);
      pbSamples.forEach((s, i) => {
        const p = predictions[i];
        expect(p.id).to.equal(s.id);
        expect(p.step_scores).to.have.length(s.steps.length);
        p.step_scores!.forEach((v, j) => expect(v).to.be.closeTo(direct.stepScores[i]![j], 1e-6));
      });
      expect(predictions[pbSamples.length]).to.include({ id: longId, too_long: true, predicted: null });
      expect(tf.memory().numTensors).to.equal(afterLoad);
    } finally {
      scorer.dispose();
    }
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('a run scores ProcessBench at the dev-chosen threshold and says so, with the coverage of its average', async () => {
    // Dev samples labelled from the sim truth: every step right up to the first wrong one.
    const dev = simProcessBench(12, 9).map((s) => ({
      ...s,
      labels: s.steps.slice(0, s.firstError === -1 ? s.steps.length : (s.firstError ?? -1) + 1).map((_, j) => (j === s.firstError ? 0 : 1)),
    }));
    const runDir = join(tmp, 'run-eval');
    const lines: string[] = [];
    const ctx = { runDir, recipe: EvalRecipe.parse({ name: 'x' }), baseDir: tmp, resume: false, backend: 'cpu', log: (l: string) => lines.push(l), progress: false };
    const cfg = EvalSchema.parse({ threshold: 'dev', processbench: { path: 'pb' } });
    const summary = await runEvalStage(ctx, cfg, modelDir, dev);
    expect(summary.threshold?.source).to.equal('dev');
    const chosen = summary.threshold?.value as number;
    expect(chosen).to.be.a('number').and.not.equal(0.5);
    expect(summary.processbench?.threshold).to.equal(chosen);
    expect(summary.processbench?.threshold_source).to.equal('dev');
    expect(summary.processbench?.n).to.equal(pbSamples.length);
    expect(summary.processbench?.n_total).to.equal(pbSamples.length + 1);
    expect(lines.join('\n')).to.match(new RegExp(`ProcessBench avg F1 .* over ${pbSamples.length} of ${pbSamples.length + 1} samples \\(threshold [0-9.]+, chosen on the dev split\\)`));
    const metrics = JSON.parse(readFileSync(join(runDir, 'eval', 'processbench', 'metrics.json'), 'utf8'));
    expect(metrics.threshold).to.equal(chosen);
  });

  it('eval bon --model: splits responses into steps and scores each step', async () => {
    const scorer = await openStepScorer(modelDir, { backend: 'cpu' });
    try {
      const out = join(tmp, 'bon-out');
      const result = await runBon({ candidates: [bonFile], scorer, n: 4, aggregators: ['min', 'prod', 'last'], bootstrap: { resamples: 50 }, out });
      const m = result.sets[0].metrics;
      expect(m.n_problems).to.equal(bonCandidates.length);
      expect(m.n_unscored).to.equal(0);
      expect(Object.keys(m.prm_at_n)).to.deep.equal(['min', 'prod', 'last']);
      expect(m.min_at_last_step).to.be.a('number');
      const graded = readFileSync(join(out, 'graded.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as GradedRecord);
      graded.forEach((g, i) =>
        g.responses.forEach((r, j) => {
          const steps = splitSteps(bonCandidates[i].responses[j]);
          expect(r.score).to.be.an('array').with.length(steps.length);
          expect(r.aggregated.min).to.equal(Math.min(...(r.score as number[])));
        }),
      );
      // sim answers are graded by our grader: the gold answer itself is right
      expect(m.pass_at_n).to.be.greaterThan(0);
    } finally {
      scorer.dispose();
    }
  });

  it('prmkit eval sim runs both sim benchmarks from the CLI', () => {
    const out = join(tmp, 'sim-out');
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/cli/run.ts', 'eval', 'sim', '--model', modelDir, '--problems', '6', '--n', '2', '--backend', 'cpu', '--out', out],
      { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, PRMKIT_NO_PROGRESS: '1' } },
    );
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/\| sim \| 6 \|/);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.processbench.n).to.equal(6);
    expect(summary.bon).to.include({ n_problems: 6, n: 2 });
    expect(summary.backend).to.equal('cpu');
    for (const f of ['processbench/metrics.json', 'processbench/predictions.jsonl', 'bon/metrics.json', 'bon/graded.jsonl']) {
      expect(existsSync(join(out, f)), f).to.equal(true);
    }
  });
});
