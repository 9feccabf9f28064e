import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { stepTargets, stepWeightTotal, type LossKind } from '../../src/train/loss.js';
import { stepLoss, stepLossSum, stepProbabilities } from '../support/step-loss.js';

interface LossCase {
  name: string;
  kind: LossKind;
  class_weights: [number, number];
  labels: number[][];
  positions: number[][];
  shape: [number, number, number];
  logits: number[];
  loss: number;
  grad: number[];
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/train/loss.json', import.meta.url), 'utf8')) as { cases: LossCase[] };

describe('train/loss', () => {
  for (const c of fixture.cases) {
    it(`${c.name}: loss and d(loss)/d(logits) match torch autograd`, () => {
      const before = tf.memory().numTensors;
      const logits = tf.tensor3d(c.logits, c.shape);
      const targets = stepTargets(c.positions, c.labels, c.shape[1]);
      const cfg = { kind: c.kind, classWeights: c.class_weights };
      const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => stepLoss(x as tf.Tensor3D, targets, cfg))(logits);
      expect(value.dataSync()[0]).to.be.closeTo(c.loss, 1e-5);
      const g = grad.dataSync();
      for (let i = 0; i < g.length; i++) expect(g[i], `grad[${i}]`).to.be.closeTo(c.grad[i], 1e-6);
      tf.dispose([logits, value, grad]);
      expect(tf.memory().numTensors).to.equal(before);
    });
  }

  it('hand-computed: equal logits give log 2 per step and gradient (s - onehot) / N only at step tokens', () => {
    const logits = tf.zeros([1, 4, 2]) as tf.Tensor3D;
    const targets = stepTargets([[1, 3]], [[1, 0]], 4);
    expect(Array.from(targets.flatIndex)).to.deep.equal([1, 3]);
    const cfg = { kind: 'ce' as const, classWeights: [1, 1] as [number, number] };
    const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => stepLoss(x as tf.Tensor3D, targets, cfg))(logits);
    expect(value.dataSync()[0]).to.be.closeTo(Math.LN2, 1e-7);
    // position 1 label 1: (0.5 - 0, 0.5 - 1) / 2 ; position 3 label 0: (0.5 - 1, 0.5 - 0) / 2
    expect(Array.from(grad.dataSync())).to.deep.equal([0, 0, 0.25, -0.25, 0, 0, -0.25, 0.25]);
    tf.dispose([logits, value, grad]);
  });

  it('hand-computed: mse of a soft label and the class-weighted denominator', () => {
    // logits (0, ln 3) -> q = 0.75; target 0.5; weights (2, 1): omega = 2*0.5 + 1*0.5 = 1.5
    const logits = tf.tensor3d([0, Math.log(3)], [1, 1, 2]);
    const targets = stepTargets([[0]], [[0.5]], 1);
    const cfg = { kind: 'mse' as const, classWeights: [2, 1] as [number, number] };
    expect(stepWeightTotal(targets.probs, cfg)).to.equal(1.5);
    const sum = stepLossSum(logits, targets, cfg);
    expect(sum.dataSync()[0]).to.be.closeTo(1.5 * 0.0625, 1e-7);
    const mean = stepLoss(logits, targets, cfg);
    expect(mean.dataSync()[0]).to.be.closeTo(0.0625, 1e-7);
    expect(stepProbabilities(logits, targets.flatIndex)[0]).to.be.closeTo(0.75, 1e-7);
    tf.dispose([logits, sum, mean]);
  });

  it('supervises only the labelled prefix of each row and rejects bad labels with the row and step', () => {
    const t = stepTargets([[2, 5, 7], [1]], [[1], [0]], 8);
    expect(Array.from(t.flatIndex)).to.deep.equal([2, 8 + 1]);
    expect(() => stepTargets([[2]], [[1.5]], 8)).to.throw(/row 0 step 0 has label 1.5/);
    expect(() => stepTargets([[2]], [[1, 1]], 8)).to.throw(/row 0 has 2 labels but only 1 step tokens/);
    expect(() => stepTargets([[9]], [[1]], 8)).to.throw(/outside/);
  });

  it('an empty batch has zero loss', () => {
    const logits = tf.zeros([1, 2, 2]) as tf.Tensor3D;
    const s = stepLossSum(logits, stepTargets([[]], [[]], 2), { kind: 'ce', classWeights: [1, 1] });
    expect(s.dataSync()[0]).to.equal(0);
    tf.dispose([logits, s]);
  });
});
