import * as tf from '@tensorflow/tfjs';
import { batchTensors } from '../model/batch-tensors.js';
import { collateBatch, type CollatedBatch } from '../model/encode.js';
import { stepRows, type DecoderChain } from '../model/prm.js';
import type { TrainItem } from './batches.js';
import { lmLossSumFromHidden, predictedPairCount, tiedLmHead } from './lm-loss.js';
import { stepLossSumRows, stepTargets, type LossConfig, type StepTargets } from './loss.js';
import type { MicroBatch } from './step.js';

/**
 * The PRM's training objective on a micro-batch: the loss on the logits at the supervised step
 * tokens, divided by the weight of the accumulation group (so summed micro-batch gradients are
 * the group's gradient), plus, with train.lm_loss_weight, the next-token loss of the same text
 * divided by the group's predicted tokens: the LM objective keeps the decoder's reading of the
 * solutions (which result follows from which operands, which operand comes next) alive while
 * the sparse step labels teach it to compare what is written with what should be.
 */

/** The name of the auxiliary LM term among a micro-batch's loss parts. */
export const LM_LOSS_PART = 'lm';

/** What the trainer needs of a model (PrmModel satisfies it). */
export interface TrainableModel {
  variables: Map<string, tf.Variable>;
  /** Final hidden states [B*T, hidden] (differentiable). */
  hiddenStates(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D): tf.Tensor2D;
  /** Logits [N,2] at the given positions only (the head runs on N rows). */
  logitsAt(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D, stepPositions: number[][]): tf.Tensor2D;
  /** The decoder as a chain of stages, for activation recomputation; with rows, the last stage outputs those rows only. */
  decoderChain(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D, rows?: readonly number[]): DecoderChain;
  /** The head on the given rows of final hidden states. */
  headAt(hidden: tf.Tensor2D, rows: readonly number[]): tf.Tensor2D;
  /** The head on final hidden states [N, hidden] -> logits [N, 2]. */
  head(hidden: tf.Tensor2D): tf.Tensor2D;
  headVariables(): tf.Variable[];
  trainableVariables(freeze?: { headOnly?: boolean; trainLastLayers?: number }): tf.Variable[];
  /** Runs fn with training-time randomness (LoRA dropout) drawn from seed; absent: none. */
  withLoraDropout?<T>(seed: string, fn: () => T): T;
}

/** A micro-batch on the host: padded ids and the targets of its step tokens. */
export interface HostBatch {
  collated: CollatedBatch;
  targets: StepTargets;
  tokens: number;
  /** Next-token pairs (t, t+1) of real tokens: the positions the auxiliary LM loss predicts. */
  pairs: number;
}

/** The auxiliary LM term of a micro-batch: its weight and the predicted pairs of its whole group. */
export interface LmTerm {
  weight: number;
  groupPairs: number;
}

export function hostBatch(items: readonly TrainItem[], indices: readonly number[], padTokenId: number): HostBatch {
  const rows = indices.map((i) => items[i]);
  const collated = collateBatch(
    rows.map((r) => ({ inputIds: r.inputIds, stepPositions: r.stepPositions.slice(0, r.labels.length) })),
    { padSide: 'right', padTokenId },
  );
  const targets = stepTargets(collated.stepPositions, rows.map((r) => r.labels), collated.seqLen);
  let tokens = 0;
  for (const r of rows) tokens += r.inputIds.length;
  return { collated, targets, tokens, pairs: predictedPairCount(rows.map((r) => r.inputIds.length)) };
}

/** The loss sum of a host batch's supervised steps, from the model's step logits (no gradient needed). */
export function supervisedRows(model: TrainableModel, ids: tf.Tensor2D, mask: tf.Tensor2D, batch: HostBatch): tf.Tensor2D {
  return model.logitsAt(ids, mask, batch.collated.stepPositions);
}

/**
 * noiseSeed: seed of this micro-batch's LoRA dropout masks (distinct per step and micro-batch);
 * absent, the forward passes draw none.
 */
export function prmMicroBatch(model: TrainableModel, batch: HostBatch, groupWeight: number, loss: LossConfig, lm?: LmTerm, noiseSeed?: string): MicroBatch {
  const { ids, mask } = batchTensors(batch.collated);
  const weight = Math.max(groupWeight, 1e-12);
  const lossOfRows = (rows: tf.Tensor2D) => tf.div(stepLossSumRows(rows, batch.targets.probs, loss), weight) as tf.Scalar;
  const embed = lm && lm.weight > 0 ? tiedLmHead(model.variables) : null;
  const lmScale = lm ? lm.weight / Math.max(lm.groupPairs, 1) : 0;
  // The weighted LM term of the last loss computed, kept past the tape for the training log.
  let lmTerm: tf.Scalar | null = null;
  /** The whole objective from final hidden states [B*T, hidden]. */
  const lossOfHidden = (hidden: tf.Tensor2D, rows: readonly number[]) =>
    tf.tidy(() => {
      const prm = lossOfRows(model.headAt(hidden, rows));
      if (!embed) return prm;
      const term = tf.mul(lmLossSumFromHidden(embed, hidden, ids, mask), lmScale) as tf.Scalar;
      lmTerm?.dispose();
      lmTerm = tf.keep(term.clone());
      return tf.add(prm, term) as tf.Scalar;
    });
  const takeLmTerm = (): number => {
    const value = lmTerm ? lmTerm.dataSync()[0] : 0;
    lmTerm?.dispose();
    lmTerm = null;
    return value;
  };
  return {
    tokens: batch.tokens,
    loss: () => (embed ? lossOfHidden(model.hiddenStates(ids, mask), stepRows(ids.shape, mask, batch.collated.stepPositions)) : lossOfRows(supervisedRows(model, ids, mask, batch))),
    chain: () => {
      const rows = stepRows(ids.shape, mask, batch.collated.stepPositions);
      // Without the LM term only the step rows of the last layer are read: it computes no other.
      const decoder = model.decoderChain(ids, mask, embed ? undefined : rows);
      const headVariables = [...decoder.finalNorm.variables, ...model.headVariables()];
      return {
        chain: {
          first: decoder.first,
          stages: decoder.stages,
          loss: {
            variables: embed ? [...headVariables, embed] : headVariables,
            run: (h: tf.Tensor) => (embed ? lossOfHidden(decoder.finalNorm.run(h), rows) : lossOfRows(model.head(decoder.finalNorm.run(h)))),
          },
        },
        dispose: () => decoder.dispose(),
      };
    },
    takeLossParts: embed ? () => ({ [LM_LOSS_PART]: takeLmTerm() }) : undefined,
    inTraining: noiseSeed !== undefined && model.withLoraDropout ? (fn) => model.withLoraDropout!(noiseSeed, fn) : undefined,
    dispose: () => {
      tf.dispose([ids, mask]);
      lmTerm?.dispose();
      lmTerm = null;
    },
  };
}
