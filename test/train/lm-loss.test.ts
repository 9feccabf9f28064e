import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { defaultBackend, selectBackend } from '../../src/backend/backend.js';
import { Rng } from '../../src/util/rng.js';
import { lmLossSumFromHidden } from '../../src/train/lm-loss.js';
import { LM_LOSS_VOCAB_TENSORS } from '../../src/train/memory-plan.js';

/**
 * The causal-LM loss (pretraining and the auxiliary term of PRM training): its value against a
 * float64 host computation, its gradients against autodiff of the textbook form (log-softmax
 * picked through a one-hot), and its peak memory against the memory plan's count.
 */

const BATCH = 2;
const SEQ = 33;
// A narrow hidden size, so the [vocabulary, hidden] tensors (the embedding's gradient) weigh
// little beside the [tokens, vocabulary] ones whose count the memory test measures.
const HIDDEN = 2;
const VOCAB = 3000;
const LENGTHS = [33, 20]; // the second row is right-padded

function problem(seed: number) {
  const rng = new Rng(seed);
  const hidden = Float32Array.from({ length: BATCH * SEQ * HIDDEN }, () => rng.normal());
  const embed = Float32Array.from({ length: VOCAB * HIDDEN }, () => 0.5 * rng.normal());
  const ids = Int32Array.from({ length: BATCH * SEQ }, (_, i) => (i % SEQ < LENGTHS[Math.floor(i / SEQ)] ? rng.int(0, VOCAB - 1) : 0));
  const mask = Int32Array.from({ length: BATCH * SEQ }, (_, i) => (i % SEQ < LENGTHS[Math.floor(i / SEQ)] ? 1 : 0));
  return { hidden, embed, ids, mask };
}

/** The loss summed over real (t, t+1) pairs, in float64 on the host. */
function hostLoss(p: ReturnType<typeof problem>): number {
  let total = 0;
  for (let b = 0; b < BATCH; b++) {
    for (let t = 0; t + 1 < LENGTHS[b]; t++) {
      const h = p.hidden.subarray((b * SEQ + t) * HIDDEN, (b * SEQ + t + 1) * HIDDEN);
      const logits = Array.from({ length: VOCAB }, (_, v) => h.reduce((a, x, k) => a + x * p.embed[v * HIDDEN + k], 0));
      const max = Math.max(...logits);
      const lse = max + Math.log(logits.reduce((a, l) => a + Math.exp(l - max), 0));
      total += lse - logits[p.ids[b * SEQ + t + 1]];
    }
  }
  return total;
}

/** The textbook form the hand-written gradient replaces. */
function oneHotLoss(embed: tf.Variable, hiddenFlat: tf.Tensor2D, ids: tf.Tensor2D, mask: tf.Tensor2D): tf.Scalar {
  return tf.tidy(() => {
    const inputs = hiddenFlat.reshape([BATCH, SEQ, HIDDEN]).slice([0, 0, 0], [BATCH, SEQ - 1, HIDDEN]).reshape([-1, HIDDEN]) as tf.Tensor2D;
    const logProbs = tf.logSoftmax(tf.matMul(inputs, embed as tf.Tensor2D, false, true));
    const picked = tf.sum(tf.mul(logProbs, tf.oneHot(ids.slice([0, 1], [BATCH, SEQ - 1]).reshape([-1]).toInt(), VOCAB)), 1);
    const pairMask = tf.mul(mask.slice([0, 0], [BATCH, SEQ - 1]), mask.slice([0, 1], [BATCH, SEQ - 1])).reshape([-1]).toFloat();
    return tf.neg(tf.sum(tf.mul(picked, pairMask))) as tf.Scalar;
  });
}

function maxRelativeDiff(a: Float32Array, b: Float32Array): number {
  const scale = a.reduce((m, x) => Math.max(m, Math.abs(x)), 0) || 1;
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0) / scale;
}

describe('train/lm-loss: the next-token loss with the tied embedding as LM head', function () {
  this.timeout(120_000);
  before(async () => {
    await selectBackend(defaultBackend(), { log: () => {} });
  });

  const tensors = (p: ReturnType<typeof problem>) => ({
    hidden: tf.variable(tf.tensor2d(p.hidden, [BATCH * SEQ, HIDDEN])),
    embed: tf.variable(tf.tensor2d(p.embed, [VOCAB, HIDDEN])),
    ids: tf.tensor2d(p.ids, [BATCH, SEQ], 'int32'),
    mask: tf.tensor2d(p.mask, [BATCH, SEQ], 'int32'),
  });

  it('sums logsumexp minus the target logit over real pairs (float64 reference)', () => {
    const p = problem(3);
    const t = tensors(p);
    const before = tf.memory().numTensors;
    const value = tf.tidy(() => lmLossSumFromHidden(t.embed, t.hidden, t.ids, t.mask).dataSync()[0]);
    expect(tf.memory().numTensors).to.equal(before);
    const reference = hostLoss(p);
    expect(Math.abs(value - reference) / reference).to.be.below(1e-5);
    tf.dispose(Object.values(t));
  });

  it('has the gradients of the one-hot form, for the hidden states and the embedding', () => {
    const t = tensors(problem(4));
    const gradsOf = (f: typeof oneHotLoss) => {
      const { value, grads } = tf.variableGrads(() => f(t.embed, t.hidden, t.ids, t.mask), [t.hidden, t.embed]);
      const out = { value: value.dataSync()[0], hidden: grads[t.hidden.name].dataSync() as Float32Array, embed: grads[t.embed.name].dataSync() as Float32Array };
      tf.dispose([value, ...Object.values(grads)]);
      return out;
    };
    const reference = gradsOf(oneHotLoss);
    const before = tf.memory().numTensors;
    const lean = gradsOf(lmLossSumFromHidden);
    expect(tf.memory().numTensors, 'tensors after the gradients').to.equal(before);
    expect(Math.abs(lean.value - reference.value) / reference.value).to.be.below(1e-5);
    expect(maxRelativeDiff(reference.hidden, lean.hidden)).to.be.below(1e-5);
    expect(maxRelativeDiff(reference.embed, lean.embed)).to.be.below(1e-5);
    // The padded row's positions past its length get no gradient.
    const padded = lean.hidden.subarray((SEQ + LENGTHS[1]) * HIDDEN, 2 * SEQ * HIDDEN);
    expect(padded.every((x) => x === 0)).to.equal(true);
    tf.dispose(Object.values(t));
  });

  it(`holds ${LM_LOSS_VOCAB_TENSORS} [tokens, vocabulary] tensors at its peak (the memory plan's count), under half the one-hot form's`, async () => {
    const t = tensors(problem(5));
    const pairsByVocab = BATCH * (SEQ - 1) * VOCAB * 4;
    const peakOf = async (f: typeof oneHotLoss) => {
      const start = tf.memory().numBytes;
      const info = await tf.profile(() => {
        const { value, grads } = tf.variableGrads(() => f(t.embed, t.hidden, t.ids, t.mask), [t.hidden, t.embed]);
        tf.dispose([value, ...Object.values(grads)]);
      });
      return (info.peakBytes - start) / pairsByVocab;
    };
    const lean = await peakOf(lmLossSumFromHidden);
    const oneHot = await peakOf(oneHotLoss);
    console.log(`      peak in [tokens, vocabulary] tensors: ${lean.toFixed(2)} (one-hot form ${oneHot.toFixed(2)})`);
    // The [tokens, hidden] and [vocabulary, hidden] tensors add a few percent of one at this size.
    expect(lean).to.be.within(LM_LOSS_VOCAB_TENSORS, LM_LOSS_VOCAB_TENSORS + 0.25);
    expect(oneHot).to.be.above(2 * lean);
    tf.dispose(Object.values(t));
  });
});
