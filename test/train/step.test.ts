import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/backend.js';
import { loadPrm } from '../../src/model/checkpoint.js';
import { collateBatch } from '../../src/model/encode.js';
import type { PrmModel } from '../../src/model/prm.js';
import { clipByGlobalNorm } from '../../src/train/gradients.js';
import { AdamW } from '../../src/train/optimizer.js';
import { prmMicroBatch } from '../../src/train/prm-objective.js';
import { stepTargets, type LossConfig } from '../../src/train/loss.js';
import { causalLmLossSum } from '../../src/train/lm-pretrain.js';
import { TrainStep, type MicroBatch } from '../../src/train/step.js';
import { Rng } from '../../src/util/rng.js';

/**
 * The one training step (src/train/step.ts): activation recomputation gives the gradients of the
 * plain one-tape path, and the clipping folded into AdamW equals clipping the gradients first.
 */

const FIXTURE = fileURLToPath(new URL('../fixtures/model/qwen2-gqa', import.meta.url));
const LOSS: LossConfig = { kind: 'ce', classWeights: [1, 1] };

/** A right-padded batch of random ids with a few supervised positions per row. */
function randomBatch(model: PrmModel, seed: number, lengths: number[]) {
  const rng = new Rng(seed);
  const vocab = model.config.vocabSize;
  const rows = lengths.map((n) => {
    const inputIds = Array.from({ length: n }, () => rng.int(0, vocab - 1));
    const stepPositions = [Math.floor(n / 3), Math.floor((2 * n) / 3), n - 1];
    return { inputIds, stepPositions };
  });
  const collated = collateBatch(rows, { padTokenId: 0 });
  const labels = rows.map((r) => r.stepPositions.map(() => (rng.next() < 0.5 ? 0 : 1)));
  const targets = stepTargets(collated.stepPositions, labels, collated.seqLen);
  return { collated, targets, tokens: lengths.reduce((a, b) => a + b, 0), pairs: lengths.reduce((a, b) => a + b - 1, 0) };
}

function maxRelativeDiff(a: Float32Array, b: Float32Array): number {
  const scale = a.reduce((m, x) => Math.max(m, Math.abs(x)), 0) || 1;
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0) / scale;
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`train/step (${backend} backend)`, function () {
    this.timeout(120000);
    before(async () => {
      await selectBackend(backend, { log: () => {} });
    });

    const cases: { name: string; freeze: { headOnly?: boolean; trainLastLayers?: number }; blocks?: number; lm?: number }[] = [
      { name: 'every parameter', freeze: {} },
      { name: 'every parameter, attention in query blocks', freeze: {}, blocks: 7 },
      { name: 'the last layer and the head', freeze: { trainLastLayers: 1 } },
      { name: 'the head only', freeze: { headOnly: true } },
      { name: 'every parameter, with the auxiliary LM loss', freeze: {}, lm: 0.5 },
      { name: 'the last layer and the head, with the auxiliary LM loss', freeze: { trainLastLayers: 1 }, lm: 0.5 },
    ];
    for (const c of cases) {
      it(`recomputation gives the one-tape gradients (1e-6), ${c.name}, without leaking`, async () => {
        const { model } = await loadPrm(FIXTURE);
        if (c.blocks) model.setDecoderOptions({ attentionBlockSize: c.blocks });
        const vars = model.trainableVariables(c.freeze);
        const names = [...model.variables].filter(([, v]) => vars.includes(v)).map(([n]) => n);
        const params = vars.map((variable, i) => ({ name: names[i], variable }));
        const batch = randomBatch(model, 3, [40, 27, 33]);
        const gradsOf = (recompute: boolean) => {
          const step = new TrainStep(params, new AdamW(params), { maxGradNorm: 1, recompute });
          const micro = prmMicroBatch(model, batch, 5, LOSS, c.lm ? { weight: c.lm, groupPairs: 120 } : undefined);
          try {
            const { value, grads } = step.gradients(micro);
            const out = { loss: value.dataSync()[0], grads: grads.map((g) => g.dataSync() as Float32Array) };
            tf.dispose([value, ...grads]);
            step.optimizer.dispose();
            return out;
          } finally {
            micro.dispose();
          }
        };
        const plain = gradsOf(false);
        const before = tf.memory().numTensors;
        const recomputed = gradsOf(true);
        expect(tf.memory().numTensors, 'tensors after a recomputed backward').to.equal(before);
        expect(Math.abs(plain.loss - recomputed.loss)).to.be.below(1e-6 * Math.max(1, Math.abs(plain.loss)));
        expect(recomputed.grads).to.have.length(vars.length);
        plain.grads.forEach((g, i) => {
          expect(maxRelativeDiff(g, recomputed.grads[i]), names[i]).to.be.below(1e-6);
        });
        model.dispose();
      });
    }

    it('the auxiliary LM term adds weight x the next-token loss per predicted pair of the group', async () => {
      const { model } = await loadPrm(FIXTURE);
      const batch = randomBatch(model, 9, [21, 14]);
      expect(batch.pairs).to.equal(20 + 13);
      const lossOf = (lm?: { weight: number; groupPairs: number }) => {
        const micro = prmMicroBatch(model, batch, 3, LOSS, lm);
        try {
          return tf.tidy(() => micro.loss().dataSync()[0]);
        } finally {
          micro.dispose();
        }
      };
      const before = tf.memory().numTensors;
      const prmOnly = lossOf();
      const withLm = lossOf({ weight: 0.25, groupPairs: 66 });
      expect(tf.memory().numTensors).to.equal(before);
      // Reference: the LM loss summed over real pairs, computed independently (pretraining's function).
      const { ids, mask } = tf.tidy(() => {
        const c = batch.collated;
        return { ids: tf.tensor2d(Array.from(c.inputIds), [c.batchSize, c.seqLen], 'int32'), mask: tf.tensor2d(Array.from(c.attentionMask), [c.batchSize, c.seqLen], 'int32') };
      });
      const { loss, count } = causalLmLossSum(model, ids, mask);
      expect(count).to.equal(33);
      const lmSum = loss.dataSync()[0];
      tf.dispose([ids, mask, loss]);
      expect(lmSum).to.be.above(0);
      expect(Math.abs(withLm - (prmOnly + (0.25 * lmSum) / 66))).to.be.below(1e-5 * Math.max(1, withLm));
      model.dispose();
    });

    for (const recompute of [false, true]) {
      it(`a step reports the LM term beside the loss, summed over its micro-batches (${recompute ? 'recomputation' : 'one tape'})`, async () => {
        const { model } = await loadPrm(FIXTURE);
        const batches = [randomBatch(model, 9, [21, 14]), randomBatch(model, 10, [17, 30])];
        const lm = { weight: 0.25, groupPairs: batches.reduce((a, b) => a + b.pairs, 0) };
        const lossOf = (i: number, term?: typeof lm) => {
          const micro = prmMicroBatch(model, batches[i], 4, LOSS, term);
          try {
            return tf.tidy(() => micro.loss().dataSync()[0]);
          } finally {
            micro.dispose();
          }
        };
        // Before the step changes the weights: the whole loss, and the LM part as the difference.
        const whole = lossOf(0, lm) + lossOf(1, lm);
        const lmPart = whole - lossOf(0) - lossOf(1);
        expect(lmPart).to.be.above(0);
        const params = model.trainableVariables({}).map((variable, i) => ({ name: String(i), variable }));
        const step = new TrainStep(params, new AdamW(params), { maxGradNorm: 1, recompute });
        const before = tf.memory().numTensors;
        const result = await step.run(batches.map((b) => prmMicroBatch(model, b, 4, LOSS, lm)), 1e-3, ['lm']);
        expect(tf.memory().numTensors, 'tensors after the step').to.equal(before);
        expect(result.loss).to.be.closeTo(whole, 1e-5 * whole);
        expect(result.lossParts.lm).to.be.closeTo(lmPart, 1e-5 * whole);
        // Without LM parts asked for, none are reported.
        const plain = await step.run([prmMicroBatch(model, batches[0], 4, LOSS)], 1e-3);
        expect(plain.lossParts).to.deep.equal({});
        step.optimizer.dispose();
        model.dispose();
      });
    }

    it('a step with clipping folded into AdamW equals clip-then-apply, and holds no tensors after it', async () => {
      const a = (await loadPrm(FIXTURE)).model;
      const b = (await loadPrm(FIXTURE)).model;
      const named = (m: PrmModel) => [...m.variables].map(([name, variable]) => ({ name, variable }));
      const pa = named(a);
      const pb = named(b);
      const optA = new AdamW(pa);
      const optB = new AdamW(pb);
      const step = new TrainStep(pa, optA, { maxGradNorm: 0.05, recompute: false });
      const batches = [randomBatch(a, 5, [30, 22]), randomBatch(a, 6, [18])];
      const weight = 4;
      const before = tf.memory().numTensors;
      const result = await step.run(batches.map((h) => prmMicroBatch(a, h, weight, LOSS)), 1e-3);
      expect(tf.memory().numTensors).to.equal(before);
      expect(result.applied).to.equal(true);
      // Reference: the same micro-batches summed by hand, clipped by clipByGlobalNorm, then applied.
      const sums: tf.Tensor[] = pb.map((p) => tf.zerosLike(p.variable));
      for (const h of batches) {
        const micro: MicroBatch = prmMicroBatch(b, h, weight, LOSS);
        const { grads } = tf.variableGrads(() => micro.loss(), pb.map((p) => p.variable));
        pb.forEach((p, i) => {
          const next = tf.add(sums[i], grads[p.variable.name]);
          sums[i].dispose();
          sums[i] = next;
        });
        tf.dispose(Object.values(grads));
        micro.dispose();
      }
      const clipped = clipByGlobalNorm(sums, 0.05);
      expect(clipped.norm).to.be.closeTo(result.gradNorm, 1e-5 * result.gradNorm);
      expect(clipped.norm).to.be.above(0.05); // the case exercises clipping
      optB.apply(clipped.grads, 1e-3);
      tf.dispose([...sums, ...clipped.grads]);
      pa.forEach((p, i) => {
        expect(maxRelativeDiff(pb[i].variable.dataSync() as Float32Array, p.variable.dataSync() as Float32Array), p.name).to.be.below(1e-6);
      });
      optA.dispose();
      optB.dispose();
      a.dispose();
      b.dispose();
    });
  });
}
