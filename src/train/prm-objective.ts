import * as tf from '@tensorflow/tfjs';
import { batchTensors } from '../model/batch-tensors.js';
import { collateBatch, type CollatedBatch } from '../model/encode.js';
import { stepRows, type DecoderChain } from '../model/prm.js';
import type { TrainItem } from './batches.js';
import { stepLossSumRows, stepTargets, type LossConfig, type StepTargets } from './loss.js';
import type { MicroBatch } from './step.js';

/**
 * The PRM's training objective on a micro-batch: the loss on the logits at the supervised step
 * tokens, divided by the weight of the accumulation group (so summed micro-batch gradients are
 * the group's gradient).
 */

/** What the trainer needs of a model (PrmModel satisfies it). */
export interface TrainableModel {
  variables: Map<string, tf.Variable>;
  /** Logits [N,2] at the given positions only (the head runs on N rows). */
  logitsAt(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D, stepPositions: number[][]): tf.Tensor2D;
  /** The decoder as a chain of stages, for activation recomputation. */
  decoderChain(inputIds: tf.Tensor2D, attentionMask: tf.Tensor2D): DecoderChain;
  /** The head on the given rows of final hidden states. */
  headAt(hidden: tf.Tensor2D, rows: readonly number[]): tf.Tensor2D;
  headVariables(): tf.Variable[];
  trainableVariables(freeze?: { headOnly?: boolean; trainLastLayers?: number }): tf.Variable[];
}

/** A micro-batch on the host: padded ids and the targets of its step tokens. */
export interface HostBatch {
  collated: CollatedBatch;
  targets: StepTargets;
  tokens: number;
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
  return { collated, targets, tokens };
}

/** The loss sum of a host batch's supervised steps, from the model's step logits (no gradient needed). */
export function supervisedRows(model: TrainableModel, ids: tf.Tensor2D, mask: tf.Tensor2D, batch: HostBatch): tf.Tensor2D {
  return model.logitsAt(ids, mask, batch.collated.stepPositions);
}

export function prmMicroBatch(model: TrainableModel, batch: HostBatch, groupWeight: number, loss: LossConfig): MicroBatch {
  const { ids, mask } = batchTensors(batch.collated);
  const weight = Math.max(groupWeight, 1e-12);
  const lossOfRows = (rows: tf.Tensor2D) => tf.div(stepLossSumRows(rows, batch.targets.probs, loss), weight) as tf.Scalar;
  return {
    tokens: batch.tokens,
    loss: () => lossOfRows(supervisedRows(model, ids, mask, batch)),
    chain: () => {
      const decoder = model.decoderChain(ids, mask);
      const rows = stepRows(ids.shape, mask, batch.collated.stepPositions);
      return {
        chain: {
          first: decoder.first,
          stages: decoder.stages,
          loss: {
            variables: [...decoder.finalNorm.variables, ...model.headVariables()],
            run: (h: tf.Tensor) => lossOfRows(model.headAt(decoder.finalNorm.run(h), rows)),
          },
        },
        dispose: () => decoder.dispose(),
      };
    },
    dispose: () => tf.dispose([ids, mask]),
  };
}
