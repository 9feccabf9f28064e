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

/** The summed next-token loss from final hidden states [B*T, hidden], the tied embedding as LM head. */
export function lmLossSumFromHidden(embed: tf.Variable, hiddenFlat: tf.Tensor2D, ids: tf.Tensor2D, mask: tf.Tensor2D): tf.Scalar {
  const [batch, seqLen] = ids.shape;
  return tf.tidy(() => {
    const hidden = hiddenFlat.reshape([batch, seqLen, -1]);
    const inputs = hidden.slice([0, 0, 0], [batch, seqLen - 1, -1]).reshape([batch * (seqLen - 1), -1]) as tf.Tensor2D;
    const logits = tf.matMul(inputs, embed as tf.Tensor2D, false, true);
    const targets = ids.slice([0, 1], [batch, seqLen - 1]).reshape([-1]);
    const pairMask = tf.mul(mask.slice([0, 0], [batch, seqLen - 1]), mask.slice([0, 1], [batch, seqLen - 1])).reshape([-1]).toFloat();
    const logProbs = tf.logSoftmax(logits);
    const picked = tf.sum(tf.mul(logProbs, tf.oneHot(targets.toInt(), embed.shape[0] as number)), 1);
    return tf.neg(tf.sum(tf.mul(picked, pairMask))) as tf.Scalar;
  });
}

/** The input embedding that serves as LM head; a model without one cannot take an LM objective. */
export function tiedLmHead(variables: Map<string, tf.Variable>): tf.Variable {
  const embed = variables.get('model.embed_tokens.weight');
  if (!embed) throw new Error('the model has no model.embed_tokens.weight to use as LM head');
  return embed;
}
