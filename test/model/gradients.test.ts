import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { selectBackendOrSkip } from '../support/backend.js';
import { loadPrm } from '../../src/model/checkpoint.js';
import { prmParamSpecs, type PrmModel } from '../../src/model/prm.js';
import { stepTargets } from '../../src/train/loss.js';
import { DEFAULT_LOSS, stepLoss } from '../support/step-loss.js';

/**
 * The backward pass of the whole PRM against torch autograd (fixture from
 * scripts/fixtures/make_grad_fixture.py): the training loss of src/train/loss.ts on the golden GQA
 * checkpoint, differentiated by tfjs, must give torch's gradient for every parameter. The wasm and
 * cpu backends are compared with each other elsewhere; this pins both to an outside reference.
 */

interface GradEntry { shape: number[]; sum: number; l2: number; index: number[]; values: number[] }
interface GradBatch { padding: 'left' | 'right'; labels: number[][]; loss: number; grads: Record<string, GradEntry> }
interface Batch { padding: 'left' | 'right'; input_ids: number[][]; attention_mask: number[][]; step_positions: number[][] }

const dir = fileURLToPath(new URL('../fixtures/model/qwen2-gqa', import.meta.url));
const reference = JSON.parse(readFileSync(`${dir}/gradients.json`, 'utf8')) as { batches: GradBatch[] };
const batches = (JSON.parse(readFileSync(`${dir}/reference.json`, 'utf8')) as { batches: Batch[] }).batches;

/** Gradients in HF layout ([out, in] for linear weights), flattened, by parameter name. */
function hfGradients(model: PrmModel, batch: Batch, labels: number[][]): { loss: number; grads: Map<string, Float32Array> } {
  const ids = tf.tensor2d(batch.input_ids, undefined, 'int32');
  const mask = tf.tensor2d(batch.attention_mask, undefined, 'int32');
  const targets = stepTargets(batch.step_positions, labels, batch.input_ids[0].length);
  const names = new Map<tf.Variable, string>();
  for (const [name, v] of model.variables) names.set(v, name);
  const { value, grads } = tf.variableGrads(() => stepLoss(model.logits(ids, mask), targets, DEFAULT_LOSS), [...model.variables.values()]);
  const out = new Map<string, Float32Array>();
  for (const spec of prmParamSpecs(model.config)) {
    const variable = model.variables.get(spec.name);
    if (!variable) continue;
    const g = grads[variable.name];
    const hf = spec.kind === 'linear' ? tf.transpose(g) : g;
    out.set(spec.name, hf.dataSync() as Float32Array);
    if (hf !== g) hf.dispose();
  }
  const loss = value.dataSync()[0];
  tf.dispose([ids, mask, value, ...Object.values(grads)]);
  return { loss, grads: out };
}

for (const backend of ['cpu', 'wasm', 'tensorflow'] as const) {
  describe(`PRM backward pass vs torch autograd (${backend})`, function () {
    let model: PrmModel;
    before(async function () {
      await selectBackendOrSkip(this, backend);
      model = (await loadPrm(dir)).model;
    });
    after(() => model?.dispose());

    reference.batches.forEach((ref, i) => {
      it(`matches every parameter's gradient on the ${ref.padding}-padded batch`, () => {
        const before = tf.memory().numTensors;
        const { loss, grads } = hfGradients(model, batches[i], ref.labels);
        expect(tf.memory().numTensors).to.equal(before);
        expect(loss).to.be.closeTo(ref.loss, 1e-5);
        const names = Object.keys(ref.grads).sort();
        expect([...grads.keys()].sort()).to.deep.equal(names);
        let worst = 0;
        for (const name of names) {
          const want = ref.grads[name];
          const got = grads.get(name)!;
          const scale = Math.max(want.l2, 1e-6);
          let sum = 0;
          let sq = 0;
          for (const v of got) {
            sum += v;
            sq += v * v;
          }
          const errs = [Math.abs(Math.sqrt(sq) - want.l2), Math.abs(sum - want.sum), ...want.index.map((k, j) => Math.abs(got[k] - want.values[j]))];
          const relErr = Math.max(...errs) / scale;
          worst = Math.max(worst, relErr);
          expect(relErr, `${name}: gradient differs from torch (relative error ${relErr.toExponential(2)})`).to.be.below(1e-3);
        }
        console.log(`      worst relative gradient error vs torch: ${worst.toExponential(2)}`);
      });
    });
  });
}
