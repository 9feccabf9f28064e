/**
 * The kernels and gradients prmkit adds or replaces (src/backend/wasm-kernels.ts), checked against
 * independent formulations rather than against each other.
 */
import * as tf from '@tensorflow/tfjs';
import { expect } from 'chai';
import { selectBackend, type ConcreteBackend } from '../../src/backend/backend.js';
import {
  registerCpuFastKernels,
  registerTrainingGradients,
  registerWasmTrainingKernels,
} from '../../src/backend/wasm-kernels.js';
import { stridedSliceSourceIndices } from '../../src/backend/kernels/strided-slice-grad.js';
import { makeInputs, relativeError, toTensor } from './parity-helpers.js';

const BACKENDS: ConcreteBackend[] = ['cpu', 'wasm'];

async function on<T>(backend: ConcreteBackend, f: () => T): Promise<T> {
  await selectBackend(backend, { log: () => {} });
  return f();
}

/** Dense reference: out = oneHot(ids)^T @ x, with negative ids giving all-zero one-hot rows. */
function denseSegmentSum(x: tf.Tensor2D, ids: tf.Tensor1D, numSegments: number): tf.Tensor2D {
  return tf.tidy(() => tf.matMul(tf.oneHot(ids, numSegments), x, true, false));
}

describe('backend: added kernels', function () {
  let tensorsBefore = 0;
  before(async function () {
    await selectBackend('cpu', { log: () => {} });
    tensorsBefore = tf.memory().numTensors;
  });
  after(async function () {
    await selectBackend('cpu', { log: () => {} });
    expect(tf.memory().numTensors, 'tensors leaked').to.equal(tensorsBefore);
  });

  for (const backend of BACKENDS) {
    describe(`UnsortedSegmentSum on ${backend}`, function () {
      it('matches oneHot^T @ x, with repeated, unused and negative segment ids', async function () {
        await on(backend, () => {
          const [xv] = makeInputs([{ shape: [9, 6] }], 'segsum');
          const idsArr = [3, 0, 3, 3, -1, 6, 0, 2, -5];
          tf.tidy(() => {
            const x = toTensor(xv) as tf.Tensor2D;
            const ids = tf.tensor1d(idsArr, 'int32');
            const got = tf.unsortedSegmentSum(x, ids, 8);
            expect(got.shape).to.deep.equal([8, 6]);
            const want = denseSegmentSum(x, ids, 8);
            expect(relativeError(got.dataSync(), want.dataSync())).to.be.below(1e-6);
            // Segments 1, 4, 5, 7 receive nothing.
            expect(Array.from(got.slice([1, 0], [1, 6]).dataSync())).to.deep.equal([0, 0, 0, 0, 0, 0]);
          });
        });
      });

      it('handles int32 data, 3-D data and rank-2 segment ids (TensorFlow prefix semantics)', async function () {
        await on(backend, () => {
          tf.tidy(() => {
            const xi = tf.tensor2d([[1, 2], [3, 4], [5, 6]], [3, 2], 'int32');
            const gotInt = tf.unsortedSegmentSum(xi, tf.tensor1d([1, 1, 0], 'int32'), 2);
            expect(gotInt.dtype).to.equal('int32');
            expect(gotInt.arraySync()).to.deep.equal([[5, 6], [4, 6]]);

            const x3 = tf.range(0, 24, 1, 'float32').reshape([4, 3, 2]);
            const got3 = tf.unsortedSegmentSum(x3, tf.tensor1d([2, 0, 2, 1], 'int32'), 3);
            expect(got3.shape).to.deep.equal([3, 3, 2]);
            const want3 = denseSegmentSum(x3.reshape([4, 6]) as tf.Tensor2D, tf.tensor1d([2, 0, 2, 1], 'int32'), 3);
            expect(Array.from(got3.dataSync())).to.deep.equal(Array.from(want3.dataSync()));
          });
        });
      });

      it('errors on a segment id >= numSegments', async function () {
        await on(backend, () => {
          const x = tf.ones([3, 2]);
          const ids = tf.tensor1d([0, 5, 1], 'int32');
          expect(() => tf.unsortedSegmentSum(x, ids, 3)).to.throw(/segment id 5 at row 1 is not in \[0, 3\)/);
          tf.dispose([x, ids]);
        });
      });

      it('gives the embedding gradient of a 4096-row table in one pass', async function () {
        await on(backend, () => {
          const vocab = 4096;
          const [tableV, idsV] = makeInputs(
            [{ shape: [vocab, 32] }, { shape: [8, 64], kind: 'ints', max: vocab }],
            'embed-grad',
          );
          tf.tidy(() => {
            const table = toTensor(tableV);
            const ids = toTensor(idsV);
            const g = tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.gather(t, ids))))(table);
            // d/dt sum(gather(t)^2) = 2 * t[row] * (times the row was picked)
            const counts = tf.unsortedSegmentSum(tf.ones([8 * 64]), ids.reshape([8 * 64]) as tf.Tensor1D, vocab);
            const want = tf.mul(tf.mul(table, 2), counts.reshape([vocab, 1]));
            expect(relativeError(g.dataSync(), want.dataSync())).to.be.below(1e-6);
          });
        });
      });
    });

    describe(`GatherV2 with batchDims on ${backend}`, function () {
      const cases: { name: string; x: number[]; idx: number[][]; axis: number; batchDims: number }[] = [
        { name: '2-D x, 3 indices per row (stock wasm kernel got this wrong)', x: [2, 5], idx: [[4, 0, 1], [2, 3, 4]], axis: 1, batchDims: 1 },
        { name: '3-D x, step positions per row', x: [2, 6, 3], idx: [[5, 0, 1], [2, 2, 4]], axis: 1, batchDims: 1 },
        { name: '4-D x, outer dim between batch and axis', x: [2, 3, 6, 2], idx: [[5, 1], [0, 4]], axis: 2, batchDims: 1 },
      ];
      for (const c of cases) {
        it(c.name, async function () {
          await on(backend, () => {
            tf.tidy(() => {
              const size = c.x.reduce((a, b) => a * b, 1);
              const x = tf.range(0, size, 1, 'float32').reshape(c.x);
              const idx = tf.tensor2d(c.idx, undefined, 'int32');
              const got = tf.gather(x, idx, c.axis, c.batchDims);
              // Reference: one batchDims-0 gather per batch entry, stacked.
              const want = tf.stack(
                c.idx.map((row, b) => tf.gather(tf.squeeze(tf.slice(x, [b], [1]), [0]), row, c.axis - 1)),
              );
              expect(got.shape).to.deep.equal(want.shape);
              expect(got.arraySync()).to.deep.equal(want.arraySync());
            });
          });
        });
      }

      it('rejects an out-of-range index', async function () {
        await on(backend, () => {
          const x = tf.ones([2, 3]);
          const idx = tf.tensor2d([[0, 3], [1, 1]], [2, 2], 'int32');
          expect(() => tf.gather(x, idx, 1, 1)).to.throw(/index value 3 is not in \[0, 2\]/);
          tf.dispose([x, idx]);
        });
      });
    });

    describe(`gradients added by prmkit on ${backend}`, function () {
      const sliceCases: { name: string; shape: number[]; args: unknown[] }[] = [
        { name: 'plain range', shape: [4, 5], args: [[1, 1], [3, 4], [1, 1], 0, 0, 0, 0, 0] },
        { name: 'strides 2 and -2 with an end mask', shape: [4, 6, 5], args: [[1, 0, 4], [4, 6, 0], [1, 2, -2], 0, 2, 0, 0, 0] },
        { name: 'shrink axis and new axis', shape: [3, 4, 5], args: [[1, 0, 1], [2, 4, 5], [1, 1, 1], 0, 0, 0, 2, 1] },
        { name: 'ellipsis', shape: [2, 3, 4], args: [[0, 1], [0, 4], [1, 2], 0, 0, 1, 0, 0] },
        { name: 'identity', shape: [2, 3], args: [[0, 0], [2, 3], [1, 1], 0, 0, 0, 0, 0] },
      ];
      for (const c of sliceCases) {
        it(`StridedSlice gradient: ${c.name}`, async function () {
          await on(backend, () => {
            tf.tidy(() => {
              const size = c.shape.reduce((a, b) => a * b, 1);
              // x holds its own flat index, so the forward output names the positions read.
              const x = tf.range(0, size, 1, 'float32').reshape(c.shape);
              const slice = (t: tf.Tensor) =>
                (tf.stridedSlice as (...a: unknown[]) => tf.Tensor)(t, ...c.args);
              const read = Array.from(slice(x).dataSync());
              const weights = read.map((_, i) => i + 1);
              const g = tf.grad((t: tf.Tensor) => {
                const y = slice(t);
                return tf.sum(tf.mul(y, tf.tensor(weights, y.shape)));
              })(x);
              const want = new Array<number>(size).fill(0);
              read.forEach((pos, i) => (want[pos] += weights[i]));
              expect(Array.from(g.dataSync())).to.deep.equal(want);
            });
          });
        });
      }

      const tileCases: { shape: number[]; reps: number[] }[] = [
        { shape: [4], reps: [3] },
        { shape: [2, 3], reps: [2, 1] },
        { shape: [2, 1, 3, 2], reps: [1, 3, 1, 2] },
        { shape: [2, 2, 1, 3, 2], reps: [1, 1, 3, 1, 2] },
      ];
      for (const c of tileCases) {
        it(`Tile gradient: rank ${c.shape.length}, reps [${c.reps}]`, async function () {
          await on(backend, () => {
            tf.tidy(() => {
              const size = c.shape.reduce((a, b) => a * b, 1);
              const x = tf.range(0, size, 1, 'float32').reshape(c.shape);
              const read = Array.from(tf.tile(x, c.reps).dataSync());
              const weights = read.map((_, i) => (i % 7) - 3);
              const g = tf.grad((t: tf.Tensor) => {
                const y = tf.tile(t, c.reps);
                return tf.sum(tf.mul(y, tf.tensor(weights, y.shape)));
              })(x);
              const want = new Array<number>(size).fill(0);
              read.forEach((pos, i) => (want[pos] += weights[i]));
              expect(Array.from(g.dataSync())).to.deep.equal(want);
            });
          });
        });
      }

      it('BatchMatMul gradient with broadcast batch dims equals the gradient through an explicit tile', async function () {
        await on(backend, () => {
          const [av, bv] = makeInputs([{ shape: [2, 3, 4, 5] }, { shape: [1, 3, 5, 2] }], 'bmm-bcast');
          tf.tidy(() => {
            const a = toTensor(av);
            const b = toTensor(bv);
            const w = tf.range(0, 2 * 3 * 4 * 2, 1, 'float32').reshape([2, 3, 4, 2]).mul(0.1);
            const loss = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y), w));
            const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => loss(x, y))([a, b]);
            const [ta, tb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => loss(x, tf.tile(y, [2, 1, 1, 1])))([a, b]);
            expect(gb.shape).to.deep.equal([1, 3, 5, 2]);
            expect(relativeError(ga.dataSync(), ta.dataSync())).to.be.below(1e-6);
            expect(relativeError(gb.dataSync(), tb.dataSync())).to.be.below(1e-6);
            // Rank-3 activations against a rank-2 weight (a linear layer without reshape).
            const x3 = tf.tensor3d(Array.from({ length: 2 * 3 * 4 }, (_, i) => Math.sin(i)), [2, 3, 4]);
            const wt = tf.tensor2d(Array.from({ length: 4 * 2 }, (_, i) => Math.cos(i)), [4, 2]);
            const gw = tf.grad((v: tf.Tensor) => tf.sum(tf.square(tf.matMul(x3, v))))(wt);
            const gwRef = tf.grad((v: tf.Tensor) => tf.sum(tf.square(tf.matMul(x3.reshape([6, 4]), v))))(wt);
            expect(gw.shape).to.deep.equal([4, 2]);
            expect(relativeError(gw.dataSync(), gwRef.dataSync())).to.be.below(1e-5);
          });
        });
      });
    });
  }

  describe('BatchMatMul on wasm (XNNPACK for transposed and batched products)', function () {
    const cases: { name: string; a: number[]; b: number[]; tA?: boolean; tB?: boolean }[] = [
      { name: '2-D plain (stock path)', a: [5, 7], b: [7, 3] },
      { name: '2-D transposeA (weight gradient)', a: [7, 5], b: [7, 3], tA: true },
      { name: '2-D transposeB (input gradient)', a: [5, 7], b: [3, 7], tB: true },
      { name: '2-D both transposed', a: [7, 5], b: [3, 7], tA: true, tB: true },
      { name: 'batched, equal batches (attention scores)', a: [4, 6, 5], b: [4, 5, 6] },
      { name: 'batched with transposeA and transposeB', a: [4, 5, 6], b: [4, 3, 5], tA: true, tB: true },
      { name: 'rank 4, equal batch dims', a: [2, 3, 4, 5], b: [2, 3, 5, 2] },
      { name: 'batched left against one right matrix', a: [3, 4, 5], b: [1, 5, 2], tB: false },
      { name: 'batched left against a rank-2 right matrix, transposeB', a: [3, 4, 5], b: [2, 5], tB: true },
      { name: 'one left matrix against a batched right', a: [1, 4, 5], b: [3, 5, 2] },
      { name: 'broadcast batch dims [2,3] x [1,3] (stock path)', a: [2, 3, 4, 5], b: [1, 3, 5, 2] },
      { name: 'empty inner dimension gives zeros', a: [3, 0], b: [0, 4] },
    ];
    for (const c of cases) {
      it(c.name, async function () {
        const [av, bv] = makeInputs([{ shape: c.a }, { shape: c.b }], `bmm-${c.name}`);
        const product = () =>
          tf.tidy(() => {
            const out = tf.matMul(toTensor(av), toTensor(bv), c.tA ?? false, c.tB ?? false);
            return { shape: out.shape, values: out.dataSync() };
          });
        const want = await on('cpu', product);
        const got = await on('wasm', product);
        expect(got.shape).to.deep.equal(want.shape);
        if (want.values.length > 0) expect(relativeError(got.values, want.values)).to.be.below(1e-5);
        else expect(got.values.length).to.equal(0);
        if (c.a.includes(0)) expect(Array.from(got.values).every((v) => v === 0)).to.equal(true);
      });
    }

    it('leaves no tensors or heap views behind', async function () {
      await on('wasm', () => {
        const before = tf.memory().numTensors;
        const backend = tf.backend() as unknown as { numDataIds(): number };
        const idsBefore = backend.numDataIds();
        tf.tidy(() => {
          const a = tf.ones([4, 6, 5]);
          const b = tf.ones([4, 3, 5]);
          tf.matMul(a, b, false, true).dataSync();
        });
        expect(tf.memory().numTensors).to.equal(before);
        expect(backend.numDataIds()).to.equal(idsBefore);
      });
    });
  });

  describe('cpu Slice, SplitV and broadcasting binary ops (kernels/cpu-fast.ts)', function () {
    /** Plain nested-array slicing, the reference. */
    function sliceNested(x: unknown, begin: number[], size: number[]): unknown {
      if (begin.length === 0) return x;
      const rows = (x as unknown[]).slice(begin[0], begin[0] + size[0]);
      return rows.map((r) => sliceNested(r, begin.slice(1), size.slice(1)));
    }

    const sliceCases: { shape: number[]; begin: number[]; size: number[] }[] = [
      { shape: [3, 4, 5, 6], begin: [1, 0, 2, 1], size: [2, 4, 3, 4] },
      { shape: [3, 4, 5, 6], begin: [0, 1, 0, 0], size: [3, 2, 5, 6] },
      { shape: [7], begin: [2], size: [4] },
      { shape: [4, 5], begin: [1, 1], size: [2, 0] },
    ];
    for (const c of sliceCases) {
      it(`Slice [${c.shape}] from [${c.begin}] size [${c.size}], float32 and int32`, async function () {
        await on('cpu', () => {
          tf.tidy(() => {
            for (const dtype of ['float32', 'int32'] as const) {
              const x = tf.range(0, c.shape.reduce((a, b) => a * b, 1), 1, dtype).reshape(c.shape);
              const got = tf.slice(x, c.begin, c.size);
              expect(got.dtype).to.equal(dtype);
              expect(got.shape).to.deep.equal(c.size);
              if (got.size === 0) continue; // arraySync gives [] for any empty shape
              expect(got.arraySync()).to.deep.equal(sliceNested(x.arraySync(), c.begin, c.size));
            }
          });
        });
      });
    }

    it('SplitV along every axis gives the nested-array slices', async function () {
      await on('cpu', () => {
        tf.tidy(() => {
          const shape = [2, 6, 4, 4];
          const x = tf.range(0, 192, 1, 'float32').reshape(shape);
          for (let axis = 0; axis < 4; axis++) {
            const sizes = axis === 1 ? [1, 3, 2] : [shape[axis] / 2, shape[axis] / 2];
            const pieces = tf.split(x, sizes, axis);
            let offset = 0;
            pieces.forEach((piece, i) => {
              const begin = [0, 0, 0, 0];
              const size = [...shape];
              begin[axis] = offset;
              size[axis] = sizes[i];
              offset += sizes[i];
              expect(piece.arraySync(), `axis ${axis} piece ${i}`).to.deep.equal(sliceNested(x.arraySync(), begin, size));
            });
          }
        });
      });
    });

    const broadcastShapes: [number[], number[]][] = [
      [[2, 3, 4], [4]],
      [[2, 1, 4], [1, 3, 1]],
      [[5], [2, 3, 5]],
      [[], [3, 2]],
      [[2, 3], [2, 1]],
      [[2, 4, 1, 3], [2, 1, 2, 3]],
    ];
    for (const [aShape, bShape] of broadcastShapes) {
      it(`Add/Sub/Mul/Div broadcasting [${aShape}] with [${bShape}] match the wasm backend`, async function () {
        const [av, bv] = makeInputs([{ shape: aShape }, { shape: bShape, kind: 'positive' }], `bcast-${aShape}-${bShape}`);
        const compute = () =>
          tf.tidy(() => {
            const a = toTensor(av);
            const b = toTensor(bv);
            return [tf.add(a, b), tf.sub(b, a), tf.mul(a, b), tf.div(a, b)].map((t) => ({ shape: t.shape, values: t.dataSync() }));
          });
        const want = await on('wasm', compute);
        const got = await on('cpu', compute);
        got.forEach((g, i) => {
          expect(g.shape).to.deep.equal(want[i].shape);
          expect(relativeError(g.values, want[i].values), `op ${i}`).to.be.below(1e-6);
        });
      });
    }
  });

  it('stridedSliceSourceIndices walks the output in row-major order', function () {
    expect(Array.from(stridedSliceSourceIndices([3, 4], [2, 3], [-1, -2], [2, 2]))).to.deep.equal([11, 9, 7, 5]);
    expect(stridedSliceSourceIndices([3, 4], [0, 0], [1, 1], [0, 4]).length).to.equal(0);
  });

  it('registration is idempotent once the backend has been selected', async function () {
    await selectBackend('wasm', { log: () => {} });
    expect(registerWasmTrainingKernels()).to.deep.equal([]);
    expect(registerCpuFastKernels()).to.deep.equal([]);
    expect(registerTrainingGradients()).to.deep.equal([]);
    expect(tf.getKernel('UnsortedSegmentSum', 'wasm')).to.not.equal(undefined);
  });
});
