/**
 * Backward pass of every op the model and the losses use: the gradient of a random-input scalar
 * loss on wasm (and on the native 'tensorflow' backend when its binding loads here) must match
 * the cpu backend to 1e-4 relative.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { selectBackend, type ConcreteBackend } from '../../src/backend/backend.js';
import { expectGradParity, type InputSpec } from './parity-helpers.js';
import { nativeBackendsHere } from './native-probe.js';

type LossFn = (...xs: tf.Tensor[]) => tf.Scalar;
interface OpCase {
  /** Kernel(s) whose gradient the case exercises. */
  name: string;
  inputs: InputSpec[];
  loss: LossFn;
}

/** Weighted sum, so every output element gets a distinct upstream gradient. */
function weighted(y: tf.Tensor, seed = 7): tf.Scalar {
  const w = tf.sin(tf.add(tf.mul(tf.range(0, y.size, 1, 'float32'), 0.37), seed)).reshape(y.shape);
  return tf.sum(tf.mul(y, w));
}

const B = 2;
const T = 5;
const H = 8;
const HEADS = 2;
const D = H / HEADS;

export const OP_CASES: OpCase[] = [
  {
    name: 'GatherV2 (embedding [B,T] ids, axis 0)',
    inputs: [{ shape: [11, H] }, { shape: [B, T], kind: 'ints', max: 11, constant: true }],
    loss: (table, ids) => weighted(tf.gather(table, ids)),
  },
  {
    name: 'GatherV2 (axis 1, repeated indices)',
    inputs: [{ shape: [3, 6, 4] }, { shape: [5], kind: 'ints', max: 6, constant: true }],
    loss: (x, idx) => weighted(tf.gather(x, idx, 1)),
  },
  {
    name: 'GatherV2 (batchDims 1: pick label logits)',
    inputs: [{ shape: [4, 6] }, { shape: [4, 2], kind: 'ints', max: 6, constant: true }],
    loss: (x, idx) => weighted(tf.gather(x, idx, 1, 1)),
  },
  { name: 'Softmax (last axis, 4-D)', inputs: [{ shape: [B, HEADS, T, T] }], loss: (x) => weighted(tf.softmax(x)) },
  { name: 'LogSoftmax', inputs: [{ shape: [B, T, 7] }], loss: (x) => weighted(tf.logSoftmax(x)) },
  { name: 'Rsqrt', inputs: [{ shape: [B, T, 1], kind: 'positive' }], loss: (x) => weighted(tf.rsqrt(x)) },
  { name: 'Mean (last axis, keepDims)', inputs: [{ shape: [B, T, H] }], loss: (x) => weighted(tf.mean(x, -1, true)) },
  { name: 'Mean (all)', inputs: [{ shape: [B, T] }], loss: (x) => tf.mean(tf.square(x)) },
  { name: 'Pow (scalar exponent)', inputs: [{ shape: [B, H], kind: 'positive' }], loss: (x) => weighted(tf.pow(x, 2.5)) },
  {
    name: 'Pow (tensor base and exponent)',
    inputs: [{ shape: [B, H], kind: 'positive' }, { shape: [B, H], scale: 0.5 }],
    loss: (x, e) => weighted(tf.pow(x, e)),
  },
  { name: 'Square', inputs: [{ shape: [B, H] }], loss: (x) => weighted(tf.square(x)) },
  { name: 'Sigmoid', inputs: [{ shape: [B, H] }], loss: (x) => weighted(tf.sigmoid(x)) },
  { name: 'SiLU (x * sigmoid x)', inputs: [{ shape: [B, T, H] }], loss: (x) => weighted(tf.mul(x, tf.sigmoid(x))) },
  { name: 'Relu', inputs: [{ shape: [B, H] }], loss: (x) => weighted(tf.relu(x)) },
  { name: 'Tanh', inputs: [{ shape: [B, H] }], loss: (x) => weighted(tf.tanh(x)) },
  { name: 'BatchMatMul (2-D)', inputs: [{ shape: [3, 4] }, { shape: [4, 5] }], loss: (a, b) => weighted(tf.matMul(a, b)) },
  {
    name: 'BatchMatMul (transposeA)',
    inputs: [{ shape: [4, 3] }, { shape: [4, 5] }],
    loss: (a, b) => weighted(tf.matMul(a, b, true, false)),
  },
  {
    name: 'BatchMatMul (transposeB, [B,T,H] x [O,H])',
    inputs: [{ shape: [B, T, H] }, { shape: [6, H] }],
    loss: (a, w) => weighted(tf.matMul(a.reshape([B * T, H]), w, false, true)),
  },
  {
    name: 'BatchMatMul (both transposed)',
    inputs: [{ shape: [4, 3] }, { shape: [5, 4] }],
    loss: (a, b) => weighted(tf.matMul(a, b, true, true)),
  },
  {
    name: 'BatchMatMul (4-D attention scores q @ k^T)',
    inputs: [{ shape: [B, HEADS, T, D] }, { shape: [B, HEADS, T, D] }],
    loss: (q, k) => weighted(tf.matMul(q, k, false, true)),
  },
  {
    name: 'BatchMatMul (4-D broadcast batch dims)',
    inputs: [{ shape: [B, HEADS, T, D] }, { shape: [1, HEADS, D, 3] }],
    loss: (a, b) => weighted(tf.matMul(a, b)),
  },
  {
    name: '_FusedMatMul (bias, no activation)',
    inputs: [{ shape: [5, H] }, { shape: [H, 4] }, { shape: [4] }],
    loss: (x, w, b) => weighted(tf.fused.matMul({ a: x, b: w, bias: b })),
  },
  {
    name: '_FusedMatMul (bias + relu)',
    inputs: [{ shape: [5, H] }, { shape: [H, 4] }, { shape: [4] }],
    loss: (x, w, b) => weighted(tf.fused.matMul({ a: x, b: w, bias: b, activation: 'relu' })),
  },
  {
    name: 'Transpose (4-D [0,2,1,3])',
    inputs: [{ shape: [B, T, HEADS, D] }],
    loss: (x) => weighted(tf.transpose(x, [0, 2, 1, 3])),
  },
  { name: 'Slice (4-D, RoPE half)', inputs: [{ shape: [B, HEADS, T, D] }], loss: (x) => weighted(tf.slice(x, [0, 0, 0, D / 2], [-1, -1, -1, D / 2])) },
  {
    name: 'StridedSlice (strides, masks; gradient added by prmkit)',
    inputs: [{ shape: [4, 6, 5] }],
    loss: (x) => weighted(tf.stridedSlice(x, [1, 0, 4], [4, 6, 0], [1, 2, -2], 0, 2, 0, 0, 0)),
  },
  {
    name: 'StridedSlice (shrink axis, new axis)',
    inputs: [{ shape: [3, 4, 5] }],
    loss: (x) => weighted(tf.stridedSlice(x, [1, 0, 1], [2, 4, 5], [1, 1, 1], 0, 0, 0, 2, 1)),
  },
  {
    name: 'Concat (last axis)',
    inputs: [{ shape: [B, T, 3] }, { shape: [B, T, 5] }],
    loss: (a, b) => weighted(tf.concat([a, b], -1)),
  },
  { name: 'PadV2', inputs: [{ shape: [B, T, 3] }], loss: (x) => weighted(tf.pad(x, [[0, 0], [1, 2], [0, 1]], 0.5)) },
  { name: 'Tile (GQA head repeat)', inputs: [{ shape: [B, 1, T, D] }], loss: (x) => weighted(tf.tile(x, [1, 3, 1, 1])) },
  { name: 'Tile (rank 1, several reps)', inputs: [{ shape: [4] }], loss: (x) => weighted(tf.tile(x, [3])) },
  {
    name: 'Tile (rank 5, gradient added by prmkit)',
    inputs: [{ shape: [B, 2, 1, T, D] }],
    loss: (x) => weighted(tf.tile(x, [1, 1, 3, 1, 2])),
  },
  { name: 'Reverse (RoPE rotate-half)', inputs: [{ shape: [B, T, 2, D / 2] }], loss: (x) => weighted(tf.reverse(x, 2)) },
  {
    name: 'Cos / Sin (RoPE angles)',
    inputs: [{ shape: [B, T] }],
    loss: (x) => weighted(tf.add(tf.cos(x), tf.mul(tf.sin(x), 2))),
  },
  {
    name: 'BroadcastTo',
    inputs: [{ shape: [B, 1, T, D] }],
    loss: (x) => weighted(tf.broadcastTo(x, [B, 3, T, D])),
  },
  {
    name: 'Select (where with a causal/padding mask)',
    inputs: [{ shape: [B, T, T] }, { shape: [B, T, T], kind: 'mask', constant: true }],
    loss: (x, m) => weighted(tf.where(tf.cast(m, 'bool'), x, tf.fill([B, T, T], -1e4))),
  },
  {
    name: 'Cast (float32 -> float32 and int mask -> float32)',
    inputs: [{ shape: [B, T] }, { shape: [B, T], kind: 'ints', max: 2, constant: true }],
    loss: (x, m) => weighted(tf.mul(tf.cast(x, 'float32'), tf.cast(m, 'float32'))),
  },
  {
    name: 'OneHot (labels) x logSoftmax: cross-entropy',
    inputs: [{ shape: [6, 2] }, { shape: [6], kind: 'ints', max: 2, constant: true }],
    loss: (logits, labels) =>
      tf.neg(tf.mean(tf.sum(tf.mul(tf.oneHot(labels as tf.Tensor1D, 2), tf.logSoftmax(logits)), -1))) as tf.Scalar,
  },
  { name: 'Max (reduce)', inputs: [{ shape: [B, T, H] }], loss: (x) => weighted(tf.max(x, -1)) },
  { name: 'Min (reduce)', inputs: [{ shape: [B, T, H] }], loss: (x) => weighted(tf.min(x, 1)) },
  {
    name: 'Maximum / Minimum',
    inputs: [{ shape: [B, H] }, { shape: [B, H] }],
    loss: (a, b) => weighted(tf.add(tf.maximum(a, b), tf.minimum(a, tf.mul(b, 0.5)))),
  },
  { name: 'Sum (axis 0 and all)', inputs: [{ shape: [B, T, H] }], loss: (x) => tf.add(weighted(tf.sum(x, 0)), tf.sum(x)) },
  // Positive axis: tfjs 4.22's Prod gradient throws for a negative axis (on every backend).
  { name: 'Prod', inputs: [{ shape: [B, 4], kind: 'positive' }], loss: (x) => weighted(tf.prod(x, 1)) },
  { name: 'Exp', inputs: [{ shape: [B, H] }], loss: (x) => weighted(tf.exp(x)) },
  { name: 'Log', inputs: [{ shape: [B, H], kind: 'positive' }], loss: (x) => weighted(tf.log(x)) },
  { name: 'Neg', inputs: [{ shape: [B, H] }], loss: (x) => weighted(tf.neg(x)) },
  { name: 'Sqrt', inputs: [{ shape: [B, H], kind: 'positive' }], loss: (x) => weighted(tf.sqrt(x)) },
  { name: 'Abs', inputs: [{ shape: [B, H] }], loss: (x) => weighted(tf.abs(x)) },
  {
    name: 'Add / Sub / Mul / RealDiv with broadcasting',
    inputs: [{ shape: [B, T, H] }, { shape: [H] }, { shape: [B, 1, 1], kind: 'positive' }],
    loss: (x, b, s) => weighted(tf.div(tf.sub(tf.mul(tf.add(x, b), b), s), s)),
  },
  { name: 'Reciprocal', inputs: [{ shape: [B, H], kind: 'positive' }], loss: (x) => weighted(tf.reciprocal(x)) },
  {
    name: 'Reshape / ExpandDims / Squeeze',
    inputs: [{ shape: [B, T, H] }],
    loss: (x) => weighted(tf.squeeze(tf.expandDims(tf.reshape(x, [B, T, HEADS, D]), 1), [1])),
  },
  {
    name: 'SquaredDifference',
    inputs: [{ shape: [B, H] }, { shape: [B, H] }],
    loss: (a, b) => weighted(tf.squaredDifference(a, b)),
  },
  { name: 'ClipByValue', inputs: [{ shape: [B, 3, H] }], loss: (x) => weighted(tf.clipByValue(x, -0.5, 0.7)) },
  { name: 'Cumsum', inputs: [{ shape: [B, T] }], loss: (x) => weighted(tf.cumsum(x, 1)) },
  { name: 'Cumsum (exclusive, reverse)', inputs: [{ shape: [B, T] }], loss: (x) => weighted(tf.cumsum(x, 1, true, true)) },
  {
    name: 'Pack / Unpack / SplitV / AddN',
    inputs: [{ shape: [B, 6] }, { shape: [B, 6] }],
    loss: (a, b) => {
      const [l, r] = tf.split(tf.stack([a, b], 1), [2, 4], -1);
      return weighted(tf.addN([...tf.unstack(l, 1), tf.slice(tf.sum(r, 1), [0, 0], [B, 2])]));
    },
  },
  {
    name: 'RMSNorm (square, mean, add eps, rsqrt, mul weight)',
    inputs: [{ shape: [B, T, H] }, { shape: [H] }],
    loss: (x, w) => weighted(tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-6))), w)),
  },
];

describe('backend: gradient parity with cpu, op by op', function () {
  let tensorsBefore = 0;

  before(async function () {
    await selectBackend('cpu', { log: () => {} });
    tensorsBefore = tf.memory().numTensors;
  });

  after(async function () {
    await selectBackend('cpu', { log: () => {} });
    expect(tf.memory().numTensors, 'tensors leaked by the parity cases').to.equal(tensorsBefore);
  });

  for (const c of OP_CASES) {
    it(`wasm: ${c.name}`, async function () {
      await expectGradParity('wasm', c.inputs, c.loss, `op:${c.name}`);
    });
  }

  it('tensorflow (native): every op case above', async function () {
    const native = await nativeBackendsHere();
    if (native.length === 0) {
      console.warn('    skipped: the native tensorflow backend does not load here (see the line above)');
      this.skip();
    }
    for (const target of native) {
      for (const c of OP_CASES) await expectGradParity(target as ConcreteBackend, c.inputs, c.loss, `op:${c.name}`);
    }
  });
});
