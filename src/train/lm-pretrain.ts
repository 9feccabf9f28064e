import * as tf from '@tensorflow/tfjs';
import type { PrmModel } from '../model/prm.js';
import { collateBatch } from '../model/encode.js';
import { progressBar } from '../util/progress.js';
import { clipByGlobalNorm } from './gradients.js';
import { planEpoch } from './batches.js';
import { AdamW } from './optimizer.js';
import { learningRateAt, warmupStepsFromRatio } from './schedule.js';

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
export interface LmPretrainConfig {
  epochs: number;
  lr: number;
  warmup_ratio: number;
  batch_size: number;
  max_tokens_per_batch: number;
  weight_decay: number;
  max_grad_norm: number;
  /** Stop after this many optimizer steps (all epochs when absent). */
  max_steps?: number;
}

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
  const [batch, seqLen] = ids.shape;
  const maskValues = mask.dataSync();
  let count = 0;
  for (let b = 0; b < batch; b++) for (let t = 0; t + 1 < seqLen; t++) if (maskValues[b * seqLen + t] && maskValues[b * seqLen + t + 1]) count++;
  const loss = tf.tidy(() => {
    const hidden = model.hiddenStates(ids, mask).reshape([batch, seqLen, -1]);
    const inputs = hidden.slice([0, 0, 0], [batch, seqLen - 1, -1]).reshape([batch * (seqLen - 1), -1]) as tf.Tensor2D;
    const embed = model.variables.get('model.embed_tokens.weight');
    if (!embed) throw new Error('the model has no model.embed_tokens.weight');
    const logits = tf.matMul(inputs, embed as tf.Tensor2D, false, true);
    const targets = ids.slice([0, 1], [batch, seqLen - 1]).reshape([-1]);
    const pairMask = tf.mul(mask.slice([0, 0], [batch, seqLen - 1]), mask.slice([0, 1], [batch, seqLen - 1])).reshape([-1]).toFloat();
    const logProbs = tf.logSoftmax(logits);
    const picked = tf.sum(tf.mul(logProbs, tf.oneHot(targets.toInt(), embed.shape[0] as number)), 1);
    return tf.neg(tf.sum(tf.mul(picked, pairMask))) as tf.Scalar;
  });
  return { loss, count };
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
  const planOpts = { maxTokensPerBatch: cfg.max_tokens_per_batch, maxBatchSize: cfg.batch_size, seed: `${opts.seed}:lm` };
  const perEpoch = planEpoch(lengths, 0, planOpts).length;
  const total = Math.min(cfg.max_steps ?? Infinity, perEpoch * cfg.epochs);
  if (total === 0) throw new Error('LM pretraining: no sequences to train on');
  const params = decoderVariables(model);
  const optimizer = new AdamW(params, { weightDecay: cfg.weight_decay });
  const schedule = { kind: 'cosine' as const, baseLr: cfg.lr, warmupSteps: warmupStepsFromRatio(total, cfg.warmup_ratio), totalSteps: total };
  const bar = progressBar('pretrain', total, { enabled: opts.progress });
  const losses: number[] = [];
  let tokens = 0;
  let step = 0;
  try {
    for (let epoch = 0; epoch < cfg.epochs && step < total; epoch++) {
      for (const batch of planEpoch(lengths, epoch, planOpts)) {
        if (step >= total) break;
        const collated = collateBatch(batch.map((i) => ({ inputIds: opts.sequences[i], stepPositions: [] })), { padTokenId: opts.padTokenId });
        const ids = tf.tensor2d(collated.inputIds, [collated.batchSize, collated.seqLen], 'int32');
        const mask = tf.tensor2d(collated.attentionMask, [collated.batchSize, collated.seqLen], 'int32');
        let count = 0;
        const { value, grads } = tf.variableGrads(() => {
          const r = causalLmLossSum(model, ids, mask);
          count = r.count;
          return tf.div(r.loss, Math.max(1, r.count)) as tf.Scalar;
        }, params.map((p) => p.variable));
        ids.dispose();
        mask.dispose();
        const loss = (await value.data())[0];
        value.dispose();
        const ordered = params.map((p) => grads[p.variable.name]);
        const clipped = clipByGlobalNorm(ordered, cfg.max_grad_norm);
        tf.dispose(ordered);
        if (!Number.isFinite(loss) || !Number.isFinite(clipped.norm)) {
          tf.dispose(clipped.grads);
          throw new Error(`LM pretraining diverged at step ${step + 1} (loss ${loss}, gradient norm ${clipped.norm}); lower model.pretrain_lm.lr`);
        }
        optimizer.apply(clipped.grads, learningRateAt(step, schedule));
        tf.dispose(clipped.grads);
        step += 1;
        tokens += count;
        losses.push(loss);
        bar.tick(1, { loss: loss.toFixed(3) });
        if (step % LOG_EVERY === 0 || step === total) log(`pretrain: step ${step}/${total} next-token loss ${loss.toFixed(4)}`);
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
