import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadPrm } from '../../src/model/checkpoint.js';
import { encodeSample } from '../../src/model/encode.js';
import { PrmTokenizer } from '../../src/model/tokenizer.js';
import { defaultBackend, selectBackend } from '../../src/backend/backend.js';
import { ModelSchema } from '../../src/recipes/schema.js';
import { pretrainSimBaseLm, reflectiveWorld } from '../../src/sim/base-lm.js';
import { goldSteps } from '../../src/sim/steps.js';
import { simProblems, simSolutions } from '../../src/sim/world.js';

describe('sim base LM: a causal LM pretrained on gold solutions, saved for model.init pretrained', function () {
  this.timeout(240_000);
  const made: string[] = [];
  after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));
  before(async () => {
    await selectBackend(defaultBackend(), { log: () => {} });
  });

  const world = { problem: { minSteps: 2, maxSteps: 3, ops: ['+', '-'] as ('+' | '-')[], addMax: 3, startMin: 1, startMax: 9, maxValue: 9 }, policy: { strength: 0.1 } };

  it('the reflective policy says "recheck" right after each first slip, and never after a right step', () => {
    const solutions = simSolutions(simProblems(400, 8, world), 1, 8, reflectiveWorld(world));
    const rechecks = (step: string) => /^(Wait, let me recheck|Let me verify)/.test(step);
    let noticed = 0;
    for (const s of solutions) {
      const first = s.firstError!;
      const upTo = first === -1 ? s.steps.length : first + 1;
      // No recheck before (or at) the first error: the policy only doubts a wrong running value.
      for (let j = 0; j < upTo; j++) expect(rechecks(s.steps[j]), `${s.id} step ${j}`).to.equal(false);
      if (first !== -1 && first + 1 < s.steps.length) {
        expect(rechecks(s.steps[first + 1]), `${s.id} step ${first + 1}`).to.equal(true);
        noticed++;
      }
    }
    expect(noticed).to.be.greaterThan(50);
  });

  it('learns the gold text (loss falls), and the directory loads as a PRM with its tokenizer', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'prmkit-base-lm-')), 'base');
    made.push(out);
    const before = tf.memory().numTensors;
    const model = ModelSchema.shape.config.parse({ hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 32, initializer_range: 0.1 });
    const result = await pretrainSimBaseLm(out, {
      world,
      problems: 120,
      seed: 3,
      model,
      lm: { epochs: 20, max_steps: 40, lr: 1e-2, warmup_ratio: 0.05, batch_size: 16, max_tokens_per_batch: 8192, weight_decay: 0.01, max_grad_norm: 1, recompute: false },
    });
    expect(tf.memory().numTensors, 'no tensors left behind').to.equal(before);
    expect(result.steps).to.equal(40);
    expect(result.sequences).to.equal(120);
    expect(result.last_loss).to.be.lessThan(0.7 * result.first_loss);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'base-lm.json']) expect(existsSync(join(out, f)), f).to.equal(true);
    const provenance = JSON.parse(readFileSync(join(out, 'base-lm.json'), 'utf8')) as { problems: number; seed: number; result: { steps: number } };
    expect(provenance).to.deep.include({ problems: 120, seed: 3 });
    expect(provenance.result.steps).to.equal(40);

    const { model: loaded } = await loadPrm(out, { seed: 1 });
    const tokenizer = await PrmTokenizer.fromDir(out);
    try {
      expect(loaded.config.hiddenSize).to.equal(16);
      expect(loaded.config.vocabSize).to.equal(tokenizer.vocabSize);
      // Text of the same world from other seeds, gold or written by the policy, has no unknown pieces.
      const unk = tokenizer.tokenToId('[UNK]');
      const problems = simProblems(30, 99, world);
      const texts = [...problems.map((p) => ({ problem: p.text, steps: goldSteps(p) })), ...simSolutions(problems, 1, 99, world)];
      for (const t of texts) expect(encodeSample(tokenizer, t).inputIds).to.not.include(unk);
    } finally {
      loaded.dispose();
    }
  });
});
