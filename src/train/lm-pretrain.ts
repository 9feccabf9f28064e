import * as tf from '@tensorflow/tfjs';
import type { PrmModel } from '../model/prm.js';
import { batchTensors } from '../model/batch-tensors.js';
import { collateBatch } from '../model/encode.js';
import { progressBar } from '../util/progress.js';
import { planEpochSteps } from './batches.js';
import { AdamW } from './optimizer.js';
import { learningRateAt, warmupStepsFromRatio } from './schedule.js';
import { TrainStep, type MicroBatch } from './step.js';
import { lmLossSumFromHidden, predictedPairCount, tiedLmHead } from './lm-loss.js';
import type { LmPretrainConfig } from '../recipes/schema.js';

/**
 * Causal-LM pretraining of a PRM's decoder on unlabelled text, before PRM training.
 *
 * Real PRMs start from an instruct LM that can already do the arithmetic it is asked to check.
 * A PRM trained from scratch on step labels alone has to discover it from a sparse, XOR-like
 * target (is "a op b = c" consistent?), which a small model does not find in minutes; predicting
 * the next token of the solutions themselves teaches it how results follow from operands. The
 * LM head is the input embedding transposed (tied, so no parameters are added and none have to
 * be thrown away); the PRM head is left untouched.
 */
export type { LmPretrainConfig } from '../recipes/schema.js';

export interface LmPretrainOptions {
  model: PrmModel;
  /** Token ids of each training text (the same encoding the PRM will read). */
  sequences: readonly Int32Array[];
  config: LmPretrainConfig;
  padTokenId: number;
  seed: number | string;
  log?: (line: string) => void;
  progress?: boolean;
}

export interface LmPretrainResult {
  steps: number;
  tokens: number;
  /** Mean next-token loss of the first and of the last tenth of the steps. */
  first_loss: number;
  last_loss: number;
  seconds: number;
}

const LOG_EVERY = 50;

/**
 * Next-token cross-entropy summed over the real (non-padding) positions of a batch, and the
 * number of positions. Position t predicts token t+1; a pair counts when both are real tokens.
 */
export function causalLmLossSum(model: PrmModel, ids: tf.Tensor2D, mask: tf.Tensor2D): { loss: tf.Scalar; count: number } {
  const count = predictedPairs(mask);
  return { loss: tf.tidy(() => lmLossSumFromHidden(tiedLmHead(model.variables), model.hiddenStates(ids, mask), ids, mask)), count };
}

/** Pairs (t, t+1) of real tokens of a right-padded batch, from its mask. */
function predictedPairs(mask: tf.Tensor2D): number {
  const [batch, seqLen] = mask.shape;
  const maskValues = mask.dataSync();
  const lengths: number[] = [];
  for (let b = 0; b < batch; b++) {
    let n = 0;
    for (let t = 0; t < seqLen; t++) n += maskValues[b * seqLen + t] ? 1 : 0;
    lengths.push(n);
  }
  return predictedPairCount(lengths);
}

/** One batch of LM pretraining as a micro-batch of the one training step (mean loss over its pairs). */
/** One micro-batch of an optimizer step whose predicted pairs (over all its micro-batches) number `stepPairs`. */
function lmMicroBatch(model: PrmModel, sequences: readonly Int32Array[], padTokenId: number, stepPairs: number): MicroBatch & { pairs: number } {
  const collated = collateBatch(sequences.map((s) => ({ inputIds: s, stepPositions: [] })), { padTokenId });
  const { ids, mask } = batchTensors(collated);
  const pairs = predictedPairCount(sequences.map((s) => s.length));
  const norm = Math.max(1, stepPairs);
  const embed = tiedLmHead(model.variables);
  return {
    pairs,
    tokens: pairs,
    loss: () => tf.div(lmLossSumFromHidden(embed, model.hiddenStates(ids, mask), ids, mask), norm) as tf.Scalar,
    chain: () => {
      const decoder = model.decoderChain(ids, mask);
      return {
        chain: {
          first: decoder.first,
          stages: decoder.stages,
          loss: {
            variables: [...decoder.finalNorm.variables, embed],
            run: (h: tf.Tensor) => tf.div(lmLossSumFromHidden(embed, decoder.finalNorm.run(h), ids, mask), norm) as tf.Scalar,
          },
        },
        dispose: () => decoder.dispose(),
      };
    },
    dispose: () => tf.dispose([ids, mask]),
  };
}

/** The decoder's variables (embedding included; the PRM head is not part of an LM). */
function decoderVariables(model: PrmModel): { name: string; variable: tf.Variable }[] {
  return [...model.variables]
    .filter(([name]) => !name.startsWith('score.'))
    .map(([name, variable]) => ({ name, variable }));
}

export async function pretrainCausalLm(opts: LmPretrainOptions): Promise<LmPretrainResult> {
  const { model, config: cfg } = opts;
  const log = opts.log ?? (() => {});
  const started = performance.now();
  const lengths = opts.sequences.map((s) => s.length);
  // batch_size rows an optimizer step, as in PRM training; the token cap only splits a step into micro-batches.
  const planOpts = { maxTokensPerBatch: cfg.max_tokens_per_batch, maxBatchSize: cfg.batch_size, rowsPerStep: cfg.batch_size, seed: `${opts.seed}:lm` };
  const perEpoch = planEpochSteps(lengths, 0, planOpts).length;
  const total = Math.min(cfg.max_steps ?? Infinity, perEpoch * cfg.epochs);
  if (total === 0) throw new Error('LM pretraining: no sequences to train on');
  const params = decoderVariables(model);
  const optimizer = new AdamW(params, { weightDecay: cfg.weight_decay });
  const trainStep = new TrainStep(params, optimizer, { maxGradNorm: cfg.max_grad_norm, recompute: cfg.recompute });
  const schedule = { kind: 'cosine' as const, baseLr: cfg.lr, warmupSteps: warmupStepsFromRatio(total, cfg.warmup_ratio), totalSteps: total };
  const bar = progressBar('pretrain', total, { enabled: opts.progress });
  const losses: number[] = [];
  let tokens = 0;
  let step = 0;
  try {
    for (let epoch = 0; epoch < cfg.epochs && step < total; epoch++) {
      for (const batches of planEpochSteps(lengths, epoch, planOpts)) {
        if (step >= total) break;
        const stepPairs = predictedPairCount(batches.flat().map((i) => lengths[i]));
        const micro = batches.map((batch) => lmMicroBatch(model, batch.map((i) => opts.sequences[i]), opts.padTokenId, stepPairs));
        const result = await trainStep.run(micro, learningRateAt(step, schedule));
        if (!result.applied) {
          throw new Error(`LM pretraining diverged at step ${step + 1} (loss ${result.loss}, gradient norm ${result.gradNorm}); lower model.pretrain_lm.lr`);
        }
        step += 1;
        tokens += stepPairs;
        losses.push(result.loss);
        bar.tick(1, { loss: result.loss.toFixed(3) });
        if (step % LOG_EVERY === 0 || step === total) log(`pretrain: step ${step}/${total} next-token loss ${result.loss.toFixed(4)}`);
      }
    }
  } finally {
    bar.stop();
    optimizer.dispose();
  }
  const tenth = Math.max(1, Math.floor(losses.length / 10));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { steps: step, tokens, first_loss: mean(losses.slice(0, tenth)), last_loss: mean(losses.slice(-tenth)), seconds: (performance.now() - started) / 1000 };
}
