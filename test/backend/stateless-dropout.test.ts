/**
 * LoRA's dropout on the native backend without the fused kernels (the GPU build, train.kernels:
 * eager): masks from TensorFlow's stateless generator. Native backend only.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { selectBackend } from '../../src/backend/backend.js';
import { statelessDropout, statelessUniform } from '../../src/backend/kernels/stateless-dropout.js';
import { nativeBackendsHere } from './native-probe.js';
import { dropoutCounts } from '../support/dropout.js';

describe('backend: dropout from TensorFlow\'s stateless generator (native, eager kernels)', function () {
  before(async function () {
    if ((await nativeBackendsHere()).length === 0) {
      console.warn('    skipped: the stateless generator is a TensorFlow op, on the native backend only (wasm/cpu use tf.dropout)');
      this.skip();
    }
    await selectBackend('tensorflow', { log: () => {} });
  });

  it('keeps each element scaled by 1 / (1 - rate) or zeroes it, at the rate, the same mask for the same seed', () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const x = tf.randomNormal([300, 700], 0, 1, 'float32', 3);
      const rate = 0.2;
      const y = statelessDropout(x, rate, 'step-1:layers.2.up_proj');
      const counts = dropoutCounts(x, y, (v) => v / (1 - rate), 1e-6);
      expect(counts.wrong, 'kept values equal x / (1 - rate)').to.equal(0);
      // 210,000 draws: the dropped fraction's standard deviation is 0.0009.
      expect(Math.abs(counts.droppedFraction - rate)).to.be.below(0.005);
      expect(tf.equal(statelessDropout(x, rate, 'step-1:layers.2.up_proj'), y).all().dataSync()[0]).to.equal(1);
      const agree = tf.mean(tf.cast(tf.equal(statelessDropout(x, rate, 'step-2:layers.2.up_proj'), y), 'float32')).dataSync()[0];
      // Independent masks agree where both keep or both drop: 0.8^2 + 0.2^2 = 0.68.
      expect(agree).to.be.within(0.66, 0.7);
      const u = statelessUniform([1000], 'u');
      expect(u.min().dataSync()[0]).to.be.at.least(0);
      expect(u.max().dataSync()[0]).to.be.below(1);
    });
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('passes the gradient through the same mask, and refuses a rate outside [0, 1)', () => {
    tf.tidy(() => {
      const x = tf.randomNormal([40, 50], 0, 1, 'float32', 4);
      const dy = tf.randomNormal([40, 50], 0, 1, 'float32', 5);
      const y = statelessDropout(x, 0.5, 'g');
      const grad = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(statelessDropout(a, 0.5, 'g'), dy)))(x);
      const want = tf.where(tf.notEqual(y, 0), tf.mul(dy, 2), tf.zerosLike(dy));
      expect(tf.max(tf.abs(tf.sub(grad, want))).dataSync()[0]).to.be.below(1e-6);
    });
    const ones = tf.ones([2]);
    expect(() => statelessDropout(ones, 1, 's')).to.throw(/rate must be in \[0, 1\)/);
    ones.dispose();
  });
});
