import * as tf from '@tensorflow/tfjs';

/**
 * The causal-LM objective, shared by LM pretraining (lm-pretrain.ts) and the auxiliary LM term
 * of PRM training (train.lm_loss_weight): position t predicts token t+1, with the input
 * embedding as LM head (tied), so no parameters are added and none are thrown away.
 */

/** Pairs (t, t+1) of real tokens in right-padded rows of these lengths: the predicted positions. */
export function predictedPairCount(lengths: Iterable<number>): number {
  let count = 0;
  for (const n of lengths) count += Math.max(0, n - 1);
  return count;
}

/**
 * log sum_j exp(logits[i, j]) per row, with a hand-written gradient (softmax(logits) * dy). tfjs
 * composes logSumExp of max, subtract, exp and sum and keeps their [N, V] tensors on the tape
 * until the backward pass; this keeps the logits alone and makes the softmax once, in the
 * backward. At Qwen's 151,936-token vocabulary each [N, V] float tensor is 0.6 GB per 1,024 tokens.
 */
const rowLogSumExp = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [logits, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
  save([logits]);
  return {
    value: tf.tidy(() => tf.logSumExp(logits, 1)),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => tf.mul(tf.softmax(saved[0]), tf.expandDims(dy, 1))),
  };
}) as (logits: tf.Tensor2D) => tf.Tensor1D;

/**
 * The summed next-token loss from final hidden states [B*T, hidden], the tied embedding as LM
 * head: per predicted position, logsumexp of the logits minus the target's logit. The target
 * logit is the hidden state dotted with the target's embedding row (a gather), not a pick from
 * the [N, V] logits through a one-hot, so the loss holds only three [N, V] tensors at its peak:
 * the logits, their softmax and its gradient (train/memory-plan.ts counts them).
 */
export function lmLossSumFromHidden(embed: tf.Variable, hiddenFlat: tf.Tensor2D, ids: tf.Tensor2D, mask: tf.Tensor2D): tf.Scalar {
  const [batch, seqLen] = ids.shape;
  return tf.tidy(() => {
    const hidden = hiddenFlat.reshape([batch, seqLen, -1]);
    const inputs = hidden.slice([0, 0, 0], [batch, seqLen - 1, -1]).reshape([batch * (seqLen - 1), -1]) as tf.Tensor2D;
    const targets = ids.slice([0, 1], [batch, seqLen - 1]).reshape([-1]).toInt();
    const pairMask = tf.mul(mask.slice([0, 0], [batch, seqLen - 1]), mask.slice([0, 1], [batch, seqLen - 1])).reshape([-1]).toFloat();
    const logNormaliser = rowLogSumExp(tf.matMul(inputs, embed as tf.Tensor2D, false, true));
    const targetLogit = tf.sum(tf.mul(inputs, tf.gather(embed, targets)), 1);
    return tf.sum(tf.mul(tf.sub(logNormaliser, targetLogit), pairMask)) as tf.Scalar;
  });
}

/** The input embedding that serves as LM head; a model without one cannot take an LM objective. */
export function tiedLmHead(variables: Map<string, tf.Variable>): tf.Variable {
  const embed = variables.get('model.embed_tokens.weight');
  if (!embed) throw new Error('the model has no model.embed_tokens.weight to use as LM head');
  return embed;
}
