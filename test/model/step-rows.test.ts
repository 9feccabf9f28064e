import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { kernelInfo } from '../../src/backend/fused/kernel-choice.js';
import { loadPrm } from '../../src/model/checkpoint.js';
import { collateBatch } from '../../src/model/encode.js';
import { stepRows, type PrmModel } from '../../src/model/prm.js';
import { chainGradients } from '../../src/train/recompute.js';
import { selectBackendOrSkip, testBackend } from '../support/backend.js';

/**
 * The last decoder layer computes only the rows the PRM head reads (the step tokens): logitsAt,
 * scoring and the training loss run it on N rows instead of B*T. Held here to the full forward
 * (whose logits and gradients test/model/golden.test.ts and gradients.test.ts pin to
 * transformers and torch): the same step logits and the same gradient for every parameter, on
 * the plain and the recompute path, with the eager ops and (native backend) the fused kernels.
 */

const FIXTURE = fileURLToPath(new URL('../fixtures/model/qwen2-gqa', import.meta.url));

// Right-padded rows of different lengths; the longest spans two of the fused kernel's 64-row blocks.
const ROWS = [
  { inputIds: Array.from({ length: 75 }, (_, i) => (i * 7 + 3) % 50), stepPositions: [10, 40, 74] },
  { inputIds: [5], stepPositions: [0] },
  { inputIds: Array.from({ length: 30 }, (_, i) => (i * 11 + 1) % 50), stepPositions: [4, 29] },
];

function batch() {
  const collated = collateBatch(ROWS, { padTokenId: 0 });
  const ids = tf.tensor2d(collated.inputIds, [collated.batchSize, collated.seqLen], 'int32');
  const mask = tf.tensor2d(collated.attentionMask, [collated.batchSize, collated.seqLen], 'int32');
  return { ids, mask, positions: collated.stepPositions };
}

function maxRelDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / Math.max(1e-12, tf.max(tf.abs(b)).dataSync()[0]));
}

/** Input shapes with leading 1s dropped (BatchMatMul sees [1, N, K] where the model passed [N, K]). */
function squeezed(shape: number[] | null | undefined): string {
  const s = [...(shape ?? [])];
  while (s.length > 2 && s[0] === 1) s.shift();
  return s.join('x');
}

for (const kernels of ['eager', 'fused'] as const) {
  describe(`model: the last layer at the step rows only (${kernels} kernels)`, function () {
    this.timeout(60_000);
    let model: PrmModel;

    before(async function () {
      await selectBackendOrSkip(this, testBackend());
      if (kernels === 'fused' && kernelInfo('fused').used !== 'fused') {
        console.warn(`      skipped: ${kernelInfo('fused').reason}`);
        this.skip();
      }
      ({ model } = await loadPrm(FIXTURE));
      model.setDecoderOptions({ kernels });
    });

    after(() => model?.dispose());

    it('gives the step logits of the full forward, and computes the last layer after attention on those rows only', async () => {
      const before = tf.memory().numTensors;
      const { ids, mask, positions } = batch();
      const rows = stepRows(ids.shape, mask, positions);
      const full = tf.tidy(() => model.headAt(model.hiddenStates(ids, mask), rows));
      let pruned: tf.Tensor2D | null = null;
      const profile = await tf.profile(() => {
        pruned = model.logitsAt(ids, mask, positions);
      });
      expect(pruned!.shape).to.deep.equal([rows.length, 2]);
      expect(maxRelDiff(pruned!, full)).to.be.below(1e-5);

      // The down projection: [tokens, intermediate] x [intermediate, hidden], B*T rows in every layer but the last.
      const cfg = model.config;
      const down = (n: number) => `${n}x${cfg.intermediateSize}`;
      const downInputs = profile.kernels
        .filter((k) => /MatMul/.test(k.name) && squeezed(k.inputShapes[1] as number[]) === `${cfg.intermediateSize}x${cfg.hiddenSize}`)
        .map((k) => squeezed(k.inputShapes[0] as number[]));
      const tokens = ids.shape[0] * ids.shape[1];
      expect(downInputs.filter((s) => s === down(tokens))).to.have.length(cfg.numHiddenLayers - 1);
      expect(downInputs.filter((s) => s === down(rows.length))).to.have.length(1);
      tf.dispose([ids, mask, full, pruned!]);
      expect(tf.memory().numTensors).to.equal(before);
    });

    it('gives every parameter the gradient of the full forward, plain and by recomputation', () => {
      const before = tf.memory().numTensors;
      const { ids, mask, positions } = batch();
      const rows = stepRows(ids.shape, mask, positions);
      const weights = tf.tensor2d(rows.map((_, i) => [Math.sin(i + 1), Math.cos(i + 1)]));
      const objective = (logits: tf.Tensor2D) => tf.sum(tf.mul(logits, weights)) as tf.Scalar;
      const variables = [...model.variables.values()];
      const fullGrads = tf.variableGrads(() => objective(model.headAt(model.hiddenStates(ids, mask), rows)), variables);
      const prunedGrads = tf.variableGrads(() => objective(model.logitsAt(ids, mask, positions)), variables);
      const chain = model.decoderChain(ids, mask, rows);
      const recomputed = chainGradients(
        {
          first: chain.first,
          stages: chain.stages,
          loss: {
            variables: [...chain.finalNorm.variables, ...model.headVariables()],
            run: (h) => {
              expect(h.shape).to.deep.equal([rows.length, model.config.hiddenSize]);
              return objective(model.head(chain.finalNorm.run(h)));
            },
          },
        },
        variables,
      );
      chain.dispose();
      for (const [i, v] of variables.entries()) {
        const want = fullGrads.grads[v.name];
        expect(maxRelDiff(prunedGrads.grads[v.name], want), `${v.name} (plain)`).to.be.below(1e-5);
        expect(maxRelDiff(recomputed.grads[i], want), `${v.name} (recompute)`).to.be.below(1e-5);
      }
      expect(Math.abs(prunedGrads.value.dataSync()[0] - fullGrads.value.dataSync()[0])).to.be.below(1e-5);
      tf.dispose([ids, mask, weights, fullGrads.value, prunedGrads.value, recomputed.value, ...Object.values(fullGrads.grads), ...Object.values(prunedGrads.grads), ...recomputed.grads]);
      expect(tf.memory().numTensors).to.equal(before);
    });
  });
}
