/**
 * End to end: a tiny 2-layer Qwen2-style PRM (embedding gather, RMSNorm, RoPE, GQA attention
 * with causal + padding masks, SwiGLU MLP, Linear-ReLU-Linear head, masked logSoftmax
 * cross-entropy) written directly in tf ops, with tf.variableGrads on cpu and on wasm (and on
 * the native backend when it loads). Every parameter's gradient must agree to 1e-4 relative.
 * If the real model (src/model/prm.ts) exists, its gradients are compared the same way.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { selectBackend, type ConcreteBackend } from '../../src/backend/backend.js';
import { Rng } from '../../src/util/rng.js';
import { REL_TOL, relativeError } from './parity-helpers.js';
import { nativeBackendsHere } from './native-probe.js';

const CFG = { vocab: 13, hidden: 16, heads: 4, kvHeads: 2, headDim: 4, inter: 24, layers: 2, theta: 10000, eps: 1e-6 };
const BATCH = 2;
const SEQ = 6;
// Row 1 is left-padded by two tokens.
const IDS = [
  [3, 7, 1, 12, 5, 9],
  [0, 0, 4, 4, 11, 2],
];
const ATTN = [
  [1, 1, 1, 1, 1, 1],
  [0, 0, 1, 1, 1, 1],
];
// Step-token positions carry a label (1 good / 0 bad); other positions are ignored.
const STEP_MASK = [
  [0, 0, 1, 0, 1, 1],
  [0, 0, 0, 1, 0, 1],
];
const LABELS = [
  [0, 0, 1, 0, 0, 1],
  [0, 0, 0, 1, 0, 0],
];

type ParamShapes = Record<string, number[]>;

function paramShapes(): ParamShapes {
  const { vocab, hidden, heads, kvHeads, headDim, inter, layers } = CFG;
  const shapes: ParamShapes = { embed: [vocab, hidden], finalNorm: [hidden], head0: [hidden, hidden], head0b: [hidden], head2: [hidden, 2], head2b: [2] };
  for (let l = 0; l < layers; l++) {
    Object.assign(shapes, {
      [`l${l}.norm1`]: [hidden],
      [`l${l}.q`]: [hidden, heads * headDim],
      [`l${l}.qb`]: [heads * headDim],
      [`l${l}.k`]: [hidden, kvHeads * headDim],
      [`l${l}.kb`]: [kvHeads * headDim],
      [`l${l}.v`]: [hidden, kvHeads * headDim],
      [`l${l}.vb`]: [kvHeads * headDim],
      [`l${l}.o`]: [heads * headDim, hidden],
      [`l${l}.norm2`]: [hidden],
      [`l${l}.gate`]: [hidden, inter],
      [`l${l}.up`]: [hidden, inter],
      [`l${l}.down`]: [inter, hidden],
    });
  }
  return shapes;
}

function paramValues(seed: string): Record<string, Float32Array> {
  const rng = new Rng(seed);
  const out: Record<string, Float32Array> = {};
  for (const [name, shape] of Object.entries(paramShapes())) {
    const size = shape.reduce((a, b) => a * b, 1);
    const isNorm = name.toLowerCase().includes('norm');
    out[name] = Float32Array.from({ length: size }, () => (isNorm ? 1 + 0.1 * rng.normal() : 0.3 * rng.normal()));
  }
  return out;
}

function rope(x: tf.Tensor4D, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor4D {
  const half = CFG.headDim / 2;
  const x1 = tf.slice(x, [0, 0, 0, 0], [-1, -1, -1, half]);
  const x2 = tf.slice(x, [0, 0, 0, half], [-1, -1, -1, half]);
  const rotated = tf.concat([tf.neg(x2), x1], -1);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tf.Tensor4D;
}

function rmsNorm(x: tf.Tensor, w: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), CFG.eps))), w);
}

function linear(x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor): tf.Tensor {
  const [n, t, h] = x.shape;
  const y = tf.matMul(tf.reshape(x, [n * t, h]), w);
  return tf.reshape(b ? tf.add(y, b) : y, [n, t, w.shape[1] as number]);
}

/** Masked mean cross-entropy of the tiny PRM. */
function tinyPrmLoss(p: Record<string, tf.Tensor>): tf.Scalar {
  const { heads, kvHeads, headDim, layers, theta } = CFG;
  const ids = tf.tensor2d(IDS, undefined, 'int32');
  const attn = tf.tensor2d(ATTN);
  // Positions count real tokens only, so left padding does not shift RoPE.
  const pos = tf.sub(tf.cumsum(attn, 1), 1);
  const invFreq = tf.tensor1d(Array.from({ length: headDim / 2 }, (_, i) => 1 / theta ** ((2 * i) / headDim)));
  const angles = tf.mul(tf.expandDims(pos, -1), invFreq); // [B, T, D/2]
  const emb = tf.concat([angles, angles], -1).expandDims(1); // [B, 1, T, D]
  const cos = tf.cos(emb);
  const sin = tf.sin(emb);
  const causal = tf.linalg.bandPart(tf.ones([SEQ, SEQ]), -1, 0);
  const allowed = tf.mul(causal.expandDims(0), attn.expandDims(1)).expandDims(1); // [B,1,T,T]
  const negInf = tf.fill([BATCH, heads, SEQ, SEQ], -1e9);

  let h = tf.gather(p.embed, ids); // [B, T, H]
  for (let l = 0; l < layers; l++) {
    const x = rmsNorm(h, p[`l${l}.norm1`]);
    const split = (t: tf.Tensor, n: number) => tf.transpose(tf.reshape(t, [BATCH, SEQ, n, headDim]), [0, 2, 1, 3]) as tf.Tensor4D;
    const q = rope(split(linear(x, p[`l${l}.q`], p[`l${l}.qb`]), heads), cos, sin);
    let k = rope(split(linear(x, p[`l${l}.k`], p[`l${l}.kb`]), kvHeads), cos, sin);
    let v: tf.Tensor = split(linear(x, p[`l${l}.v`], p[`l${l}.vb`]), kvHeads);
    // GQA: each kv head serves heads/kvHeads query heads (repeat_interleave on the head axis).
    const rep = heads / kvHeads;
    const repeat = (t: tf.Tensor) =>
      tf.reshape(tf.tile(tf.expandDims(t, 2), [1, 1, rep, 1, 1]), [BATCH, heads, SEQ, headDim]);
    k = repeat(k) as tf.Tensor4D;
    v = repeat(v);
    const scores = tf.div(tf.matMul(q, k, false, true), Math.sqrt(headDim));
    const masked = tf.where(tf.cast(tf.broadcastTo(allowed, scores.shape), 'bool'), scores, negInf);
    const ctx = tf.matMul(tf.softmax(masked), v); // [B, heads, T, D]
    const merged = tf.reshape(tf.transpose(ctx, [0, 2, 1, 3]), [BATCH, SEQ, heads * headDim]);
    h = tf.add(h, linear(merged, p[`l${l}.o`]));
    const y = rmsNorm(h, p[`l${l}.norm2`]);
    const gate = linear(y, p[`l${l}.gate`]);
    const swiglu = tf.mul(tf.mul(gate, tf.sigmoid(gate)), linear(y, p[`l${l}.up`]));
    h = tf.add(h, linear(swiglu, p[`l${l}.down`]));
  }
  h = rmsNorm(h, p.finalNorm);
  const logits = linear(tf.relu(linear(h, p.head0, p.head0b)), p.head2, p.head2b); // [B, T, 2]
  const logp = tf.logSoftmax(logits);
  const labels = tf.oneHot(tf.tensor2d(LABELS, undefined, 'int32'), 2);
  const stepMask = tf.tensor2d(STEP_MASK);
  const nll = tf.neg(tf.sum(tf.mul(labels, logp), -1));
  return tf.div(tf.sum(tf.mul(nll, stepMask)), tf.sum(stepMask)) as tf.Scalar;
}

async function tinyPrmGrads(backend: ConcreteBackend, values: Record<string, Float32Array>) {
  await selectBackend(backend, { log: () => {} });
  const shapes = paramShapes();
  const vars: Record<string, tf.Variable> = {};
  for (const [name, shape] of Object.entries(shapes)) vars[name] = tf.tidy(() => tf.variable(tf.tensor(values[name], shape), true, `${backend}/${name}`));
  const { value, grads } = tf.variableGrads(() => tinyPrmLoss(vars), Object.values(vars));
  const byName: Record<string, Float32Array> = {};
  for (const [name, v] of Object.entries(vars)) byName[name] = Float32Array.from(grads[v.name].dataSync());
  const loss = value.dataSync()[0];
  tf.dispose([value, ...Object.values(grads), ...Object.values(vars)]);
  return { loss, grads: byName };
}

describe('backend: end-to-end gradients of a tiny 2-layer PRM', function () {
  let tensorsBefore = 0;
  const values = paramValues('tiny-prm');

  before(async function () {
    await selectBackend('cpu', { log: () => {} });
    tensorsBefore = tf.memory().numTensors;
  });
  after(async function () {
    await selectBackend('cpu', { log: () => {} });
    expect(tf.memory().numTensors, 'tensors leaked').to.equal(tensorsBefore);
  });

  async function compare(target: ConcreteBackend): Promise<void> {
    const ref = await tinyPrmGrads('cpu', values);
    const got = await tinyPrmGrads(target, values);
    expect(Number.isFinite(ref.loss)).to.equal(true);
    expect(relativeError([got.loss], [ref.loss])).to.be.at.most(REL_TOL);
    expect(Object.keys(got.grads)).to.deep.equal(Object.keys(ref.grads));
    for (const name of Object.keys(ref.grads)) {
      const err = relativeError(got.grads[name], ref.grads[name]);
      expect(err, `${target} vs cpu, gradient of ${name}`).to.be.at.most(REL_TOL);
      expect(ref.grads[name].some((g) => g !== 0), `gradient of ${name} is all zero`).to.equal(true);
    }
  }

  it('wasm matches cpu for every parameter', async function () {
    await compare('wasm');
  });

  it('tensorflow (native) matches cpu for every parameter', async function () {
    const native = await nativeBackendsHere();
    if (native.length === 0) {
      console.warn('    skipped: the native tensorflow backend does not load here');
      this.skip();
    }
    for (const target of native) await compare(target);
  });

  it('repeated gradient steps do not grow tf.memory().numTensors (wasm)', async function () {
    await tinyPrmGrads('wasm', values);
    const start = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) await tinyPrmGrads('wasm', values);
    expect(tf.memory().numTensors).to.equal(start);
  });
});

const PRM_MODULE = fileURLToPath(new URL('../../src/model/prm.ts', import.meta.url));

describe('backend: gradients of the real PRM model (src/model/prm.ts)', function () {
  function requirePrm(ctx: Mocha.Context): void {
    if (!existsSync(PRM_MODULE)) {
      console.warn('    skipped: src/model/prm.ts does not exist yet');
      ctx.skip();
    }
  }

  it('wasm matches cpu for every parameter', async function () {
    requirePrm(this);
    const { fullModelGradParity } = await import('./prm-grad-parity.js');
    await fullModelGradParity('wasm');
  });

  it('tensorflow (native) matches cpu for every parameter', async function () {
    requirePrm(this);
    const native = await nativeBackendsHere();
    if (native.length === 0) {
      console.warn('    skipped: the native tensorflow backend does not load here');
      this.skip();
    }
    const { fullModelGradParity } = await import('./prm-grad-parity.js');
    for (const target of native) await fullModelGradParity(target);
  });
});
