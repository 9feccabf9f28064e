import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/backend.js';
import { loadPrm } from '../../src/model/checkpoint.js';
import type { PrmModel } from '../../src/model/prm.js';
import { skipUnlessFusedKernels } from '../backend/native-probe.js';

/**
 * Golden parity with PyTorch/transformers (fixtures from scripts/fixtures/make_golden_qwen2.py): our
 * forward pass must reproduce the reference logits within 1e-4 on the cpu and wasm backends, and
 * on the native backend (when it loads) through the fused kernels (src/backend/fused), its default.
 */

const MODELS = ['qwen2-gqa', 'qwen2-tied'] as const;
const TOLERANCE = 1e-4;

interface Reference {
  samples: { input_ids: number[]; step_positions: number[]; logits: number[][]; step_scores: number[] }[];
  batches: { padding: 'left' | 'right'; input_ids: number[][]; attention_mask: number[][]; step_positions: number[][]; offsets: number[] }[];
}

function fixtureDir(name: string): string {
  return fileURLToPath(new URL(`../fixtures/model/${name}`, import.meta.url));
}

function reference(name: string): Reference {
  return JSON.parse(readFileSync(`${fixtureDir(name)}/reference.json`, 'utf8'));
}

function maxAbsDiff(a: number[], b: number[]): number {
  expect(a.length).to.equal(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

function ints(rows: number[][]): tf.Tensor2D {
  return tf.tensor2d(rows, [rows.length, rows[0].length], 'int32');
}

/** Cross-entropy over the step logits against fixed labels, plus a term over every position. */
function trainingLoss(model: PrmModel, ids: tf.Tensor2D, mask: tf.Tensor2D, positions: number[][]): tf.Scalar {
  const stepLogits = model.logitsAt(ids, mask, positions);
  const labels = tf.oneHot(tf.tensor1d(positions.flat().map((_, i) => i % 2), 'int32'), 2);
  const ce = tf.losses.softmaxCrossEntropy(labels, stepLogits) as tf.Scalar;
  const all = model.logits(ids, mask);
  return tf.add(ce, tf.mul(1e-3, tf.mean(tf.square(all)))) as tf.Scalar;
}

const gradsByBackend = new Map<string, Map<string, Float32Array>>();

for (const backend of ['cpu', 'wasm', 'tensorflow'] as const) {
  describe(`model golden parity (${backend} backend${backend === 'tensorflow' ? ', fused kernels' : ''})`, function () {
    before(async function () {
      if (backend === 'tensorflow') await skipUnlessFusedKernels(this);
      await selectBackend(backend, { log: () => {} });
    });
    after(async () => {
      await selectBackend('cpu', { log: () => {} });
    });

    for (const name of MODELS) {
      describe(name, () => {
        let model: PrmModel;
        const ref = reference(name);
        before(async () => {
          model = (await loadPrm(fixtureDir(name))).model;
        });
        after(() => model.dispose());

        it('matches the transformers logits of each unpadded sequence within 1e-4', () => {
          for (const s of ref.samples) {
            const ids = ints([s.input_ids]);
            const mask = tf.onesLike(ids);
            const logits = model.logits(ids, mask);
            const got = Array.from(logits.dataSync());
            tf.dispose([ids, mask, logits]);
            expect(maxAbsDiff(got, s.logits.flat())).to.be.below(TOLERANCE);
          }
        });

        it('gives the reference logits and step scores for left- and right-padded batches', () => {
          const scoresBySide: Record<string, number[][]> = {};
          for (const batch of ref.batches) {
            const ids = ints(batch.input_ids);
            const mask = ints(batch.attention_mask);
            const logits = model.logits(ids, mask).arraySync();
            batch.offsets.forEach((offset, b) => {
              const sample = ref.samples[b];
              const real = logits[b].slice(offset, offset + sample.input_ids.length);
              expect(maxAbsDiff(real.flat(), sample.logits.flat()), `${batch.padding} row ${b}`).to.be.below(TOLERANCE);
            });
            const scores = model.stepScores(ids, mask, batch.step_positions);
            tf.dispose([ids, mask]);
            scores.forEach((row, b) => expect(maxAbsDiff(row, ref.samples[b].step_scores)).to.be.below(TOLERANCE));
            scoresBySide[batch.padding] = scores;
          }
          expect(maxAbsDiff(scoresBySide.left.flat(), scoresBySide.right.flat())).to.be.below(1e-5);
        });
      });
    }

    it('does not leak tensors across repeated scoring calls', async () => {
      const start = tf.memory().numTensors;
      const { model } = await loadPrm(fixtureDir('qwen2-gqa'));
      const batch = reference('qwen2-gqa').batches[1];
      const ids = ints(batch.input_ids);
      const mask = ints(batch.attention_mask);
      model.stepScores(ids, mask, batch.step_positions);
      const baseline = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) {
        model.stepScores(ids, mask, batch.step_positions);
        await model.stepScoresAsync(ids, mask, batch.step_positions);
        model.logits(ids, mask).dispose();
        expect(tf.memory().numTensors).to.equal(baseline);
      }
      tf.dispose([ids, mask]);
      model.dispose();
      expect(tf.memory().numTensors).to.equal(start);
    });

    it('sends finite, nonzero gradients to every trainable variable', async () => {
      const { model } = await loadPrm(fixtureDir('qwen2-gqa'));
      const batch = reference('qwen2-gqa').batches[1]; // left padding: fully masked query rows
      const ids = ints(batch.input_ids);
      const mask = ints(batch.attention_mask);
      const vars = model.trainableVariables();
      expect(vars.length).to.equal(model.variables.size);
      const { value, grads } = tf.variableGrads(() => trainingLoss(model, ids, mask, batch.step_positions), vars);
      expect(Number.isFinite(value.dataSync()[0])).to.equal(true);
      const byName = new Map<string, Float32Array>();
      for (const [name, v] of model.variables) {
        const g = grads[v.name];
        expect(g, name).to.not.equal(undefined);
        const data = g.dataSync() as Float32Array;
        expect(data.every(Number.isFinite), `${name} finite`).to.equal(true);
        expect(data.some((x) => x !== 0), `${name} nonzero`).to.equal(true);
        byName.set(name, Float32Array.from(data));
      }
      gradsByBackend.set(backend, byName);
      tf.dispose([value, ...Object.values(grads)]);

      const headOnly = model.trainableVariables({ headOnly: true });
      expect(headOnly.map((v) => [...model.variables].find(([, x]) => x === v)![0])).to.deep.equal(['score.0.weight', 'score.0.bias', 'score.2.weight', 'score.2.bias']);
      const head = tf.variableGrads(() => trainingLoss(model, ids, mask, batch.step_positions), headOnly);
      expect(Object.keys(head.grads)).to.have.length(4);
      tf.dispose([head.value, ...Object.values(head.grads)]);
      tf.dispose([ids, mask]);
      model.dispose();
    });

    if (backend === 'wasm') {
      it('computes the same gradients as the cpu backend', function () {
        const cpu = gradsByBackend.get('cpu');
        const wasm = gradsByBackend.get('wasm');
        if (!cpu || !wasm) this.skip();
        for (const [name, g] of cpu!) {
          const w = wasm!.get(name)!;
          const scale = g.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
          expect(maxAbsDiff(Array.from(w), Array.from(g)) / scale, name).to.be.below(1e-3);
        }
      });
    }
  });
}
