import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import YAML from 'yaml';
import { defaultBackend, selectBackend } from '../../src/backend/backend.js';
import { loadPrm } from '../../src/model/checkpoint.js';
import { encodeSample } from '../../src/model/encode.js';
import type { PrmModel } from '../../src/model/prm.js';
import { PrmTokenizer } from '../../src/model/tokenizer.js';
import { WORD_UNK_TOKEN } from '../../src/model/word-tokenizer.js';
import { simWorldOptions } from '../../src/run/data-stage.js';
import { SimWorldSchema } from '../../src/recipes/schema.js';
import { goldSteps } from '../../src/sim/steps.js';
import { simProblems } from '../../src/sim/world.js';
import { tiedLmHead } from '../../src/train/lm-loss.js';

/**
 * The sim base LM shipped in checkpoints/sim-base-lm (what the quickstart and the paper recipes
 * start from): it is the one recipes/base-lm/sim-base-lm.yaml describes, and it has learned the
 * world, i.e. it predicts the result of a gold step from its operands.
 */
const DIR = fileURLToPath(new URL('../../checkpoints/sim-base-lm', import.meta.url));
const CONFIG = fileURLToPath(new URL('../../recipes/base-lm/sim-base-lm.yaml', import.meta.url));

describe('the shipped sim base LM (checkpoints/sim-base-lm)', function () {
  this.timeout(120_000);
  let model: PrmModel;
  let tokenizer: PrmTokenizer;
  const config = YAML.parse(readFileSync(CONFIG, 'utf8')) as { seed: number; policy: number; spaces: string; world: unknown; model: { num_hidden_layers: number }; lm: { max_steps: number } };
  before(async () => {
    await selectBackend(defaultBackend(), { log: () => {} });
    model = (await loadPrm(DIR, { seed: 1 })).model;
    tokenizer = await PrmTokenizer.fromDir(DIR);
  });
  after(() => model?.dispose());

  it('is the model its recipe describes', () => {
    const provenance = JSON.parse(readFileSync(`${DIR}/base-lm.json`, 'utf8')) as { seed: number; policy: number; spaces: string; lm: { max_steps: number }; result: { steps: number } };
    expect(provenance).to.deep.include({ seed: config.seed, policy: config.policy, spaces: config.spaces });
    expect(provenance.result.steps).to.equal(config.lm.max_steps);
    expect(model.config.numHiddenLayers).to.equal(config.model.num_hidden_layers);
    expect(model.config.vocabSize).to.equal(tokenizer.vocabSize);
  });

  it('reads the PRM encoding of a solution without [UNK] (chat template roles included)', () => {
    const world = simWorldOptions(SimWorldSchema.parse(config.world));
    const [p] = simProblems(1, 20261206, world, 'held-out');
    const ids = Array.from(encodeSample(tokenizer, { problem: p.text, steps: goldSteps(p) }).inputIds);
    const unk = tokenizer.tokenToId(WORD_UNK_TOKEN);
    expect(unk).to.be.a('number');
    expect(ids.filter((id) => id === unk).map((_, i) => i), tokenizer.decode(ids)).to.deep.equal([]);
  });

  it('predicts the result of gold steps it has not seen from their operands (>= 95% of result tokens)', () => {
    const world = simWorldOptions(SimWorldSchema.parse(config.world));
    const problems = simProblems(40, 20261206, world, 'held-out');
    const equals = tokenizer.encodeText(' =');
    expect(equals, 'one token for " ="').to.have.length(1);
    let right = 0;
    let total = 0;
    const before = tf.memory().numTensors;
    for (const p of problems) {
      const ids = encodeSample(tokenizer, { problem: p.text, steps: goldSteps(p) }).inputIds;
      const predicted = tf.tidy(() => {
        const input = tf.tensor2d([Array.from(ids)], [1, ids.length], 'int32');
        const hidden = model.hiddenStates(input, tf.onesLike(input));
        return tf.argMax(tf.matMul(hidden, tiedLmHead(model.variables), false, true), 1).dataSync();
      });
      // The token after " =" is the result's first digit; position t predicts token t+1.
      for (let t = 0; t + 1 < ids.length; t++) {
        if (ids[t] !== equals[0]) continue;
        total++;
        if (predicted[t] === ids[t + 1]) right++;
      }
    }
    expect(tf.memory().numTensors).to.equal(before);
    expect(total).to.be.above(80);
    expect(right / total).to.be.at.least(0.95);
  });
});
