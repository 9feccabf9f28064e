import * as tf from '@tensorflow/tfjs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TrainConfig } from '../recipes/schema.js';
import { progressBar } from '../util/progress.js';
import { hashString, Rng } from '../util/rng.js';
import { TrainingPlan, type TrainItem } from './batches.js';
import {
  hasCheckpointDirs,
  latestValidCheckpoint,
  listCheckpoints,
  pruneCheckpoints,
  publishModel,
  readOptimizerStateInto,
  readTrainerState,
  removeStaleTemps,
  saveCheckpoint,
  type BestMetric,
  type TrainerState,
} from './checkpoints.js';
import type { DevMetrics } from './dev-metrics.js';
import { evaluateDev } from './evaluate.js';
import { stepWeightTotal, type LossConfig } from './loss.js';
import { IntervalMean, MetricsLog } from './metrics-log.js';
import { AdamW, type AdamWConfig, type NamedVariable } from './optimizer.js';
import { hostBatch, LM_LOSS_PART, prmMicroBatch, type TrainableModel } from './prm-objective.js';
import { learningRateAt, warmupStepsFromRatio, type ScheduleOptions } from './schedule.js';
import { TrainStep, type GradientReducer } from './step.js';
import { openTensorBoard, type ScalarWriter } from './tensorboard.js';
import { ShardedAdamW, type ShardCollectives } from './zero.js';

export type { TrainableModel } from './prm-objective.js';
export { evaluateDev } from './evaluate.js';

/** Writes the model (HF layout with tokenizer) into a new directory, and reads weights back. */
/** A resume that cannot continue and would have to start over (not asked for). */
export class ResumeError extends Error {
  override name = 'ResumeError';
}

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
  /**
   * With resume: when checkpoints exist but none verifies, train from step 0 (replacing them).
   * Without it that is an error: a resume never silently starts over.
   */
  restart?: boolean;
  log?: (line: string) => void;
  /** Called after every optimizer step (tests use it to stop or corrupt a run at a known step). */
  afterStep?: (step: number) => void | Promise<void>;
  progress?: boolean;
  /**
   * Data-parallel training: this worker's share of every micro-batch (indices into the global
   * micro-batch) and the cross-worker gradient sum. Absent: one process trains on everything.
   */
  parallel?: ParallelRole;
}

export interface ParallelRole {
  rank: number;
  worldSize: number;
  /** Which rows of a global micro-batch (item indices, in plan order) this worker computes. */
  shard(indices: readonly number[]): number[];
  reduce: GradientReducer;
  /** The group's collectives, for train.shard_optimizer (absent: sharding is not available). */
  collectives?: ShardCollectives;
  /** Waits until every worker reaches this point (checkpoint writes are rank 0's; the others wait). */
  barrier(label: string): Promise<void>;
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
    // The plan's algorithm: a checkpoint planned otherwise (micro-batches cut before steps) does not resume here.
    'rows-per-step',
    seed,
    cfg.epochs,
    cfg.max_steps ?? '',
    cfg.grad_accumulation,
    cfg.batch_size,
    cfg.max_tokens_per_batch,
    // Only when off, so runs planned before the option existed resume with the same fingerprint.
    ...(cfg.group_by_length ? [] : ['ungrouped']),
    items.length,
    items.map((it) => `${it.id}:${it.inputIds.length}:${it.labels.join('')}`).join('|'),
  ];
  return hashString(parts.join('/')).toString(16);
}

function isImprovement(metric: TrainConfig['metric'], value: number | null, best: BestMetric | null): value is number {
  if (value === null || !Number.isFinite(value)) return false;
  if (!best) return true;
  return HIGHER_IS_BETTER[metric] ? value > best.value : value < best.value;
}

/** Fewest milliseconds between two console loss lines (HF's logger prints at most every logging_steps). */
const LOG_LINE_MIN_MS = 5000;

function fmt(x: number | null | undefined, digits = 4): string {
  return x === null || x === undefined ? 'n/a' : Number(x).toPrecision(digits);
}

/**
 * AdamW for the run: sharded over the workers when train.shard_optimizer asks for it and there
 * is more than one (zero.ts), else whole in this process.
 */
function makeOptimizer(
  params: readonly NamedVariable[],
  adamw: Partial<AdamWConfig>,
  mode: TrainConfig['shard_optimizer'],
  parallel: ParallelRole | undefined,
  log: (line: string) => void,
): AdamW | ShardedAdamW {
  if (mode === undefined || mode === 'none') return new AdamW(params, adamw);
  if (!parallel || parallel.worldSize < 2) {
    log(`train: train.shard_optimizer ${mode} has no effect with one worker (nothing to shard): every moment and gradient is this process's`);
    return new AdamW(params, adamw);
  }
  if (!parallel.collectives) throw new Error(`train.shard_optimizer ${mode}: this data-parallel setup has no collectives to shard with`);
  const sharded = new ShardedAdamW(params, adamw, parallel.collectives, mode);
  const total = sharded.partition.total;
  const [start, end] = sharded.partition.rangeOf(parallel.rank);
  log(
    `train: train.shard_optimizer ${mode} (ZeRO stage ${sharded.stage}): worker ${parallel.rank} of ${parallel.worldSize} holds the AdamW moments of ` +
      `${sharded.ownedValues} of ${total} parameters (flat slice [${start}, ${end}) across ${sharded.segments.length} tensor(s))` +
      (sharded.stage === 2 ? '; gradients reduce-scattered as the backward pass finishes them' : ''),
  );
  return sharded;
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
  const parallel = opts.parallel;
  // Rank 0 writes every file of the run; the other workers compute and wait at the saves.
  const writes = !parallel || parallel.rank === 0;
  const ckptRoot = join(opts.outDir, 'checkpoints');
  if (writes) {
    mkdirSync(ckptRoot, { recursive: true });
    const removed = await removeStaleTemps(ckptRoot);
    if (removed.length > 0) log(`train: removed unfinished checkpoint writes: ${removed.join(', ')}`);
  }

  const lengths = opts.train.map((it) => it.inputIds.length);
  const batchOpts = { maxTokensPerBatch: cfg.max_tokens_per_batch, maxBatchSize: cfg.batch_size, seed, groupByLength: cfg.group_by_length };
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
  const adamw = { beta1: cfg.beta1, beta2: cfg.beta2, eps: cfg.eps, weightDecay: cfg.weight_decay, noDecayPatterns: cfg.no_decay };
  const optimizer = makeOptimizer(params, adamw, cfg.shard_optimizer, parallel, log);
  const trainStep = new TrainStep(params, optimizer, { maxGradNorm: cfg.max_grad_norm, recompute: cfg.recompute }, parallel?.reduce);

  const metrics = new MetricsLog(join(opts.outDir, 'metrics.jsonl'));
  let step = 0;
  let best: BestMetric | null = null;
  let evalsWithoutImprovement = 0;
  let elapsedBefore = 0;
  let tokensSeen = 0;
  let resumedFrom: number | null = null;

  if (opts.resume) {
    const latest = await latestValidCheckpoint(ckptRoot, log);
    if (latest) {
      const state = await readTrainerState(latest.dir);
      if (state.plan_fingerprint !== fingerprint) {
        throw new Error(
          `cannot resume from ${latest.dir}: it was trained on other data or batch settings (plan fingerprint ${state.plan_fingerprint}, now ${fingerprint})`,
        );
      }
      await opts.io.restore(latest.dir);
      await readOptimizerStateInto(latest.dir, optimizer);
      step = plan.stepOf(state.cursor);
      if (step !== state.global_step) throw new Error(`${latest.dir}: cursor points at step ${step} but global_step is ${state.global_step}`);
      best = state.best;
      evalsWithoutImprovement = state.evals_without_improvement;
      elapsedBefore = state.elapsed_s;
      tokensSeen = state.tokens_seen;
      resumedFrom = step;
      if (writes) metrics.truncateAfter(step);
      log(`train: resuming from ${latest.dir} (step ${step}/${totalSteps}, epoch ${state.cursor.epoch}, batch ${state.cursor.batch})`);
    } else if (await hasCheckpointDirs(ckptRoot)) {
      if (!opts.restart) {
        throw new ResumeError(
          `cannot resume: no checkpoint under ${ckptRoot} verifies (see the warnings above), and starting over would replace them and metrics.jsonl. ` +
            'Pass --restart to train from step 0 anyway, or restore a checkpoint',
        );
      }
      log(`train: no checkpoint under ${ckptRoot} verifies; --restart: training from step 0`);
    }
  }
  if (resumedFrom === null && writes) metrics.truncateAfter(-1);

  const microPerStep = plan.steps.reduce((a, st) => a + st.end - st.start, 0) / Math.max(1, totalSteps);
  const tokensPerStep = plan.steps.reduce((a, _, k) => a + plan.microBatches(k).reduce((t, mb) => t + mb.length * Math.max(...mb.map((i) => lengths[i])), 0), 0) / Math.max(1, totalSteps);
  log(
    `train: ${opts.train.length} items, ${opts.dev?.length ?? 0} dev items, ${plan.epochs.length} epoch(s), ` +
      `${totalSteps} optimizer steps of ${plan.rowsPerStep} rows (batch_size ${cfg.batch_size} x grad_accumulation ${cfg.grad_accumulation}; ` +
      `~${Math.round(tokensPerStep)} padded tokens in ${microPerStep.toFixed(1)} micro-batches of <= ${cfg.max_tokens_per_batch} tokens a step), ${nParams} trainable parameters, ` +
      `lr ${cfg.lr} ${cfg.schedule} (warmup ${schedule.warmupSteps}), loss ${loss.kind}` +
      (cfg.recompute ? ', activation recomputation' : '') +
      (parallel ? `, worker ${parallel.rank} of ${parallel.worldSize}` : ''),
  );

  const tb: ScalarWriter | null = writes ? await openTensorBoard(join(opts.outDir, 'tensorboard'), log) : null;
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
    if (writes) {
      await saveCheckpoint(ckptRoot, stateAt(s), optimizer, (dir) => opts.io.save(dir));
      await pruneCheckpoints(ckptRoot, cfg.keep_last, best?.step);
    } else if (optimizer instanceof ShardedAdamW) {
      // Rank 0 assembles the moments from every worker's slices, entry by entry, as it writes them.
      await optimizer.contributeState();
    }
    lastSavedStep = s;
    await parallel?.barrier(`checkpoint-${s}`);
  };
  const lastGood = async () => {
    const all = await listCheckpoints(ckptRoot);
    return all.length ? `the last good checkpoint is ${all[all.length - 1].dir} (step ${all[all.length - 1].step})` : 'no checkpoint had been written yet';
  };

  /** Dev evaluation at step s; returns true when early stopping says stop. */
  const evaluate = async (s: number): Promise<boolean> => {
    if (!opts.dev || opts.dev.length === 0) return false;
    lastEvalStep = s;
    // Every worker evaluates the whole dev set (the weights are equal), so each one takes the
    // same early-stopping and best-checkpoint decisions without a message between them.
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
    if (writes) {
      metrics.write({ kind: 'dev', step: s, ...dev, best: best?.value ?? null, improved });
      tb?.scalars(s, { 'dev/loss': dev.dev_loss, 'dev/step_accuracy': dev.step_accuracy, 'dev/step_auroc': dev.step_auroc, 'dev/first_error_f1': dev.first_error_f1 });
      log(
        `dev @${s}: loss ${fmt(dev.dev_loss)} step_acc@0.5 ${fmt(dev.step_accuracy)} auroc ${fmt(dev.step_auroc)} first_error_f1 ${fmt(dev.first_error_f1)} (threshold ${fmt(dev.first_error_threshold, 3)})` +
          (improved ? ` (best ${cfg.metric})` : ` (best ${fmt(best?.value)} @${best?.step})`),
      );
    }
    if (improved) await save(s);
    return cfg.patience > 0 && evalsWithoutImprovement >= cfg.patience;
  };

  const barShown = Boolean(opts.progress) && writes && !process.env.PRMKIT_NO_PROGRESS;
  const bar = progressBar('train', totalSteps, { enabled: barShown });
  let lastLogLine = 0;
  if (step > 0) bar.tick(step);
  const interval = new IntervalMean();
  let stoppedEarly = false;
  try {
    while (step < totalSteps) {
      const t0 = Date.now();
      const groups = plan.microBatches(step);
      const globalHosts = groups.map((indices) => hostBatch(opts.train, indices, opts.padTokenId));
      // The group weight is the global one (every worker's rows), so the summed gradient of all
      // workers equals the single-process gradient of the same global batch.
      const groupWeight = globalHosts.reduce((a, h) => a + stepWeightTotal(h.targets.probs, loss), 0);
      const stepTokens = globalHosts.reduce((a, h) => a + h.tokens, 0);
      const hosts = parallel
        ? groups.map((indices) => parallel.shard(indices)).filter((indices) => indices.length > 0).map((indices) => hostBatch(opts.train, indices, opts.padTokenId))
        : globalHosts;
      const lm = cfg.lm_loss_weight > 0 ? { weight: cfg.lm_loss_weight, groupPairs: globalHosts.reduce((a, h) => a + h.pairs, 0) } : undefined;
      const micro = hosts.map((h, k) => prmMicroBatch(opts.model, h, groupWeight, loss, lm, `${seed}:step${step}:micro${k}`));
      const lr = learningRateAt(step, schedule);
      const result = await trainStep.run(micro, lr, lm ? [LM_LOSS_PART] : [], { globalMicroBatches: groups.length });
      const { loss: stepLoss, gradNorm: norm } = result;
      if (!result.applied) {
        const cursor = plan.cursorAt(step);
        if (writes) metrics.write({ kind: 'train', step: step + 1, loss: stepLoss, lr, grad_norm: norm, diverged: true });
        throw new TrainingDivergedError(
          `training stopped: ${!Number.isFinite(stepLoss) ? `loss is ${stepLoss}` : `gradient norm is ${norm}`} at optimizer step ${step + 1} ` +
            `(epoch ${cursor.epoch}, micro-batch ${cursor.batch}); no update was applied. ${await lastGood()}. ` +
            'Lower train.lr, check the data, or resume from that checkpoint.',
        );
      }
      step++;
      tokensSeen += stepTokens;
      const seconds = (Date.now() - t0) / 1000;
      // With the auxiliary LM term, `loss` is the whole objective; `step_loss` is the part the dev
      // loss measures, so the two curves compare.
      const lmPart = result.lossParts[LM_LOSS_PART];
      const parts: Record<string, number> = lmPart === undefined ? {} : { step_loss: stepLoss - lmPart, lm_loss: lmPart };
      const collective: Record<string, number> = parallel ? { collective_s: result.collectiveSeconds } : {};
      interval.add({ loss: stepLoss, ...parts, grad_norm: norm, tokens_per_s: stepTokens / Math.max(seconds, 1e-6), ...collective }, stepTokens);
      if (writes && (step % cfg.log_every === 0 || step === 1 || step === totalSteps)) {
        const { means, steps: covered } = interval.take();
        const record = {
          kind: 'train',
          step,
          epoch: plan.steps[step - 1].epoch,
          // Tokens-weighted means over the steps since the previous record (`steps` of them).
          loss: means.loss,
          ...(lmPart === undefined ? {} : { step_loss: means.step_loss, lm_loss: means.lm_loss }),
          grad_norm: means.grad_norm,
          tokens_per_s: means.tokens_per_s,
          // Data-parallel runs: seconds a step spent in the workers' collectives (rank 0's).
          ...(parallel ? { collective_s: means.collective_s } : {}),
          steps: covered,
          last_loss: stepLoss,
          lr,
          tokens: stepTokens,
          rss_mb: Math.round(process.memoryUsage().rss / 1048576),
          num_tensors: tf.memory().numTensors,
        };
        metrics.write(record);
        const lmScalars: Record<string, number> = lmPart === undefined ? {} : { 'train/step_loss': means.step_loss, 'train/lm_loss': means.lm_loss };
        tb?.scalars(step, { 'train/loss': record.loss, ...lmScalars, 'train/lr': lr, 'train/grad_norm': record.grad_norm, 'train/tokens_per_s': record.tokens_per_s });
      }
      bar.tick(1, { loss: stepLoss, lr, 'tokens/s': Math.round(stepTokens / Math.max(seconds, 1e-6)) });
      if (!barShown && writes && (step % cfg.log_every === 0 || step === totalSteps) && (Date.now() - lastLogLine >= LOG_LINE_MIN_MS || step === totalSteps)) {
        // Without a progress bar (PRMKIT_NO_PROGRESS, --no-progress) the loss still reaches the console, throttled.
        lastLogLine = Date.now();
        log(`train: step ${step}/${totalSteps} loss ${fmt(stepLoss)} lr ${fmt(lr, 3)} ${Math.round(stepTokens / Math.max(seconds, 1e-6))} tokens/s`);
      }
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
  }

  if (lastEvalStep !== step) await evaluate(step);
  if (lastSavedStep !== step) await save(step);
  const useBest = cfg.final === 'best' && best !== null;
  const finalStep = useBest ? (best as BestMetric).step : step;
  const finalDir = join(ckptRoot, 'final');
  if (writes) {
    await publishModel(join(ckptRoot, `checkpoint-${finalStep}`), finalDir, {
      step: finalStep,
      chosen: useBest ? `best ${cfg.metric}` : 'last step',
      best,
      total_steps: totalSteps,
    });
  }
  await parallel?.barrier('final');
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
