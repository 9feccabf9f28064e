/**
 * prmkit's fused native kernels (src/backend/fused, scripts/native/prmkit_fused.cc) against the
 * eager tfjs ops they replace: values and gradients within 1e-5 relative (max |a - b| over
 * max |b|), on shapes with left and right padding, one-token rows, grouped-query heads and
 * lengths that are no multiple of the kernel's 64-row query block. Native backend only: the
 * kernels live in the tfjs-node binding; wasm and cpu run the eager ops (see the skip reasons).
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { copyIntoInPlace, dropoutKey, fusedAddRmsNorm, fusedAttention, fusedDropout, fusedAttentionWithLse, fusedRmsNorm, fusedRopeAttention, fusedRopeAttentionRows, fusedSumOfSquares, fusedSwiGlu } from '../../src/backend/fused/fused-ops.js';
import { globalNorm } from '../../src/train/gradients.js';
import { rmsNorm, swiGlu } from '../../src/model/qwen2.js';
import { AdamW } from '../../src/train/optimizer.js';
import { Rng } from '../../src/util/rng.js';
import { skipUnlessFusedKernels } from './native-probe.js';
import { dropoutCounts } from '../support/dropout.js';

const TOL = 1e-5;

function relErr(got: tf.Tensor, want: tf.Tensor): number {
  return tf.tidy(() => {
    const diff = tf.max(tf.abs(tf.sub(got, want))).dataSync()[0];
    const scale = tf.max(tf.abs(want)).dataSync()[0];
    return diff / Math.max(scale, 1e-30);
  });
}

function randn(rng: Rng, shape: number[], scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: n }, () => scale * rng.normal()), shape);
}

/**
 * The eager reference: the [B,H,T,T] scores, a -inf bias where key j is in the future or
 * padding, softmax, and grouped heads by repeating k and v (as HF repeat_kv).
 */
function referenceAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor2D): tf.Tensor4D {
  const [b, t, h, d] = q.shape;
  const hk = k.shape[2];
  const groups = h / hk;
  const qh = tf.transpose(q, [0, 2, 1, 3]); // [B,H,T,D]
  const rep = (x: tf.Tensor4D) => tf.reshape(tf.tile(tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [b, hk, 1, t, d]), [1, 1, groups, 1, 1]), [b, h, t, d]);
  const scores = tf.matMul(qh, rep(k), false, true); // [B,H,T,T]
  const causal = tf.linalg.bandPart(tf.ones([t, t]), -1, 0);
  const allowed = tf.mul(causal.reshape([1, 1, t, t]), mask.reshape([b, 1, 1, t]));
  const probs = tf.softmax(tf.add(scores, tf.mul(tf.sub(allowed, 1), 1e9)));
  return tf.transpose(tf.matMul(probs, rep(v)), [0, 2, 1, 3]) as tf.Tensor4D;
}

/** RoPE in the rotate_half form on [B,T,heads,D], cos and sin [B,T,D/2], times scale. */
function referenceRope(x: tf.Tensor4D, cos: tf.Tensor3D, sin: tf.Tensor3D, scale: number): tf.Tensor4D {
  const [b, t, , d] = x.shape;
  const c = cos.reshape([b, t, 1, d / 2]);
  const s = sin.reshape([b, t, 1, d / 2]);
  const [x1, x2] = tf.split(x, 2, 3);
  return tf.mul(tf.concat([tf.sub(tf.mul(x1, c), tf.mul(x2, s)), tf.add(tf.mul(x2, c), tf.mul(x1, s))], 3), scale) as tf.Tensor4D;
}

/** 1 for query rows that may see at least one key ([B,T,1,1]); the others are meaningless. */
function seesAKey(mask: number[][]): tf.Tensor4D {
  const rows = mask.map((row) => row.map((_, i) => (row.slice(0, i + 1).some((m) => m > 0) ? 1 : 0)));
  return tf.tensor4d(rows.flat(), [mask.length, mask[0].length, 1, 1]);
}

interface AttentionCase {
  name: string;
  b: number;
  t: number;
  h: number;
  hk: number;
  d: number;
  mask: (b: number, t: number) => number[][];
}

const ones = (b: number, t: number) => Array.from({ length: b }, () => new Array<number>(t).fill(1));
const CASES: AttentionCase[] = [
  {
    name: 'left and right padding, GQA 4:2, T=70 (no multiple of the 64-row block)',
    b: 3, t: 70, h: 4, hk: 2, d: 16,
    mask: (b, t) => ones(b, t).map((row, i) => row.map((_, j) => (i === 0 ? (j >= 5 ? 1 : 0) : i === 1 ? (j < t - 9 ? 1 : 0) : 1))),
  },
  { name: 'one-token rows', b: 3, t: 1, h: 2, hk: 2, d: 8, mask: ones },
  {
    // Many (batch, kv head) pairs: the backward's tasks write dk/dv directly (no per-head scratch).
    name: 'GQA 4:2 over 8 padded rows, T=65',
    b: 8, t: 65, h: 4, hk: 2, d: 8,
    mask: (b, t) => ones(b, t).map((row, i) => row.map((_, j) => (j < t - 3 * i ? 1 : 0))),
  },
  { name: 'multi-query (6:1), T=130, no padding', b: 1, t: 130, h: 6, hk: 1, d: 32, mask: ones },
  // Large enough to be spread over the kernel's thread pool (small jobs run serially).
  {
    name: 'threaded, GQA 4:2 with 8 (batch, kv head) tasks writing dk/dv directly, T=200',
    b: 4, t: 200, h: 4, hk: 2, d: 32,
    mask: (b, t) => ones(b, t).map((row, i) => row.map((_, j) => (i % 2 === 0 ? (j >= 7 * i ? 1 : 0) : j < t - 11 * i ? 1 : 0))),
  },
  { name: 'threaded, GQA 4:1 with per-head dk/dv summed per group, T=300', b: 2, t: 300, h: 4, hk: 1, d: 32, mask: (b, t) => ones(b, t).map((row, i) => row.map((_, j) => (i === 1 && j < 40 ? 0 : 1))) },
  {
    name: 'a row with one real token in the middle, T=9',
    b: 2, t: 9, h: 2, hk: 1, d: 4,
    mask: (b, t) => [new Array<number>(t).fill(0).map((_, j) => (j === 4 ? 1 : 0)), new Array<number>(t).fill(1)],
  },
  {
    // The kernels read one run of ones [lo, hi) as a key range and test every key otherwise.
    name: 'masks with holes (not one run of ones) beside a padded row, T=140',
    b: 3, t: 140, h: 4, hk: 2, d: 16,
    mask: (b, t) => ones(b, t).map((row, i) => row.map((_, j) => (i === 0 ? (j % 5 === 2 ? 0 : 1) : i === 1 ? (j < 10 || (j >= 70 && j < 75) ? 0 : 1) : j < t - 20 ? 1 : 0))),
  },
];

describe('backend: fused native kernels vs the eager ops', function () {
  before(async function () {
    await skipUnlessFusedKernels(this);
  });

  for (const c of CASES) {
    it(`attention: values and gradients (${c.name})`, () => {
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const rng = new Rng(`attn-${c.name}`);
        const maskRows = c.mask(c.b, c.t);
        const q = randn(rng, [c.b, c.t, c.h, c.d], 0.5) as tf.Tensor4D;
        const k = randn(rng, [c.b, c.t, c.hk, c.d], 0.5) as tf.Tensor4D;
        const v = randn(rng, [c.b, c.t, c.hk, c.d]) as tf.Tensor4D;
        const mask = tf.tensor2d(maskRows.flat(), [c.b, c.t]);
        const rows = seesAKey(maskRows);
        const weights = tf.mul(randn(rng, [c.b, c.t, c.h, c.d]), rows);
        const got = fusedAttention(q, k, v, mask);
        const want = referenceAttention(q, k, v, mask);
        expect(relErr(tf.mul(got, rows), tf.mul(want, rows))).to.be.below(TOL);
        // Rows that see no key are 0 on the fused path (finite either way).
        expect(relErr(tf.mul(got, tf.sub(1, rows)), tf.zerosLike(got))).to.equal(0);
        const loss = (f: typeof fusedAttention) => (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) =>
          tf.sum(tf.mul(f(qq as tf.Tensor4D, kk as tf.Tensor4D, vv as tf.Tensor4D, mask), weights));
        const gotGrads = tf.grads(loss(fusedAttention))([q, k, v]);
        const wantGrads = tf.grads(loss(referenceAttention))([q, k, v]);
        gotGrads.forEach((g, i) => expect(relErr(g, wantGrads[i]), `gradient ${'qkv'[i]}`).to.be.below(TOL));

        // With RoPE and the scale inside the kernel, against RoPE in tf ops then the reference.
        const angles = tf.mul(tf.randomUniform([c.b, c.t, c.d / 2], 0, 50, 'float32', 7), 1);
        const cos = tf.cos(angles) as tf.Tensor3D;
        const sin = tf.sin(angles) as tf.Tensor3D;
        const scale = 1 / Math.sqrt(c.d);
        const fusedRope = (qq: tf.Tensor4D, kk: tf.Tensor4D, vv: tf.Tensor4D, m: tf.Tensor2D) => fusedRopeAttention(qq, kk, vv, m, cos, sin, scale);
        const eagerRope = (qq: tf.Tensor4D, kk: tf.Tensor4D, vv: tf.Tensor4D, m: tf.Tensor2D) =>
          referenceAttention(referenceRope(qq, cos, sin, scale), referenceRope(kk, cos, sin, 1), vv, m);
        expect(relErr(tf.mul(fusedRope(q, k, v, mask), rows), tf.mul(eagerRope(q, k, v, mask), rows)), 'RoPE values').to.be.below(TOL);
        const gotRope = tf.grads(loss(fusedRope))([q, k, v]);
        const wantRope = tf.grads(loss(eagerRope))([q, k, v]);
        gotRope.forEach((g, i) => expect(relErr(g, wantRope[i]), `RoPE gradient ${'qkv'[i]}`).to.be.below(TOL));

        // The flat layout (q [B*T,H*D], k and v [B*T,Hk*D], as the decoder's projections come)
        // is the same computation on the same memory: equal to the last bit.
        const bt = c.b * c.t;
        const flatRope = (qq: tf.Tensor4D, kk: tf.Tensor4D, vv: tf.Tensor4D, m: tf.Tensor2D) =>
          fusedRopeAttention(qq.reshape([bt, c.h * c.d]) as tf.Tensor2D, kk.reshape([bt, c.hk * c.d]) as tf.Tensor2D, vv.reshape([bt, c.hk * c.d]) as tf.Tensor2D, m, cos, sin, scale)
            .reshape([c.b, c.t, c.h, c.d]) as tf.Tensor4D;
        const flatOut = fusedRopeAttention(q.reshape([bt, c.h * c.d]) as tf.Tensor2D, k.reshape([bt, c.hk * c.d]) as tf.Tensor2D, v.reshape([bt, c.hk * c.d]) as tf.Tensor2D, mask, cos, sin, scale);
        expect(flatOut.shape, 'flat output shape').to.deep.equal([bt, c.h * c.d]);
        expect(relErr(flatOut.reshape([c.b, c.t, c.h, c.d]), fusedRope(q, k, v, mask)), 'flat values').to.equal(0);
        tf.grads(loss(flatRope))([q, k, v]).forEach((g, i) => expect(relErr(g, gotRope[i]), `flat gradient ${'qkv'[i]}`).to.equal(0));

        // At chosen query rows only (flat b*T + t, in no particular order, some twice, some of
        // rows that see no key), against the full eager attention's rows.
        const flat = Array.from({ length: c.b * c.t }, (_, i) => i).filter(() => rng.next() < 0.4);
        const picked = [...flat.reverse(), ...(flat.length > 0 ? [flat[0]] : []), c.b * c.t - 1, 0];
        const rowIds = tf.tensor1d(picked, 'int32');
        const sees = tf.gather(rows.reshape([c.b * c.t, 1, 1]), rowIds);
        const rowWeights = tf.mul(randn(rng, [picked.length, c.h, c.d]), sees);
        const atRows = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor): tf.Tensor =>
          fusedRopeAttentionRows(tf.gather(qq.reshape([c.b * c.t, c.h, c.d]), rowIds) as tf.Tensor3D, kk as tf.Tensor4D, vv as tf.Tensor4D, mask, cos, sin, tf.cast(rowIds, 'float32') as tf.Tensor1D, scale);
        const eagerAtRows = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) =>
          tf.gather(eagerRope(qq as tf.Tensor4D, kk as tf.Tensor4D, vv as tf.Tensor4D, mask).reshape([c.b * c.t, c.h, c.d]), rowIds);
        const gotRows = atRows(q, k, v);
        expect(relErr(tf.mul(gotRows, sees), tf.mul(eagerAtRows(q, k, v), sees)), 'rows: values').to.be.below(TOL);
        expect(relErr(tf.mul(gotRows, tf.sub(1, sees)), tf.zerosLike(gotRows)), 'rows that see no key').to.equal(0);
        const rowLoss = (f: typeof atRows) => (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) => tf.sum(tf.mul(f(qq, kk, vv), rowWeights));
        const gotRowGrads = tf.grads(rowLoss(atRows))([q, k, v]);
        const wantRowGrads = tf.grads(rowLoss(eagerAtRows))([q, k, v]);
        gotRowGrads.forEach((g, i) => expect(relErr(g, wantRowGrads[i]), `rows: gradient ${'qkv'[i]}`).to.be.below(TOL));
        const atRowsFlat = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor): tf.Tensor =>
          fusedRopeAttentionRows(tf.gather(qq.reshape([bt, c.h * c.d]), rowIds) as tf.Tensor2D, kk.reshape([bt, c.hk * c.d]) as tf.Tensor2D, vv.reshape([bt, c.hk * c.d]) as tf.Tensor2D, mask, cos, sin, tf.cast(rowIds, 'float32') as tf.Tensor1D, scale)
            .reshape([picked.length, c.h, c.d]);
        expect(relErr(atRowsFlat(q, k, v), gotRows), 'rows, flat: values').to.equal(0);
        tf.grads(rowLoss(atRowsFlat))([q, k, v]).forEach((g, i) => expect(relErr(g, gotRowGrads[i]), `rows, flat: gradient ${'qkv'[i]}`).to.equal(0));
      });
      expect(tf.memory().numTensors).to.equal(before);
    });
  }

  it('attention at chosen rows: a clear error for a row outside the batch', () => {
    tf.tidy(() => {
      const k = tf.zeros([1, 4, 1, 8]) as tf.Tensor4D;
      const cs = tf.zeros([1, 4, 4]) as tf.Tensor3D;
      const q = tf.zeros([2, 2, 8]) as tf.Tensor3D;
      expect(() => fusedRopeAttentionRows(q, k, k, tf.ones([1, 4]) as tf.Tensor2D, cs, cs, tf.tensor1d([1, 4]), 1)).to.throw(/rows\[1\] = 4\.0+ is not a position in \[0, B\*T\)/);
      expect(() => fusedRopeAttentionRows(q, k, k, tf.ones([1, 4]) as tf.Tensor2D, cs, cs, tf.tensor1d([1]), 1)).to.throw(/rows \[N\]/);
    });
  });

  it('copyIntoInPlace writes a run of values into a buffer in place, and refuses one out of range', () => {
    const before = tf.memory().numTensors;
    const dst = tf.zeros([10]);
    const src = tf.tensor1d([1, 2, 3, 4, 5, 6]);
    copyIntoInPlace(dst, src, 2, 1, 4);
    copyIntoInPlace(dst, src, 9, 5, 1);
    expect(Array.from(dst.dataSync())).to.deep.equal([0, 0, 2, 3, 4, 5, 0, 0, 0, 6]);
    expect(() => copyIntoInPlace(dst, src, 8, 0, 3)).to.throw(/3 values from offset 0 of 6 into offset 8 of 10 are out of range/);
    expect(() => copyIntoInPlace(dst, src, 0, 4, 3)).to.throw(/out of range/);
    expect(() => copyIntoInPlace(dst, src, -1, 0, 1)).to.throw(/dstOffset must be a non-negative integer/);
    expect(Array.from(dst.dataSync())).to.deep.equal([0, 0, 2, 3, 4, 5, 0, 0, 0, 6]);
    tf.dispose([dst, src]);
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('sum of squares: one call over many tensors gives the eager square-and-sum, and keeps NaN and Infinity', () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const rng = new Rng('sumsq');
      // Sizes across the kernel's 65,536-element chunks, a scalar and an empty tensor.
      const xs = [randn(rng, [300, 700]), randn(rng, [65536], 3), tf.scalar(-2.5), randn(rng, [17, 3, 5]), tf.zeros([0, 4])];
      const eager = tf.addN(xs.map((x) => tf.sum(tf.square(x)))).dataSync()[0];
      const fused = fusedSumOfSquares(xs);
      expect(fused.shape).to.deep.equal([]);
      expect(Math.abs(fused.dataSync()[0] - eager) / eager).to.be.below(1e-6);
      expect(globalNorm(xs, 'fused')).to.be.closeTo(globalNorm(xs, 'eager'), 1e-6 * Math.sqrt(eager));
      expect(fusedSumOfSquares([xs[0], tf.tensor1d([1, NaN])]).dataSync()[0]).to.be.NaN;
      expect(fusedSumOfSquares([tf.tensor1d([Infinity]), xs[1]]).dataSync()[0]).to.equal(Infinity);
      expect(fusedSumOfSquares([]).dataSync()[0]).to.equal(0);
    });
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('attention: the saved log-sum-exp is that of the masked scores', () => {
    tf.tidy(() => {
      const rng = new Rng('lse');
      const q = randn(rng, [1, 5, 2, 4]) as tf.Tensor4D;
      const k = randn(rng, [1, 5, 1, 4]) as tf.Tensor4D;
      const v = randn(rng, [1, 5, 1, 4]) as tf.Tensor4D;
      const mask = tf.tensor2d([[0, 1, 1, 0, 1]]);
      const [, lse] = fusedAttentionWithLse(q, k, v, mask);
      const qv = q.arraySync()[0];
      const kv = k.arraySync()[0];
      const got = lse.arraySync()[0];
      for (let h = 0; h < 2; h++) {
        expect(got[h][0]).to.equal(-Infinity); // row 0 sees only a padded key
        for (let i = 1; i < 5; i++) {
          let sum = 0;
          for (let j = 0; j <= i; j++) {
            if (j === 0 || j === 3) continue;
            const s = qv[i][h].reduce((a, x, e) => a + x * kv[j][0][e], 0);
            sum += Math.exp(s);
          }
          expect(got[h][i]).to.be.closeTo(Math.log(sum), 1e-5);
        }
      }
    });
  });

  it('attention: a clear error for mismatched shapes', () => {
    tf.tidy(() => {
      const q = tf.zeros([1, 4, 3, 8]) as tf.Tensor4D;
      const k = tf.zeros([1, 4, 2, 8]) as tf.Tensor4D; // 3 heads are no multiple of 2
      expect(() => fusedAttention(q, k, k, tf.ones([1, 4]) as tf.Tensor2D)).to.throw(/H a multiple of Hk/);
      const q2 = tf.zeros([1, 4, 2, 8]) as tf.Tensor4D;
      const cos = tf.zeros([1, 4, 3]) as tf.Tensor3D; // D/2 is 4
      expect(() => fusedRopeAttention(q2, q2, q2, tf.ones([1, 4]) as tf.Tensor2D, cos, cos, 1)).to.throw(/cos, sin \[B,T,D\/2\]/);
      // Flat: D = 8 from cos [1,4,4], so q [4,24] has 3 heads and k [4,16] 2.
      const cos4 = tf.zeros([1, 4, 4]) as tf.Tensor3D;
      const qf = tf.zeros([4, 24]) as tf.Tensor2D;
      const kf = tf.zeros([4, 16]) as tf.Tensor2D;
      expect(() => fusedRopeAttention(qf, kf, kf, tf.ones([1, 4]) as tf.Tensor2D, cos4, cos4, 1)).to.throw(/q \[B\*T,H\*D\].*H a multiple of Hk/);
    });
  });

  for (const [n, c] of [[1, 7], [37, 96], [130, 33], [2048, 256]] as const) {
    it(`RMSNorm [${n}, ${c}]: values and gradients`, () => {
      tf.tidy(() => {
        const rng = new Rng(`rms-${n}-${c}`);
        const x = randn(rng, [n, c], 2) as tf.Tensor2D;
        const w = tf.add(1, randn(rng, [c], 0.2)) as tf.Tensor1D;
        const dy = randn(rng, [n, c]);
        expect(relErr(fusedRmsNorm(x, w, 1e-6), rmsNorm(x, w, 1e-6))).to.be.below(TOL);
        const loss = (f: typeof rmsNorm) => (xx: tf.Tensor, ww: tf.Tensor) => tf.sum(tf.mul(f(xx as tf.Tensor2D, ww as tf.Tensor1D, 1e-6), dy));
        const got = tf.grads(loss(fusedRmsNorm))([x, w]);
        const want = tf.grads(loss(rmsNorm))([x, w]);
        expect(relErr(got[0], want[0]), 'dx').to.be.below(TOL);
        expect(relErr(got[1], want[1]), 'dw').to.be.below(TOL);
      });
    });

    it(`residual add + RMSNorm [${n}, ${c}]: both outputs and the gradients of x, r and w`, () => {
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const rng = new Rng(`addrms-${n}-${c}`);
        const x = randn(rng, [n, c], 2) as tf.Tensor2D;
        const r = randn(rng, [n, c]) as tf.Tensor2D;
        const w = tf.add(1, randn(rng, [c], 0.2)) as tf.Tensor1D;
        const dsum = randn(rng, [n, c]);
        const dy = randn(rng, [n, c]);
        const eager = (xx: tf.Tensor2D, rr: tf.Tensor2D, ww: tf.Tensor1D): [tf.Tensor2D, tf.Tensor2D] => {
          const sum = tf.add(xx, rr) as tf.Tensor2D;
          return [sum, rmsNorm(sum, ww, 1e-6)];
        };
        const fusedOut = fusedAddRmsNorm(x, r, w, 1e-6);
        const eagerOut = eager(x, r, w);
        expect(relErr(fusedOut[0], eagerOut[0]), 'sum').to.equal(0);
        expect(relErr(fusedOut[1], eagerOut[1]), 'normed').to.be.below(TOL);
        // The sum feeds the next residual and the norm feeds the MLP: gradients arrive at both.
        const loss = (f: typeof eager) => (xx: tf.Tensor, rr: tf.Tensor, ww: tf.Tensor) => {
          const [sum, y] = f(xx as tf.Tensor2D, rr as tf.Tensor2D, ww as tf.Tensor1D);
          return tf.add(tf.sum(tf.mul(sum, dsum)), tf.sum(tf.mul(y, dy)));
        };
        const got = tf.grads(loss((xx, rr, ww) => fusedAddRmsNorm(xx, rr, ww, 1e-6)))([x, r, w]);
        const want = tf.grads(loss(eager))([x, r, w]);
        got.forEach((g, i) => expect(relErr(g, want[i]), `d${'xrw'[i]}`).to.be.below(TOL));
        // Only the normed output used: the sum's gradient is zero.
        const onlyNormed = tf.grads((xx: tf.Tensor, rr: tf.Tensor) => tf.sum(tf.mul(fusedAddRmsNorm(xx as tf.Tensor2D, rr as tf.Tensor2D, w, 1e-6)[1], dy)))([x, r]);
        const onlyNormedEager = tf.grads((xx: tf.Tensor, rr: tf.Tensor) => tf.sum(tf.mul(eager(xx as tf.Tensor2D, rr as tf.Tensor2D, w)[1], dy)))([x, r]);
        onlyNormed.forEach((g, i) => expect(relErr(g, onlyNormedEager[i]), `normed only: d${'xr'[i]}`).to.be.below(TOL));
      });
      expect(tf.memory().numTensors).to.equal(before);
    });
  }

  it('AdamW: the fused update gives the tf-ops update (decay and no decay, clipped and not)', () => {
    const rng = new Rng('adamw');
    const shapes = [[37, 5], [64], [3, 1000], [512, 600]]; // the last one is spread over threads
    const make = (kernels: 'fused' | 'eager') => {
      const params = shapes.map((shape, i) => ({ name: i === 1 ? `l.${i}.bias` : `l.${i}.weight`, variable: tf.variable(randn(new Rng(`p${i}`), shape)) }));
      return { params, opt: new AdamW(params, { weightDecay: 0.1, kernels }) };
    };
    const fused = make('fused');
    const eager = make('eager');
    const before = tf.memory().numTensors;
    for (let step = 0; step < 4; step++) {
      const grads = shapes.map((shape) => randn(rng, shape, step + 0.5));
      const gradScale = step % 2 === 0 ? 1 : 0.37;
      fused.opt.apply(grads, 1e-2, { gradScale });
      eager.opt.apply(grads, 1e-2, { gradScale });
      tf.dispose(grads);
    }
    expect(tf.memory().numTensors, 'tensors after the updates').to.equal(before);
    fused.params.forEach((p, i) => {
      expect(relErr(p.variable, eager.params[i].variable), p.name).to.be.below(1e-6);
      const [m, v] = [fused.opt.stateTensors()[2 * i].tensor, fused.opt.stateTensors()[2 * i + 1].tensor];
      expect(relErr(m, eager.opt.stateTensors()[2 * i].tensor), `exp_avg ${p.name}`).to.be.below(1e-6);
      expect(relErr(v, eager.opt.stateTensors()[2 * i + 1].tensor), `exp_avg_sq ${p.name}`).to.be.below(1e-6);
    });
    for (const side of [fused, eager]) {
      side.opt.dispose();
      side.params.forEach((p) => p.variable.dispose());
    }
  });

  it('AdamW: the fused update writes the moments in place, so it holds one new tensor of the parameter, not three', async () => {
    const shape = [256, 1024];
    const bytes = 4 * 256 * 1024;
    const p = tf.variable(randn(new Rng('adamw-mem'), shape));
    const params = [{ name: 'w.weight', variable: p }];
    const opt = new AdamW(params, { kernels: 'fused' });
    const momentsBefore = opt.stateTensors().map((s) => s.tensor.dataId);
    const grad = randn(new Rng('adamw-mem-g'), shape);
    const start = tf.memory().numBytes;
    const info = await tf.profile(() => opt.apply([grad], 1e-2));
    // The new parameter is the only tensor of its size made (the old one is freed by the assign).
    expect(info.peakBytes - start).to.be.at.most(bytes + 1024);
    // The moments are the same buffers, updated: m = 0.1 g after the first step.
    expect(opt.stateTensors().map((s) => s.tensor.dataId)).to.deep.equal(momentsBefore);
    expect(relErr(opt.stateTensors()[0].tensor, tf.mul(grad, 0.1))).to.be.below(1e-6);
    tf.dispose([grad]);
    opt.dispose();
    p.dispose();
  });

  it('SwiGLU: values and gradients', () => {
    tf.tidy(() => {
      const rng = new Rng('swiglu');
      // Large enough to be spread over the kernel's thread pool.
      const gate = randn(rng, [512, 1030], 3);
      const up = randn(rng, [512, 1030]);
      const dy = randn(rng, [512, 1030]);
      expect(relErr(fusedSwiGlu(gate, up), swiGlu(gate, up))).to.be.below(TOL);
      const loss = (f: typeof swiGlu) => (g: tf.Tensor, u: tf.Tensor) => tf.sum(tf.mul(f(g, u), dy));
      const got = tf.grads(loss(fusedSwiGlu))([gate, up]);
      const want = tf.grads(loss(swiGlu))([gate, up]);
      expect(relErr(got[0], want[0]), 'dgate').to.be.below(TOL);
      expect(relErr(got[1], want[1]), 'dup').to.be.below(TOL);
    });
  });
  it('dropout: each element kept and scaled by 1 / (1 - rate) or zeroed, at the rate, the mask a function of seed and position', () => {
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const rng = new Rng('dropout');
      // Large enough to be spread over the kernel's thread pool.
      const x = randn(rng, [512, 1030]);
      const rate = 0.1;
      const y = fusedDropout(x, rate, 'step-3:layers.0.q_proj');
      const counts = dropoutCounts(x, y, (v) => Math.fround(v * Math.fround(1 / (1 - rate))));
      expect(counts.wrong, 'kept values equal x / (1 - rate)').to.equal(0);
      // 527,360 draws: the dropped fraction's standard deviation is 0.0004.
      expect(Math.abs(counts.droppedFraction - rate)).to.be.below(0.003);
      expect(relErr(fusedDropout(x, rate, 'step-3:layers.0.q_proj'), y), 'same seed, same mask').to.equal(0);
      const agree = tf.mean(tf.cast(tf.equal(fusedDropout(x, rate, 'step-4:layers.0.q_proj'), y), 'float32')).dataSync()[0];
      // Two independent masks agree where both keep or both drop: 0.9^2 + 0.1^2 = 0.82.
      expect(agree).to.be.within(0.81, 0.83);
      // A prefix of the tensor gets the prefix of the mask: the draw depends on the position alone
      // (not on how the kernel splits the work over its threads).
      const head = fusedDropout(x.slice([0, 0], [7, 1030]), rate, 'step-3:layers.0.q_proj');
      expect(relErr(head, y.slice([0, 0], [7, 1030]))).to.equal(0);
      expect(relErr(fusedDropout(x, 0, 'any'), x), 'rate 0 is the identity').to.equal(0);
    });
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('dropout: the gradient applies the same mask to dy, drawn again (nothing kept), and bad rates are refused', () => {
    tf.tidy(() => {
      const rng = new Rng('dropout-grad');
      const x = randn(rng, [64, 96]);
      const dy = randn(rng, [64, 96]);
      const rate = 0.3;
      const y = fusedDropout(x, rate, 'seed');
      const grad = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(fusedDropout(a, rate, 'seed'), dy)))(x);
      const kept = tf.notEqual(y, 0);
      const want = tf.where(kept, tf.mul(dy, 1 / (1 - rate)), tf.zerosLike(dy));
      expect(relErr(grad, want)).to.be.below(1e-7);
    });
    const x = tf.ones([4]);
    expect(() => fusedDropout(x, 1, 'seed')).to.throw(/rate must be in \[0, 1\)/);
    expect(() => fusedDropout(x, -0.1, 'seed')).to.throw(/rate must be in \[0, 1\)/);
    x.dispose();
    const key = dropoutKey('seed');
    expect(key).to.have.length(4);
    for (const piece of key) expect(Number.isInteger(piece) && piece >= 0 && piece <= 65535).to.equal(true);
    expect(Array.from(dropoutKey('seed'))).to.deep.equal(Array.from(key));
    expect(Array.from(dropoutKey('seee'))).to.not.deep.equal(Array.from(key));
  });
});
