import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseHfConfig, type Qwen2Config } from '../../src/model/config.js';
import { loadRecipe } from '../../src/recipes/load.js';
import { recipeMemoryPlan } from '../../src/run/plan.js';
import { LM_LOSS_VOCAB_TENSORS, planMemory } from '../../src/train/memory-plan.js';

/** The memory plan (`prmkit plan`): what the auxiliary LM loss (train.lm_loss_weight) adds. */
const RECIPE = fileURLToPath(new URL('../../recipes/qwen2.5-0.5b-prm.yaml', import.meta.url));
const TINY_CONFIG = fileURLToPath(new URL('../fixtures/model/qwen2-tied/config.json', import.meta.url));

describe('train/memory-plan', () => {
  it('at Qwen2.5-0.5B size, [2, 512] with the LM loss holds four [tokens, vocabulary] tensors more (2.5 GB of activations)', () => {
    const cfg = { hiddenSize: 896, numHiddenLayers: 24, numAttentionHeads: 14, numKeyValueHeads: 2, headDim: 64, intermediateSize: 4864, vocabSize: 151936, numLabels: 2 } as Qwen2Config;
    const batch = { rows: 2, tokens: 512 };
    const off = planMemory(cfg, batch, { recompute: true });
    const on = planMemory(cfg, batch, { recompute: true, lmLoss: true });
    expect(on.bytes.activations - off.bytes.activations).to.equal(LM_LOSS_VOCAB_TENSORS * 4 * 2 * 512 * 151936);
    // The optimizer's transient and the activations are never alive together: the total grows a little less.
    expect(on.bytes.total - off.bytes.total).to.be.within(1.9e9, 2.5e9);
  });

  it('a recipe gets the LM term in its plan only when train.lm_loss_weight > 0', async () => {
    const plan = async (weight: number) => {
      const { recipe, baseDir } = loadRecipe(RECIPE, [`train.lm_loss_weight=${weight}`]);
      return (await recipeMemoryPlan(recipe, baseDir, TINY_CONFIG)).plan;
    };
    const [off, on] = [await plan(0), await plan(0.5)];
    expect(on.bytes.activations).to.be.above(off.bytes.activations);
    const cfg = parseHfConfig(JSON.parse(readFileSync(TINY_CONFIG, 'utf8')), TINY_CONFIG);
    expect(on.bytes.activations - off.bytes.activations).to.equal(LM_LOSS_VOCAB_TENSORS * 4 * off.batch.rows * off.batch.tokens * cfg.vocabSize);
  });
});
