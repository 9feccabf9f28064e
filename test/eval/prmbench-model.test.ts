import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { simProcessBench } from '../../src/sim/world.js';
import { openStepScorer } from '../../src/eval/model-scorer.js';
import { runPrmBench, type PrmBenchReport } from '../../src/eval/run-prmbench.js';
import { prmBenchMetrics } from '../../src/eval/prmbench-metrics.js';
import { RecipeSchema } from '../../src/recipes/schema.js';
import { runStage, type RunContext } from '../../src/run/context.js';
import { runEvalStage } from '../../src/run/eval-stage.js';
import { renderReport } from '../../src/run/report-stage.js';
import { testBackend } from '../support/backend.js';
import { saveTinyPrm } from './tiny-model.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/**
 * A PRMBench-shaped folder built from sim solutions (so no shared data is needed): two
 * redundency items (each also yields its "correct_" original), two circular and one
 * multi_solutions item, with 1-based error_steps.
 */
function writePrmBenchFolder(dir: string): void {
  const samples = simProcessBench(6, 11);
  const line = (i: number, classification: string, errorSteps: number[]) => {
    const s = samples[i];
    return JSON.stringify({
      idx: `p${i}`,
      classification,
      original_question: s.problem,
      original_process: s.steps.slice(0, Math.max(1, s.steps.length - 1)),
      modified_question: s.problem,
      modified_process: s.steps,
      error_steps: errorSteps,
    });
  };
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'b_redundency.jsonl'), `${line(0, 'redundency', [2])}\n${line(1, 'redundency', [1, 3])}\n`);
  writeFileSync(join(dir, 'a_circular.jsonl'), `${line(2, 'circular', [1])}\n${line(3, 'circular', [2])}\n`);
  writeFileSync(join(dir, 'c_multi.jsonl'), `${line(4, 'multi_solutions', [])}\n`);
}

describe('eval prmbench --model (tiny random PRM)', function () {
  let tmp: string;
  let modelDir: string;
  let dataDir: string;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'prmkit-prmbench-model-'));
    dataDir = join(tmp, 'prmbench');
    writePrmBenchFolder(dataDir);
    modelDir = join(tmp, 'model');
    const corpus = simProcessBench(6, 11).flatMap((s) => [s.problem, ...s.steps]);
    await saveTinyPrm(modelDir, corpus, { maxPositions: 512 });
  });

  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('scores every item through the one scorer and computes the metrics on those scores, leaking no tensors', async () => {
    const before = tf.memory().numTensors;
    const scorer = await openStepScorer(modelDir, { backend: testBackend() });
    try {
      const afterLoad = tf.memory().numTensors;
      const { report } = await runPrmBench({ data: dataDir, scorer, out: join(tmp, 'lib') });
      expect(tf.memory().numTensors).to.equal(afterLoad);
      expect(report.n).to.equal(7);
      expect(Object.keys(report.class_details)).to.deep.equal(['redundency', 'circular', 'multi_solutions', 'correct']);
      const predictions = readFileSync(join(tmp, 'lib', 'predictions.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { id: string; classification: string; error_steps: number[]; step_scores: number[] });
      // a_circular.jsonl is read first (name order); each redundency line is preceded by its original.
      expect(predictions.map((p) => p.id)).to.deep.equal(['circular_p2', 'circular_p3', 'correct_p0', 'redundency_p0', 'correct_p1', 'redundency_p1', 'multi_solutions_p4']);
      // The scores written are the scorer's own for that item's problem and steps ...
      const raw = readFileSync(join(dataDir, 'b_redundency.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      const direct = await scorer.score([
        { problem: raw[0].original_question, steps: raw[0].original_process },
        { problem: raw[0].modified_question, steps: raw[0].modified_process },
      ]);
      expect(predictions[2].step_scores).to.have.length(raw[0].original_process.length);
      predictions[2].step_scores.forEach((v, j) => expect(v).to.be.closeTo(direct.stepScores[0]![j], 1e-6));
      predictions[3].step_scores.forEach((v, j) => expect(v).to.be.closeTo(direct.stepScores[1]![j], 1e-6));
      // ... and the metrics are those of the scores written.
      const again = prmBenchMetrics(
        predictions.map((p) => ({ classification: p.classification, errorSteps: p.error_steps, stepScores: p.step_scores })),
        0.5,
      );
      expect(report.prmscore).to.equal(again.prmscore);
      expect(report.classes).to.deep.equal(again.classes);
    } finally {
      scorer.dispose();
    }
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('runs from the CLI with --model and a threshold', () => {
    const out = join(tmp, 'cli');
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/cli/run.ts', 'eval', 'prmbench', '--data', dataDir, '--model', modelDir, '--threshold', '0.4', '--backend', testBackend(), '--out', out],
      { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, PRMKIT_NO_PROGRESS: '1' } },
    );
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/\| multi_solutions \| 1 \|/);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as PrmBenchReport;
    expect(metrics.threshold).to.equal(0.4);
    expect(metrics.overall.n).to.equal(5);
    const steps = metrics.overall.tp + metrics.overall.fp + metrics.overall.tn + metrics.overall.fn;
    const lines = readFileSync(join(out, 'predictions.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { classification: string; step_scores: number[] });
    expect(steps).to.equal(lines.filter((l) => l.classification !== 'correct').reduce((a, l) => a + l.step_scores.length, 0));
  });

  it('a recipe lists prmbench in eval; the run report shows its PRMScore per class and overall', async () => {
    const runDir = join(tmp, 'run');
    mkdirSync(runDir);
    const recipe = RecipeSchema.parse({ name: 'pb', eval: { prmbench: { path: 'prmbench' } } });
    // No threshold of its own: it takes eval.threshold's (dev by default, chosen on the run's dev split).
    expect(recipe.eval?.prmbench).to.deep.equal({ path: 'prmbench' });
    expect(() => RecipeSchema.parse({ eval: { prmbench: { path: 'x', treshold: 0.4 } } })).to.throw(/treshold/);
    // Step splitting of Best-of-N responses: defaults, and a bad mode named by its key.
    expect(recipe.eval?.split).to.deep.equal({ mode: 'paragraphs', min_chars: 0, think: 'scored' });
    expect(RecipeSchema.parse({ eval: { split: { mode: 'sentences', max_steps: 30, think: 'skipped' } } }).eval?.split).to.include({ mode: 'sentences', max_steps: 30, think: 'skipped' });
    expect(() => RecipeSchema.parse({ eval: { split: { mode: 'words' } } })).to.throw(/mode/);
    const ctx: RunContext = { runDir, recipe, baseDir: tmp, resume: false, backend: testBackend(), log: () => {}, progress: false };
    const summary = await runStage(ctx, 'eval', () => runEvalStage(ctx, recipe.eval!, modelDir));
    const metrics = JSON.parse(readFileSync(join(runDir, 'eval', 'prmbench', 'metrics.json'), 'utf8')) as PrmBenchReport;
    expect(summary.prmbench?.prmscore).to.equal(metrics.prmscore);
    expect(summary.prmbench?.classes).to.deep.equal(metrics.classes);
    const { markdown, headline } = renderReport(runDir, recipe);
    expect(markdown).to.contain('## PRMBench');
    expect(markdown).to.match(/\| circular \| [\d.]+ \|/);
    expect(headline.prmbench_prmscore).to.equal(metrics.prmscore);
  });

  it('names the bad line of a malformed data file', () => {
    const bad = join(tmp, 'bad');
    mkdirSync(bad);
    writeFileSync(join(bad, 'x.jsonl'), `${JSON.stringify({ idx: 'a', classification: 'circular', modified_question: 'q', modified_process: ['s'], error_steps: [1] })}\n{"idx": "b", "classification": "circular", "modified_question": "q", "modified_process": "s", "error_steps": []}\n`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'eval', 'prmbench', '--data', bad, '--model', modelDir, '--out', join(tmp, 'bad-out')], {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, PRMKIT_NO_PROGRESS: '1' },
    });
    expect(r.status).to.equal(1);
    expect(r.stderr).to.contain(`${join(bad, 'x.jsonl')}:2: field "modified_process": expected an array of strings`);
  });
});
