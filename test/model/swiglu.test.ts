import { expect } from 'chai';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/backend.js';
import { swiGlu } from '../../src/model/qwen2.js';

/** The MLP's silu(gate) * up has a hand-written gradient; it must equal autodiff's. */
for (const backend of ['cpu', 'wasm'] as const) {
  describe(`model swiGlu (${backend} backend)`, () => {
    before(async () => {
      await selectBackend(backend, { log: () => {} });
    });
    after(async () => {
      await selectBackend('cpu', { log: () => {} });
    });

    it('gives the value and gradients of silu(gate) * up through autodiff', () => {
      tf.tidy(() => {
        const gate = tf.tensor2d(Array.from({ length: 35 }, (_, i) => 3 * Math.sin(i * 1.7)), [5, 7]);
        const up = tf.tensor2d(Array.from({ length: 35 }, (_, i) => Math.cos(i * 0.9)), [5, 7]);
        const weights = tf.tensor2d(Array.from({ length: 35 }, (_, i) => (i % 5) - 2), [5, 7]);
        const reference = (g: tf.Tensor, u: tf.Tensor) => tf.mul(tf.mul(g, tf.sigmoid(g)), u);
        const maxDiff = (a: tf.Tensor, b: tf.Tensor) => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0];
        expect(maxDiff(swiGlu(gate, up), reference(gate, up))).to.be.below(1e-6);
        const loss = (f: (g: tf.Tensor, u: tf.Tensor) => tf.Tensor) => (g: tf.Tensor, u: tf.Tensor) => tf.sum(tf.mul(f(g, u), weights));
        const [dGate, dUp] = tf.grads(loss(swiGlu))([gate, up]);
        const [wantGate, wantUp] = tf.grads(loss(reference))([gate, up]);
        expect(maxDiff(dGate, wantGate)).to.be.below(1e-5);
        expect(maxDiff(dUp, wantUp)).to.be.below(1e-6);
      });
    });
  });
}
