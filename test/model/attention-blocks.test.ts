import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/backend/backend.js';
import { loadPrm } from '../../src/model/checkpoint.js';

/**
 * Long sequences are attended in causal query blocks (src/model/qwen2.ts). The golden fixtures
 * are short, so here blocks of 5 and 16 queries (not dividing the length 68) are forced: the
 * padded batches must still give the transformers logits, and the gradients must equal those
 * of the one-block path.
 */

const FIXTURE = fileURLToPath(new URL('../fixtures/model/qwen2-gqa', import.meta.url));
const TOLERANCE = 1e-4;

interface Reference {
  samples: { input_ids: number[]; logits: number[][] }[];
  batches: { padding: string; input_ids: number[][]; attention_mask: number[][]; step_positions: number[][]; offsets: number[] }[];
}

function ints(rows: number[][]): tf.Tensor2D {
  return tf.tensor2d(rows, [rows.length, rows[0].length], 'int32');
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`model attention in causal query blocks (${backend} backend)`, function () {
    const ref = JSON.parse(readFileSync(`${FIXTURE}/reference.json`, 'utf8')) as Reference;
    before(async () => {
      await selectBackend(backend, { log: () => {} });
    });

    for (const block of [5, 16]) {
      it(`blocks of ${block}: left- and right-padded batches give the reference logits`, async () => {
        const { model } = await loadPrm(FIXTURE);
        model.setDecoderOptions({ attentionBlockSize: block });
        for (const batch of ref.batches) {
          const ids = ints(batch.input_ids);
          const mask = ints(batch.attention_mask);
          const logits = model.logits(ids, mask).arraySync();
          tf.dispose([ids, mask]);
          batch.offsets.forEach((offset, b) => {
            const sample = ref.samples[b];
            const real = logits[b].slice(offset, offset + sample.input_ids.length).flat();
            const want = sample.logits.flat();
            const diff = real.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i])), 0);
            expect(diff, `${batch.padding} row ${b}`).to.be.below(TOLERANCE);
          });
        }
        model.dispose();
      });
    }

    it('gives the gradients of the one-block path, without leaking tensors', async () => {
      const { model } = await loadPrm(FIXTURE);
      const batch = ref.batches[1]; // left padding: fully masked query rows in the first block
      const ids = ints(batch.input_ids);
      const mask = ints(batch.attention_mask);
      const vars = model.trainableVariables();
      const grads = (block: number) => {
        model.setDecoderOptions({ attentionBlockSize: block });
        const loss = () => {
          const rows = model.logitsAt(ids, mask, batch.step_positions);
          return tf.sum(tf.mul(tf.logSoftmax(rows), tf.onesLike(rows).mul(0.5))) as tf.Scalar;
        };
        const { value, grads: g } = tf.variableGrads(loss, vars);
        const out = vars.map((v) => g[v.name].dataSync() as Float32Array);
        tf.dispose([value, ...Object.values(g)]);
        return out;
      };
      const whole = grads(256);
      const before = tf.memory().numTensors;
      const blocked = grads(7);
      expect(tf.memory().numTensors).to.equal(before);
      whole.forEach((g, i) => {
        const scale = g.reduce((m, x) => Math.max(m, Math.abs(x)), 0) || 1;
        const diff = g.reduce((m, x, j) => Math.max(m, Math.abs(x - blocked[i][j])), 0);
        expect(diff / scale, vars[i].name).to.be.below(1e-4);
      });
      tf.dispose([ids, mask]);
      model.dispose();
    });

    it('rejects a block size that is not a positive integer', async () => {
      const { model } = await loadPrm(FIXTURE);
      expect(() => model.setDecoderOptions({ attentionBlockSize: 0 })).to.throw(/positive integer/);
      expect(() => model.setDecoderOptions({ attentionBlockSize: 2.5 })).to.throw(/positive integer/);
      model.dispose();
    });
  });
}
