import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { collateBatch } from '../model/encode.js';
import type { TrainConfig } from '../recipes/schema.js';
import { progressBar } from '../util/progress.js';
import { hashString, Rng } from '../util/rng.js';
import { planEpoch, TrainingPlan, type TrainItem } from './batches.js';
import {
  latestCheckpoint,
  listCheckpoints,
  pruneCheckpoints,
  publishModel,
  readOptimizerState,
  readTrainerState,
  removeStaleTemps,
  saveCheckpoint,
  type BestMetric,
  type TrainerState,
} from './checkpoints.js';
import { devMetrics, type DevMetrics } from './dev-metrics.js';
import { clipByGlobalNorm, globalNorm, GradientAccumulator } from './gradients.js';
import { gatherStepLogits, rowProbabilities, stepLossSumRows, stepTargets, stepWeightTotal, type LossConfig, type StepTargets } from './loss.js';
import { AdamW, type NamedVariable } from './optimizer.js';
import { learningRateAt, warmupStepsFromRatio, type ScheduleOptions } from './schedule.js';
import { openTensorBoard, type ScalarWriter } from './tensorboard.js';

/** What the trainer needs of a model (PrmModel satisfies it). */
export interface TrainableModel {
  variables: Map<string, tf.Variable>;
  logits(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D): tf.Tensor3D;
  /** Logits [N,2] at the given positions only (the head runs on N rows); used when present. */
  logitsAt?(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D, stepPositions: number[][]): tf.Tensor2D;
  trainableVariables(freeze?: { headOnly?: boolean; trainLastLayers?: number }): tf.Variable[];
}

/** Writes the model (HF layout with tokenizer) into a new directory, and reads weights back. */
export interface ModelIo {
  save(dir: string): Promise<void>;
  restore(dir: string): Promise<void>;
}

/** Loss or gradients stopped being finite: the run stops and the last good checkpoint stays. */
export class TrainingDivergedError extends Error {
  override name = 'TrainingDivergedError';
}

export interface TrainerOptions {
  model: TrainableModel;
  io: ModelIo;
  train: readonly TrainItem[];
  dev?: readonly TrainItem[];
  config: TrainConfig;
  /** Run directory: metrics.jsonl, checkpoints/, tensorboard/ go here. */
  outDir: string;
  padTokenId: number;
  /** Seed of the data order (default config.seed ?? 0). */
  seed?: number | string;
  /** Continue from the newest complete checkpoint in outDir/checkpoints when there is one. */
  resume?: boolean;
  log?: (line: string) => void;
  /** Called after every optimizer step (tests use it to stop or corrupt a run at a known step). */
  afterStep?: (step: number) => void | Promise<void>;
  progress?: boolean;
}

export interface TrainResult {
  steps: number;
  totalSteps: number;
  stoppedEarly: boolean;
  best: BestMetric | null;
  lastDev: DevMetrics | null;
  finalDir: string;
  finalFrom: { step: number; kind: 'best' | 'last' };
  resumedFrom: number | null;
  seconds: number;
}

const HIGHER_IS_BETTER: Record<TrainConfig['metric'], boolean> = {
  first_error_f1: true,
  step_auroc: true,
  step_accuracy: true,
  dev_loss: false,
};

function namedParams(model: TrainableModel, vars: readonly tf.Variable[]): NamedVariable[] {
  const nameOf = new Map<tf.Variable, string>();
  for (const [name, v] of model.variables) nameOf.set(v, name);
  return vars.map((v) => {
    const name = nameOf.get(v);
    if (name === undefined) throw new Error(`trainable variable ${v.name} is not among the model's variables`);
    return { name, variable: v };
  });
}

function planFingerprint(items: readonly TrainItem[], cfg: TrainConfig, seed: string): string {
  const parts = [
    seed,
    cfg.epochs,
    cfg.max_steps ?? '',
    cfg.grad_accumulation,
    cfg.batch_size,
    cfg.max_tokens_per_batch,
    items.length,
    items.map((it) => `${it.id}:${it.inputIds.length}:${it.labels.join('')}`).join('|'),
  ];
  return hashString(parts.join('/')).toString(16);
}

/** Logits [N,2] of the supervised step tokens of a collated batch, in target order. */
function supervisedLogits(
  model: TrainableModel,
  ids: tf.Tensor2D,
  mask: tf.Tensor2D,
  supervisedPositions: number[][],
  targets: StepTargets,
): tf.Tensor2D {
  if (model.logitsAt) return model.logitsAt(ids, mask, supervisedPositions);
  return gatherStepLogits(model.logits(ids, mask), targets.flatIndex);
}

/** Micro-batch tensors' host side: padded ids and the targets of its step tokens. */
function hostBatch(items: readonly TrainItem[], indices: readonly number[], padTokenId: number) {
  const rows = indices.map((i) => items[i]);
  // collateBatch takes number[] ids; items keep the compact Int32Array between steps.
  const collated = collateBatch(
    rows.map((r) => ({ inputIds: Array.from(r.inputIds), stepPositions: r.stepPositions.slice(0, r.labels.length) })),
    { padSide: 'right', padTokenId },
  );
  const targets = stepTargets(collated.stepPositions, rows.map((r) => r.labels), collated.seqLen);
  let tokens = 0;
  for (const r of rows) tokens += r.inputIds.length;
  return { collated, targets, tokens };
}

class MetricsLog {
  constructor(private readonly file: string) {}

  /** Drops lines of steps after `step` (left by a run that was killed after its last checkpoint). */
  truncateAfter(step: number): void {
    if (!existsSync(this.file)) return;
    const kept = readFileSync(this.file, 'utf8')
      .split('\n')
      .filter((line) => {
        if (line.trim() === '') return false;
        try {
          const rec = JSON.parse(line) as { step?: number };
          return rec.step === undefined || rec.step <= step;
        } catch {
          return false; // a line cut by a kill
        }
      });
    writeFileSync(this.file, kept.map((l) => l + '\n').join(''));
  }

  write(record: Record<string, unknown>): void {
    appendFileSync(this.file, JSON.stringify(record) + '\n');
  }
}

/**
 * Evaluates the model on the dev items: dev loss (the training loss), step accuracy, step AUROC
 * and first-error F1. Batches in length order, no gradients.
 */
export function evaluateDev(
  model: TrainableModel,
  items: readonly TrainItem[],
  cfg: { loss: LossConfig; maxTokensPerBatch: number; maxBatchSize: number; padTokenId: number },
): DevMetrics {
  const batches = planEpoch(items.map((it) => it.inputIds.length), 0, { maxTokensPerBatch: cfg.maxTokensPerBatch, maxBatchSize: cfg.maxBatchSize, seed: 0, shuffle: false });
  const scores: Float32Array[] = new Array(items.length);
  let lossSum = 0;
  let weight = 0;
  for (const indices of batches) {
    const { collated, targets } = hostBatch(items, indices, cfg.padTokenId);
    const { sum, probs } = tf.tidy(() => {
      const ids = tf.tensor2d(collated.inputIds, [collated.batchSize, collated.seqLen], 'int32');
      const mask = tf.tensor2d(collated.attentionMask, [collated.batchSize, collated.seqLen], 'int32');
      const rows = supervisedLogits(model, ids, mask, collated.stepPositions, targets);
      return { sum: stepLossSumRows(rows, targets.probs, cfg.loss).dataSync()[0], probs: rowProbabilities(rows) };
    });
    lossSum += sum;
    weight += stepWeightTotal(targets.probs, cfg.loss);
    let at = 0;
    for (const i of indices) {
      const n = items[i].labels.length;
      scores[i] = probs.slice(at, at + n);
      at += n;
    }
  }
  return devMetrics(
    items.map((it, i) => ({ scores: scores[i], labels: it.labels })),
    weight > 0 ? lossSum / weight : 0,
  );
}

function isImprovement(metric: TrainConfig['metric'], value: number | null, best: BestMetric | null): value is number {
  if (value === null || !Number.isFinite(value)) return false;
  if (!best) return true;
  return HIGHER_IS_BETTER[metric] ? value > best.value : value < best.value;
}

function fmt(x: number | null | undefined, digits = 4): string {
  return x === null || x === undefined ? 'n/a' : Number(x).toPrecision(digits);
}

/**
 * The training loop: micro-batches with gradient accumulation, global-norm clipping, the
 * learning-rate schedule, AdamW; metrics.jsonl lines and a progress bar; dev evaluation, best
 * and last checkpoints, early stopping; stop on a non-finite loss or gradient; resume from the
 * newest complete checkpoint; the chosen weights published at checkpoints/final.
 */
export async function trainModel(opts: TrainerOptions): Promise<TrainResult> {
  const started = Date.now();
  const cfg = opts.config;
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const seed = String(opts.seed ?? cfg.seed ?? 0);
  const ckptRoot = join(opts.outDir, 'checkpoints');
  mkdirSync(ckptRoot, { recursive: true });
  const removed = await removeStaleTemps(ckptRoot);
  if (removed.length > 0) log(`train: removed unfinished checkpoint writes: ${removed.join(', ')}`);

  const lengths = opts.train.map((it) => it.inputIds.length);
  const batchOpts = { maxTokensPerBatch: cfg.max_tokens_per_batch, maxBatchSize: cfg.batch_size, seed };
  const plan = new TrainingPlan(lengths, cfg.epochs, cfg.grad_accumulation, batchOpts, cfg.max_steps);
  const totalSteps = plan.totalSteps;
  const schedule: ScheduleOptions = {
    kind: cfg.schedule,
    baseLr: cfg.lr,
    warmupSteps: cfg.warmup_steps ?? warmupStepsFromRatio(totalSteps, cfg.warmup_ratio),
    totalSteps,
  };
  const loss: LossConfig = { kind: cfg.loss.kind, classWeights: cfg.loss.class_weights };
  const fingerprint = planFingerprint(opts.train, cfg, seed);

  const vars = opts.model.trainableVariables({ headOnly: cfg.freeze.head_only, trainLastLayers: cfg.freeze.train_last_layers });
  const params = namedParams(opts.model, vars);
  const nParams = vars.reduce((a, v) => a + v.size, 0);
  const optimizer = new AdamW(params, {
    beta1: cfg.beta1,
    beta2: cfg.beta2,
    eps: cfg.eps,
    weightDecay: cfg.weight_decay,
    noDecayPatterns: cfg.no_decay,
  });

  const metrics = new MetricsLog(join(opts.outDir, 'metrics.jsonl'));
  let step = 0;
  let best: BestMetric | null = null;
  let evalsWithoutImprovement = 0;
  let elapsedBefore = 0;
  let tokensSeen = 0;
  let resumedFrom: number | null = null;

  if (opts.resume) {
    const latest = await latestCheckpoint(ckptRoot);
    if (latest) {
      const state = await readTrainerState(latest.dir);
      if (state.plan_fingerprint !== fingerprint) {
        throw new Error(
          `cannot resume from ${latest.dir}: it was trained on other data or batch settings (plan fingerprint ${state.plan_fingerprint}, now ${fingerprint})`,
        );
      }
      await opts.io.restore(latest.dir);
      optimizer.importState(await readOptimizerState(latest.dir, state.optimizer.step));
      step = plan.stepOf(state.cursor);
      if (step !== state.global_step) throw new Error(`${latest.dir}: cursor points at step ${step} but global_step is ${state.global_step}`);
      best = state.best;
      evalsWithoutImprovement = state.evals_without_improvement;
      elapsedBefore = state.elapsed_s;
      tokensSeen = state.tokens_seen;
      resumedFrom = step;
      metrics.truncateAfter(step);
      log(`train: resuming from ${latest.dir} (step ${step}/${totalSteps}, epoch ${state.cursor.epoch}, batch ${state.cursor.batch})`);
    }
  }
  if (resumedFrom === null) metrics.truncateAfter(-1);

  log(
    `train: ${opts.train.length} items, ${opts.dev?.length ?? 0} dev items, ${plan.epochs.length} epoch(s), ` +
      `${totalSteps} optimizer steps of ${cfg.grad_accumulation} micro-batch(es), ${nParams} trainable parameters, ` +
      `lr ${cfg.lr} ${cfg.schedule} (warmup ${schedule.warmupSteps}), loss ${loss.kind}`,
  );

  const tb: ScalarWriter | null = await openTensorBoard(join(opts.outDir, 'tensorboard'), log);
  const devCfg = { loss, maxTokensPerBatch: cfg.max_tokens_per_batch, maxBatchSize: cfg.batch_size, padTokenId: opts.padTokenId };
  let lastDev: DevMetrics | null = null;
  let lastSavedStep = resumedFrom ?? -1;
  let lastEvalStep = -1;

  const stateAt = (s: number): TrainerState => {
    const cursor = plan.cursorAt(s);
    return {
      format: 1,
      global_step: s,
      total_steps: totalSteps,
      cursor,
      rng: { seed, epoch: cursor.epoch, state: new Rng(seed).fork(`epoch:${cursor.epoch}`).state() },
      plan_fingerprint: fingerprint,
      best,
      evals_without_improvement: evalsWithoutImprovement,
      optimizer: { file: '', step: optimizer.step },
      elapsed_s: elapsedBefore + (Date.now() - started) / 1000,
      tokens_seen: tokensSeen,
    };
  };
  const save = async (s: number) => {
    await saveCheckpoint(ckptRoot, stateAt(s), optimizer.exportState(), (dir) => opts.io.save(dir));
    lastSavedStep = s;
    await pruneCheckpoints(ckptRoot, cfg.keep_last, best?.step);
  };
  const lastGood = async () => {
    const all = await listCheckpoints(ckptRoot);
    return all.length ? `the last good checkpoint is ${all[all.length - 1].dir} (step ${all[all.length - 1].step})` : 'no checkpoint had been written yet';
  };

  /** Dev evaluation at step s; returns true when early stopping says stop. */
  const evaluate = async (s: number): Promise<boolean> => {
    if (!opts.dev || opts.dev.length === 0) return false;
    lastEvalStep = s;
    const dev = evaluateDev(opts.model, opts.dev, devCfg);
    lastDev = dev;
    const value = dev[cfg.metric];
    const improved = isImprovement(cfg.metric, value, best);
    if (improved) {
      best = { metric: cfg.metric, value, step: s };
      evalsWithoutImprovement = 0;
    } else {
      evalsWithoutImprovement++;
    }
    metrics.write({ kind: 'dev', step: s, ...dev, best: best?.value ?? null, improved });
    tb?.scalars(s, { 'dev/loss': dev.dev_loss, 'dev/step_accuracy': dev.step_accuracy, 'dev/step_auroc': dev.step_auroc, 'dev/first_error_f1': dev.first_error_f1 });
    log(
      `dev @${s}: loss ${fmt(dev.dev_loss)} step_acc ${fmt(dev.step_accuracy)} auroc ${fmt(dev.step_auroc)} first_error_f1 ${fmt(dev.first_error_f1)}` +
        (improved ? ` (best ${cfg.metric})` : ` (best ${fmt(best?.value)} @${best?.step})`),
    );
    if (improved) await save(s);
    return cfg.patience > 0 && evalsWithoutImprovement >= cfg.patience;
  };

  const bar = progressBar('train', totalSteps, { enabled: opts.progress });
  if (step > 0) bar.tick(step);
  const accumulator = new GradientAccumulator();
  let stoppedEarly = false;
  try {
    while (step < totalSteps) {
      const t0 = Date.now();
      const micro = plan.microBatches(step).map((indices) => hostBatch(opts.train, indices, opts.padTokenId));
      const groupWeight = micro.reduce((a, m) => a + stepWeightTotal(m.targets.probs, loss), 0);
      let stepLoss = 0;
      let stepTokens = 0;
      for (const m of micro) {
        const { collated, targets } = m;
        const { value, grads } = tf.tidy(() => {
          const ids = tf.tensor2d(collated.inputIds, [collated.batchSize, collated.seqLen], 'int32');
          const mask = tf.tensor2d(collated.attentionMask, [collated.batchSize, collated.seqLen], 'int32');
          const lossOf = () => {
            const rows = supervisedLogits(opts.model, ids, mask, collated.stepPositions, targets);
            return tf.div(stepLossSumRows(rows, targets.probs, loss), Math.max(groupWeight, 1e-12)) as tf.Scalar;
          };
          return tf.variableGrads(lossOf, vars);
        });
        stepLoss += value.dataSync()[0];
        value.dispose();
        accumulator.add(params.map((p) => grads[p.variable.name]));
        stepTokens += m.tokens;
      }
      const lr = learningRateAt(step, schedule);
      const summed = accumulator.take();
      let norm: number;
      let toApply: tf.Tensor[];
      if (cfg.max_grad_norm > 0) {
        const clipped = clipByGlobalNorm(summed, cfg.max_grad_norm);
        norm = clipped.norm;
        toApply = clipped.grads;
        tf.dispose(summed);
      } else {
        norm = globalNorm(summed);
        toApply = summed;
      }
      if (!Number.isFinite(stepLoss) || !Number.isFinite(norm)) {
        tf.dispose(toApply);
        const cursor = plan.cursorAt(step);
        metrics.write({ kind: 'train', step: step + 1, loss: stepLoss, lr, grad_norm: norm, diverged: true });
        throw new TrainingDivergedError(
          `training stopped: ${!Number.isFinite(stepLoss) ? `loss is ${stepLoss}` : `gradient norm is ${norm}`} at optimizer step ${step + 1} ` +
            `(epoch ${cursor.epoch}, micro-batch ${cursor.batch}); no update was applied. ${await lastGood()}. ` +
            'Lower train.lr, check the data, or resume from that checkpoint.',
        );
      }
      optimizer.apply(toApply, lr);
      tf.dispose(toApply);
      step++;
      tokensSeen += stepTokens;
      const seconds = (Date.now() - t0) / 1000;
      const record = {
        kind: 'train',
        step,
        epoch: plan.steps[step - 1].epoch,
        loss: stepLoss,
        lr,
        grad_norm: norm,
        tokens: stepTokens,
        tokens_per_s: stepTokens / Math.max(seconds, 1e-6),
        rss_mb: Math.round(process.memoryUsage().rss / 1048576),
        num_tensors: tf.memory().numTensors,
      };
      if (step % cfg.log_every === 0 || step === 1 || step === totalSteps) {
        metrics.write(record);
        tb?.scalars(step, { 'train/loss': stepLoss, 'train/lr': lr, 'train/grad_norm': norm, 'train/tokens_per_s': record.tokens_per_s });
      }
      bar.tick(1, { loss: stepLoss, lr });
      let stop = false;
      if (cfg.eval_every > 0 && step % cfg.eval_every === 0 && step < totalSteps) stop = await evaluate(step);
      if (cfg.save_every > 0 && step % cfg.save_every === 0 && lastSavedStep !== step) await save(step);
      if (opts.afterStep) await opts.afterStep(step);
      if (stop) {
        stoppedEarly = true;
        log(`train: early stop at step ${step}: ${cfg.metric} did not improve for ${cfg.patience} evaluation(s)`);
        break;
      }
    }
  } finally {
    bar.stop();
    accumulator.reset();
  }

  if (lastEvalStep !== step) await evaluate(step);
  if (lastSavedStep !== step) await save(step);
  const useBest = cfg.final === 'best' && best !== null;
  const finalStep = useBest ? (best as BestMetric).step : step;
  const finalDir = join(ckptRoot, 'final');
  await publishModel(join(ckptRoot, `checkpoint-${finalStep}`), finalDir, {
    step: finalStep,
    chosen: useBest ? `best ${cfg.metric}` : 'last step',
    best,
    total_steps: totalSteps,
  });
  await tb?.close();
  optimizer.dispose();
  const seconds = (Date.now() - started) / 1000;
  log(`train: done in ${seconds.toFixed(1)} s; final model (${useBest ? `best ${cfg.metric} @${finalStep}` : `step ${finalStep}`}) at ${finalDir}`);
  return {
    steps: step,
    totalSteps,
    stoppedEarly,
    best,
    lastDev,
    finalDir,
    finalFrom: { step: finalStep, kind: useBest ? 'best' : 'last' },
    resumedFrom,
    seconds,
  };
}
