import * as tf from '@tensorflow/tfjs';
import { batchTensors } from '../model/batch-tensors.js';
import { planEpoch, type TrainItem } from './batches.js';
import { devMetrics, type DevMetrics } from './dev-metrics.js';
import { rowProbabilities, stepLossSumRows, stepWeightTotal, type LossConfig } from './loss.js';
import { hostBatch, supervisedRows, type TrainableModel } from './prm-objective.js';

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
    const batch = hostBatch(items, indices, cfg.padTokenId);
    const { sum, probs } = tf.tidy(() => {
      const { ids, mask } = batchTensors(batch.collated);
      const rows = supervisedRows(model, ids, mask, batch);
      return { sum: stepLossSumRows(rows, batch.targets.probs, cfg.loss).dataSync()[0], probs: rowProbabilities(rows) };
    });
    lossSum += sum;
    weight += stepWeightTotal(batch.targets.probs, cfg.loss);
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
