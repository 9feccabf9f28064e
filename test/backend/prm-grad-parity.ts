/**
 * Full-model gradient parity for the real PRM (src/model/prm.ts): same seed, same batch, same
 * loss on `target` and on cpu; every trainable variable's gradient must agree to REL_TOL.
 * Imported by transformer-parity.test.ts only when prm.ts exists.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import type { Qwen2Config } from '../../src/model/config.js';
import { initPrm } from '../../src/model/prm.js';
import { selectBackend, type ConcreteBackend } from '../../src/backend/backend.js';
import { REL_TOL, relativeError } from './parity-helpers.js';

const CONFIG: Qwen2Config = {
  vocabSize: 32,
  hiddenSize: 16,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  headDim: 4,
  intermediateSize: 24,
  ropeTheta: 10000,
  rmsNormEps: 1e-6,
  tieWordEmbeddings: false,
  maxPositionEmbeddings: 64,
  numLabels: 2,
  // Larger than HF's 0.02 so activations and gradients are far from zero.
  initializerRange: 0.4,
};

// Row 1 is left-padded by two tokens.
const IDS = [
  [5, 17, 3, 30, 8, 21, 2],
  [0, 0, 11, 4, 26, 9, 13],
];
const MASK = [
  [1, 1, 1, 1, 1, 1, 1],
  [0, 0, 1, 1, 1, 1, 1],
];
const STEPS = [[2, 4, 6], [3, 6]];
const LABELS = [1, 0, 1, 0, 1];

async function prmGrads(backend: ConcreteBackend): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
  await selectBackend(backend, { log: () => {} });
  const model = initPrm(CONFIG, 1234);
  try {
    const ids = tf.tensor2d(IDS, undefined, 'int32');
    const mask = tf.tensor2d(MASK, undefined, 'int32');
    const labels = tf.tidy(() => tf.oneHot(tf.tensor1d(LABELS, 'int32'), 2));
    const vars = model.trainableVariables();
    const { value, grads } = tf.variableGrads(
      () => tf.neg(tf.mean(tf.sum(tf.mul(labels, tf.logSoftmax(model.logitsAt(ids, mask, STEPS))), -1))) as tf.Scalar,
      vars,
    );
    const names = new Map([...model.variables].map(([name, v]) => [v.name, name]));
    const out = new Map<string, Float32Array>();
    for (const [varName, g] of Object.entries(grads)) out.set(names.get(varName) ?? varName, Float32Array.from(g.dataSync()));
    const loss = value.dataSync()[0];
    tf.dispose([value, ...Object.values(grads), ids, mask, labels]);
    return { loss, grads: out };
  } finally {
    model.dispose();
  }
}

export async function fullModelGradParity(target: ConcreteBackend): Promise<void> {
  await selectBackend('cpu', { log: () => {} });
  const before = tf.memory().numTensors;
  const ref = await prmGrads('cpu');
  const got = await prmGrads(target);
  expect(relativeError([got.loss], [ref.loss]), `loss ${got.loss} vs ${ref.loss}`).to.be.at.most(REL_TOL);
  expect([...got.grads.keys()]).to.deep.equal([...ref.grads.keys()]);
  expect(ref.grads.size).to.be.greaterThan(20);
  for (const [name, g] of ref.grads) {
    const err = relativeError(got.grads.get(name)!, g);
    expect(err, `${target} vs cpu, gradient of ${name}`).to.be.at.most(REL_TOL);
    expect(g.some((v) => v !== 0), `gradient of ${name} is all zero`).to.equal(true);
  }
  await selectBackend('cpu', { log: () => {} });
  expect(tf.memory().numTensors, 'tensors leaked').to.equal(before);
}
