import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/backend.js';
import { loadPrm } from '../../src/model/checkpoint.js';
import { listCheckpoints, readTrainerState } from '../../src/train/checkpoints.js';
import { prmModelIo } from '../../src/train/model-io.js';
import { trainModel, TrainingDivergedError } from '../../src/train/trainer.js';
import { toySetup, toyTrainConfig, trainToy } from './toy.js';
import { testBackend } from '../support/backend.js';

function tempRun(): string {
  return mkdtempSync(join(tmpdir(), 'prmkit-train-'));
}

function readMetrics(dir: string): Record<string, number | string | boolean | null>[] {
  return readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);
}

describe('train/trainer', function () {
  this.timeout(120000);
  before(async () => {
    await selectBackend(testBackend(), { log: () => {} });
  });

  it('trains a tiny PRM: loss falls, metrics.jsonl and dev lines, checkpoints pruned, final written, no tensor leak', async () => {
    const setup = await toySetup();
    const out = tempRun();
    const lines: string[] = [];
    const result = await trainModel({
      model: setup.model,
      io: prmModelIo(setup.model, setup.files),
      train: setup.train,
      dev: setup.dev,
      config: toyTrainConfig({ epochs: 4, final: 'last' }),
      outDir: out,
      padTokenId: setup.tokenizer.padTokenId,
      log: (l) => lines.push(l),
      progress: false,
    });
    expect(result.steps).to.equal(result.totalSteps);
    const metrics = readMetrics(out);
    const train = metrics.filter((m) => m.kind === 'train');
    expect(train).to.have.length(result.totalSteps);
    for (const key of ['step', 'loss', 'lr', 'grad_norm', 'tokens_per_s', 'rss_mb', 'num_tensors']) expect(train[0]).to.have.property(key);
    const first = (train[0].loss as number) + (train[1].loss as number);
    const last = (train[train.length - 1].loss as number) + (train[train.length - 2].loss as number);
    expect(last).to.be.below(first * 0.8);
    // warmup: the first step runs at lr 0 as torch's LambdaLR does
    expect(train[0].lr).to.equal(0);
    const tensorCounts = train.slice(2).map((m) => m.num_tensors);
    expect(new Set(tensorCounts).size, `tensor count per step ${tensorCounts}`).to.equal(1);
    const dev = metrics.filter((m) => m.kind === 'dev');
    expect(dev.length).to.be.at.least(2);
    for (const key of ['dev_loss', 'step_accuracy', 'step_auroc', 'first_error_f1']) expect(dev[0]).to.have.property(key);
    // TensorBoard event files exist only on the native backend; elsewhere the trainer says so.
    if (tf.getBackend() === 'tensorflow') expect(readdirSync(join(out, 'tensorboard')).length).to.be.above(0);
    else expect(lines.some((l) => /TensorBoard event files skipped/.test(l))).to.equal(true);
    const kept = (await listCheckpoints(join(out, 'checkpoints'))).map((c) => c.step);
    expect(kept).to.include(result.totalSteps);
    expect(kept.length).to.be.at.most(3); // keep_last 2 + best
    if (result.best) expect(kept).to.include(result.best.step);
    for (const f of ['model.safetensors', 'config.json', 'tokenizer.json', 'tokenizer_config.json']) {
      expect(existsSync(join(out, 'checkpoints', 'final', f)), f).to.equal(true);
    }
    expect(existsSync(join(out, 'checkpoints', 'final', 'optimizer.safetensors'))).to.equal(false);
    const state = await readTrainerState(join(out, 'checkpoints', `checkpoint-${result.totalSteps}`));
    expect(state.global_step).to.equal(result.totalSteps);
    expect(state.cursor.epoch).to.equal(4);
    // the final model reloads with the trained weights
    const { model } = await loadPrm(join(out, 'checkpoints', 'final'));
    const a = model.variables.get('score.2.weight')!.dataSync();
    const b = setup.model.variables.get('score.2.weight')!.dataSync();
    expect(Array.from(a)).to.deep.equal(Array.from(b));
    model.dispose();
    setup.model.dispose();
  });

  it('stops on a NaN loss with a clear message and leaves the last good checkpoint intact', async () => {
    const setup = await toySetup({ nTrain: 32, nDev: 8 });
    const out = tempRun();
    let err: unknown;
    try {
      await trainModel({
        model: setup.model,
        io: prmModelIo(setup.model, setup.files),
        train: setup.train,
        dev: setup.dev,
        config: toyTrainConfig({ epochs: 3, save_every: 2, eval_every: 0 }),
        outDir: out,
        padTokenId: setup.tokenizer.padTokenId,
        log: () => {},
        progress: false,
        // A corrupted weight after step 4 (as an overflow would leave it) makes step 5's loss NaN.
        afterStep: (step) => {
          if (step === 4) {
            const v = setup.model.variables.get('score.2.bias')!;
            tf.tidy(() => v.assign(tf.fill(v.shape, NaN)));
          }
        },
      });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(TrainingDivergedError);
    const msg = (err as Error).message;
    expect(msg).to.match(/loss is NaN at optimizer step 5/);
    expect(msg).to.match(/last good checkpoint is .*checkpoint-4 \(step 4\)/);
    const ckpts = await listCheckpoints(join(out, 'checkpoints'));
    expect(ckpts.map((c) => c.step)).to.deep.equal([2, 4]);
    expect(existsSync(join(out, 'checkpoints', 'final'))).to.equal(false);
    const { model } = await loadPrm(ckpts[1].dir);
    for (const v of model.variables.values()) expect(v.dataSync().every(Number.isFinite)).to.equal(true);
    model.dispose();
    const last = readMetrics(out).pop()!;
    expect(last).to.include({ step: 5, diverged: true });
    expect(readdirSync(join(out, 'checkpoints')).filter((n) => n.startsWith('.'))).to.deep.equal([]);
    setup.model.dispose();
  });

  it('resumes in-process to the same weights as an uninterrupted run', async () => {
    const cfg = toyTrainConfig({ epochs: 2, save_every: 3, eval_every: 3, final: 'last', grad_accumulation: 2, batch_size: 4 });
    const straight = await toySetup({ nTrain: 32, nDev: 8 });
    const outA = tempRun();
    await trainToy(straight, cfg, outA);

    const outB = tempRun();
    const first = await toySetup({ nTrain: 32, nDev: 8 });
    expect(await trainToy(first, cfg, outB, { stopAfter: 5 })).to.equal(null);
    first.model.dispose();
    const second = await toySetup({ nTrain: 32, nDev: 8, seed: 99 }); // different init: resume must overwrite it
    const result = (await trainToy(second, cfg, outB, { resume: true }))!;
    expect(result.resumedFrom).to.equal(3);
    const a = readFileSync(join(outA, 'checkpoints', 'final', 'model.safetensors'));
    const b = readFileSync(join(outB, 'checkpoints', 'final', 'model.safetensors'));
    expect(Buffer.compare(a, b)).to.equal(0);
    const trainA = readMetrics(outA).filter((m) => m.kind === 'train').map((m) => m.loss);
    const trainB = readMetrics(outB).filter((m) => m.kind === 'train').map((m) => m.loss);
    expect(trainB).to.deep.equal(trainA);
    straight.model.dispose();
    second.model.dispose();
  });

  it('freeze head_only trains the score head only, and gradient accumulation runs', async () => {
    const setup = await toySetup({ nTrain: 16, nDev: 4 });
    const before = new Map([...setup.model.variables].map(([n, v]) => [n, Array.from(v.dataSync())]));
    const result = await trainModel({
      model: setup.model, io: prmModelIo(setup.model, setup.files), train: setup.train, dev: setup.dev,
      config: toyTrainConfig({ epochs: 1, batch_size: 4, grad_accumulation: 2, freeze: { head_only: true }, eval_every: 0, save_every: 0, final: 'last' }),
      outDir: tempRun(), padTokenId: setup.tokenizer.padTokenId, log: () => {}, progress: false,
    });
    expect(result.totalSteps).to.equal(2); // 4 micro-batches of 4, accumulated 2 by 2
    for (const [name, v] of setup.model.variables) {
      const changed = Array.from(v.dataSync()).some((x, i) => x !== before.get(name)![i]);
      expect(changed, name).to.equal(name.startsWith('score.'));
    }
    setup.model.dispose();
  });
});
