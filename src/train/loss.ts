import * as tf from '@tensorflow/tfjs';

/**
 * The PRM training loss, on step-token positions only. Logits [B,T,2] are flattened and the
 * step positions gathered, so padding and non-step tokens never enter the graph.
 *
 * With p the target probability that a step is correct (a hard label is 0 or 1; a soft label
 * any value in [0,1]), s = softmax(logits), q = s[1] and class weights (w0, w1), each position i
 * has the weight  omega_i = w0 (1 - p_i) + w1 p_i  and the loss
 *   ce:  -(w0 (1 - p) log s0 + w1 p log s1)      (2-class cross-entropy against [1-p, p])
 *   bce: omega * -(p log q + (1 - p) log(1 - q))  (logs clamped at -100 as torch's BCELoss)
 *   mse: omega * (q - p)^2
 * and the batch loss is sum_i loss_i / sum_i omega_i. For hard labels and ce this is exactly
 * torch's F.cross_entropy(logits, y, weight=w). For two classes bce equals ce up to the clamp
 * (both are the log-likelihood of the same Bernoulli); it is offered because recipes ported
 * from BCE-trained PRMs name it.
 */
export type LossKind = 'ce' | 'bce' | 'mse';

export interface LossConfig {
  kind: LossKind;
  /** [w0, w1]: the weight of the "wrong step" and of the "correct step" class. */
  classWeights: [number, number];
}


/** Which logits rows to read and what they should say, for one padded batch. */
export interface StepTargets {
  /** b * seqLen + position of every supervised step token, in batch order. */
  flatIndex: Int32Array;
  /** Target probability of "correct" per supervised position. */
  probs: Float32Array;
}

/**
 * Targets for a collated batch: `stepPositions[b]` are the step-token positions of row b in the
 * padded batch and `labels[b]` its labels; only the first labels[b].length steps are supervised.
 */
export function stepTargets(stepPositions: readonly (readonly number[])[], labels: readonly (readonly number[])[], seqLen: number): StepTargets {
  if (stepPositions.length !== labels.length) {
    throw new Error(`stepTargets: ${stepPositions.length} rows of positions but ${labels.length} rows of labels`);
  }
  const index: number[] = [];
  const probs: number[] = [];
  labels.forEach((row, b) => {
    const positions = stepPositions[b];
    if (row.length > positions.length) {
      throw new Error(`stepTargets: row ${b} has ${row.length} labels but only ${positions.length} step tokens`);
    }
    row.forEach((p, j) => {
      if (!(p >= 0 && p <= 1)) throw new Error(`stepTargets: row ${b} step ${j} has label ${p}, expected a number in [0,1]`);
      const pos = positions[j];
      if (pos < 0 || pos >= seqLen) throw new Error(`stepTargets: row ${b} step ${j} position ${pos} outside [0,${seqLen})`);
      index.push(b * seqLen + pos);
      probs.push(p);
    });
  });
  return { flatIndex: Int32Array.from(index), probs: Float32Array.from(probs) };
}

/** sum_i omega_i: the denominator of the masked mean (computed on the host so accumulation can share it). */
export function stepWeightTotal(probs: ArrayLike<number>, cfg: LossConfig): number {
  const [w0, w1] = cfg.classWeights;
  let total = 0;
  for (let i = 0; i < probs.length; i++) total += w0 * (1 - probs[i]) + w1 * probs[i];
  return total;
}

/**
 * The same sum from logits already gathered at the supervised positions, [N,2] in target order
 * (what PrmModel.logitsAt returns: the head then runs on N rows instead of B*T).
 */
export function stepLossSumRows(rows: tf.Tensor2D, probs: Float32Array, cfg: LossConfig): tf.Scalar {
  if (rows.shape[0] !== probs.length) throw new Error(`stepLossSumRows: ${rows.shape[0]} logit rows for ${probs.length} targets`);
  if (probs.length === 0) return tf.scalar(0);
  return tf.tidy(() => {
    const logp = tf.logSoftmax(rows, -1);
    const [logp0, logp1] = tf.split(logp, 2, 1).map((x) => tf.reshape(x, [-1]));
    const p = tf.tensor1d(probs, 'float32');
    const oneMinusP = tf.sub(1, p);
    const [w0, w1] = cfg.classWeights;
    switch (cfg.kind) {
      case 'ce':
        return tf.neg(tf.sum(tf.add(tf.mul(tf.mul(oneMinusP, w0), logp0), tf.mul(tf.mul(p, w1), logp1)))) as tf.Scalar;
      case 'bce': {
        const omega = tf.add(tf.mul(oneMinusP, w0), tf.mul(p, w1));
        const logq = tf.maximum(logp1, -100);
        const log1mq = tf.maximum(logp0, -100);
        const nll = tf.neg(tf.add(tf.mul(p, logq), tf.mul(oneMinusP, log1mq)));
        return tf.sum(tf.mul(omega, nll)) as tf.Scalar;
      }
      case 'mse': {
        const omega = tf.add(tf.mul(oneMinusP, w0), tf.mul(p, w1));
        const q = tf.exp(logp1);
        return tf.sum(tf.mul(omega, tf.square(tf.sub(q, p)))) as tf.Scalar;
      }
      default: {
        const never: never = cfg.kind;
        throw new Error(`unknown loss kind ${String(never)}`);
      }
    }
  });
}

/** P(correct) from gathered logit rows [N,2]. */
export function rowProbabilities(rows: tf.Tensor2D): Float32Array {
  if (rows.shape[0] === 0) return new Float32Array(0);
  const scores = tf.tidy(() => tf.reshape(tf.slice(tf.softmax(rows, -1), [0, 1], [-1, 1]), [-1]));
  const values = scores.dataSync() as Float32Array;
  scores.dispose();
  return values;
}

