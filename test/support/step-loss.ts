import * as tf from '@tensorflow/tfjs';
import { rowProbabilities, stepLossSumRows, stepWeightTotal, type LossConfig, type StepTargets } from '../../src/train/loss.js';

/**
 * The trainer's loss (src/train/loss.ts stepLossSumRows on the logits rows at the step tokens)
 * from logits at every position [B, T, 2], as the torch fixtures compute it: tests check the loss
 * and its gradient with respect to all logits, so they gather the rows themselves.
 */
function rowsAt(logits: tf.Tensor3D, flatIndex: Int32Array): tf.Tensor2D {
  const [b, t, c] = logits.shape;
  return tf.gather(tf.reshape(logits, [b * t, c]), tf.tensor1d(flatIndex, 'int32')) as tf.Tensor2D;
}

export function stepLossSum(logits: tf.Tensor3D, targets: StepTargets, cfg: LossConfig): tf.Scalar {
  return tf.tidy(() => stepLossSumRows(rowsAt(logits, targets.flatIndex), targets.probs, cfg));
}

/** The masked mean: stepLossSum / stepWeightTotal. */
export function stepLoss(logits: tf.Tensor3D, targets: StepTargets, cfg: LossConfig): tf.Scalar {
  const total = stepWeightTotal(targets.probs, cfg);
  return tf.tidy(() => tf.div(stepLossSum(logits, targets, cfg), Math.max(total, 1e-12)) as tf.Scalar);
}

export function stepProbabilities(logits: tf.Tensor3D, flatIndex: Int32Array): Float32Array {
  const rows = tf.tidy(() => rowsAt(logits, flatIndex));
  try {
    return rowProbabilities(rows);
  } finally {
    rows.dispose();
  }
}

export const DEFAULT_LOSS: LossConfig = { kind: 'ce', classWeights: [1, 1] };
