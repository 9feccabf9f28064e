/**
 * Runs the same gradient computation on two backends from identical input values and compares
 * the results. Inputs are plain arrays so nothing is shared between backends.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { selectBackend, type ConcreteBackend } from '../../src/backend/backend.js';
import { Rng } from '../../src/util/rng.js';

export interface InputSpec {
  shape: number[];
  /** normal: N(0, scale²); positive: |N| + 0.5; ints: uniform integers in [0, max); mask: 0/1. */
  kind?: 'normal' | 'positive' | 'ints' | 'mask';
  scale?: number;
  max?: number;
  /** Constant (not differentiated), e.g. token ids or masks. */
  constant?: boolean;
}

export interface InputValues {
  spec: InputSpec;
  values: Float32Array | Int32Array;
}

export function makeInputs(specs: InputSpec[], seed: number | string): InputValues[] {
  const rng = new Rng(seed);
  return specs.map((spec) => {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const kind = spec.kind ?? 'normal';
    if (kind === 'ints') {
      const max = spec.max ?? 2;
      return { spec, values: Int32Array.from({ length: size }, () => rng.int(0, max - 1)) };
    }
    const values = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      if (kind === 'mask') values[i] = rng.bernoulli(0.7) ? 1 : 0;
      else if (kind === 'positive') values[i] = Math.abs(rng.normal()) + 0.5;
      else values[i] = rng.normal() * (spec.scale ?? 1);
    }
    return { spec, values };
  });
}

export function toTensor(input: InputValues): tf.Tensor {
  const dtype = input.values instanceof Int32Array ? 'int32' : 'float32';
  return tf.tensor(input.values, input.spec.shape, dtype);
}

/** Gradients of `loss` w.r.t. every non-constant input, plus the loss value, on `backend`. */
export async function gradientsOn(
  backend: ConcreteBackend,
  inputs: InputValues[],
  loss: (...xs: tf.Tensor[]) => tf.Scalar,
): Promise<{ loss: number; grads: Float32Array[] }> {
  await selectBackend(backend, { log: () => {} });
  const tensors = inputs.map(toTensor);
  const wrt = tensors.filter((_, i) => !inputs[i].spec.constant);
  const f = (...xs: tf.Tensor[]): tf.Scalar => {
    let k = 0;
    return loss(...tensors.map((t, i) => (inputs[i].spec.constant ? t : xs[k++])));
  };
  const { value, grads } = tf.valueAndGrads(f)(wrt);
  const result = {
    loss: (await value.data())[0],
    grads: await Promise.all(grads.map(async (g) => Float32Array.from(await g.data()))),
  };
  tf.dispose([value, ...grads, ...tensors]);
  return result;
}

/** Largest |a - b| relative to the scale of b (max |b|, floored so all-zero grads compare absolutely). */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length, 'gradient sizes differ').to.equal(b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]) || !Number.isFinite(b[i])) return Number.POSITIVE_INFINITY;
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / Math.max(scale, 1e-3);
}

export const REL_TOL = 1e-4;

/** Runs on `backend` and on cpu; asserts loss and all gradients agree within REL_TOL. */
export async function expectGradParity(
  backend: ConcreteBackend,
  specs: InputSpec[],
  loss: (...xs: tf.Tensor[]) => tf.Scalar,
  seed: number | string,
): Promise<number> {
  const inputs = makeInputs(specs, seed);
  const ref = await gradientsOn('cpu', inputs, loss);
  const got = await gradientsOn(backend, inputs, loss);
  let worst = relativeError([got.loss], [ref.loss]);
  expect(worst, `loss ${got.loss} vs cpu ${ref.loss}`).to.be.at.most(REL_TOL);
  expect(got.grads.length).to.equal(ref.grads.length);
  got.grads.forEach((g, i) => {
    const err = relativeError(g, ref.grads[i]);
    expect(err, `gradient of input ${i}: relative error ${err}`).to.be.at.most(REL_TOL);
    // A gradient that is zero everywhere would make the comparison meaningless.
    expect(ref.grads[i].some((v) => v !== 0), `gradient of input ${i} is all zero on cpu`).to.equal(true);
    worst = Math.max(worst, err);
  });
  return worst;
}
