import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRecipe } from '../../src/recipes/load.js';
import { MissingInputError } from '../../src/run/preflight.js';
import { runRecipe } from '../../src/run/run.js';
import { sweepPlanFor } from '../../src/sweep/run.js';
import { testBackend } from '../support/backend.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const recipe = (name: string) => join(repoRoot, 'recipes', name);

describe('recipes/paper and the real recipe', () => {
  const made: string[] = [];
  after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('every paper recipe validates and expands to its points', () => {
    const expected: Record<string, string[]> = {
      'label-ablation.yaml': ['mc-hard', 'mc-soft', 'judge', 'consensus-hard', 'consensus-soft', 'truth'],
      'threshold-sweep.yaml': [0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875].map((t) => `threshold-${t}`),
      'aggregators.yaml': ['mc-hard', 'consensus-hard'],
      'data-scale.yaml': ['unfiltered_problems-2000', 'unfiltered_problems-4000', 'unfiltered_problems-8000', 'filtered_problems-2000', 'filtered_problems-4000', 'filtered_problems-8000'],
    };
    for (const [file, names] of Object.entries(expected)) {
      const { plan, base } = sweepPlanFor({ recipePath: recipe(join('paper', file)) });
      expect(plan.points.map((p) => p.name), file).to.deep.equal(names);
      // Every point runs the sim world end to end: data, labels, training, sim evaluation.
      expect(base.data?.source, file).to.equal('sim');
      expect(base.eval?.sim, file).to.not.equal(undefined);
      expect(base.train, file).to.not.equal(undefined);
    }
    const ablation = sweepPlanFor({ recipePath: recipe('paper/label-ablation.yaml') }).plan.points;
    expect(ablation.find((p) => p.name === 'consensus-soft')?.params).to.deep.equal({ 'labels.method': 'consensus', 'labels.mc_labels': 'soft', 'train.label_mode': 'soft' });
    const thresholds = sweepPlanFor({ recipePath: recipe('paper/threshold-sweep.yaml') });
    expect(thresholds.base.labels?.method).to.equal('mc');
    expect(thresholds.plan.points[1].params).to.deep.equal({ 'labels.threshold': 0.125 });
  });

  it('sim-truth: truth labels on the paper world, a 6-layer PRM from scratch on word-level tokens without spaces, end to end', async function () {
    this.timeout(240_000);
    const { recipe: r } = loadRecipe(recipe('sim-truth.yaml'));
    const { recipe: paper } = loadRecipe(recipe('paper/base.yaml'));
    expect(r.labels?.method).to.equal('truth');
    expect(r.data?.world).to.deep.equal(paper.data?.world);
    expect(r.tokenizer).to.include({ kind: 'word-level', spaces: 'drop' });
    expect(r.tokenizer?.path, 'no leftover path of the shipped base').to.equal(undefined);
    expect(r.model).to.deep.include({ init: 'scratch' });
    expect(r.model?.path).to.equal(undefined);
    expect(r.model?.config.num_hidden_layers).to.equal(6);
    expect(r.train?.lm_loss_weight).to.be.above(0);

    const parent = mkdtempSync(join(tmpdir(), 'prmkit-sim-truth-'));
    made.push(parent);
    const out = join(parent, 'run');
    const tiny = ['data.problems=40', 'train.max_steps=2', 'train.batch_size=4', 'train.eval_every=2', 'train.save_every=2', 'eval.sim.samples=8', 'eval.sim.n=2', `backend=${testBackend()}`];
    await runRecipe({ recipePath: recipe('sim-truth.yaml'), overrides: tiny, out, log: () => {}, progress: false });
    const vocab = Object.keys((JSON.parse(readFileSync(join(out, 'tokenizer', 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } }).model.vocab);
    expect(vocab.filter((t) => /\s/.test(t)), 'whitespace tokens').to.deep.equal([]);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Record<string, number>;
    expect(summary).to.include({ train_steps: 2, label_first_error_precision: 1, retained: 1 });
    expect(summary.sim_processbench_f1).to.be.a('number');
  });

  it('the Qwen2.5-Math-1.5B recipe validates: pretrained model, <extra_0>, consensus labels, 4 ProcessBench subsets, 7 BoN sets', () => {
    const { recipe: r } = loadRecipe(recipe('qwen2.5-math-1.5b-prm.yaml'));
    expect(r.model?.init).to.equal('pretrained');
    expect(r.model?.path).to.match(/Qwen2\.5-Math-1\.5B-Instruct$/);
    expect(r.tokenizer?.step_token).to.equal('<extra_0>');
    expect(r.labels?.method).to.equal('consensus');
    expect(r.labels?.method === 'consensus' ? r.labels.endpoint : '').to.match(/^http/);
    expect(r.eval?.processbench?.subsets).to.deep.equal(['gsm8k', 'math', 'olympiadbench', 'omnimath']);
    expect(r.eval?.bon?.candidates).to.have.length(7);
    expect(r.eval?.bon?.aggregators).to.deep.equal(['min', 'prod', 'last', 'mean']);
  });

  it('the real recipe starts and fails cleanly, before any stage, when the model directory is absent', async function () {
    this.timeout(60_000);
    const modelDir = join(repoRoot, 'checkpoints', 'Qwen2.5-Math-1.5B-Instruct');
    if (existsSync(modelDir)) {
      console.warn(`      (skipped: ${modelDir} exists on this machine)`);
      this.skip();
    }
    const parent = mkdtempSync(join(tmpdir(), 'prmkit-real-'));
    made.push(parent);
    const out = join(parent, 'run');
    let error: unknown;
    try {
      await runRecipe({ recipePath: recipe('qwen2.5-math-1.5b-prm.yaml'), out, log: () => {}, progress: false });
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(MissingInputError);
    expect((error as Error).message).to.contain(`model.path: ${modelDir} does not exist`);
    expect(existsSync(out)).to.equal(false);
    const cli = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/run.ts', 'run', recipe('qwen2.5-math-1.5b-prm.yaml'), '--out', out], { cwd: repoRoot, encoding: 'utf8' });
    expect(cli.status).to.equal(1);
    expect(cli.stderr).to.contain(`model.path: ${modelDir} does not exist`);
    expect(cli.stderr).to.not.match(/\n\s+at /);
  });
});
