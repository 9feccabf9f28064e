import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseHfConfig, type Qwen2Config } from '../../src/model/config.js';
import { loadRecipe } from '../../src/recipes/load.js';
import { recipeMemoryPlan } from '../../src/run/plan.js';
import { ACT_PER_HIDDEN_FUSED, ACT_PER_MLP, BACKWARD_FACTOR, LM_LOSS_VOCAB_TENSORS, planMemory } from '../../src/train/memory-plan.js';

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

describe('train/memory-plan: fused kernels', () => {
  const cfg = { hiddenSize: 896, numHiddenLayers: 24, numAttentionHeads: 14, numKeyValueHeads: 2, headDim: 64, intermediateSize: 4864, vocabSize: 151936, numLabels: 2 } as Qwen2Config;

  it('the fused plain path holds no T x T attention scores: its activations depend on tokens only', () => {
    // The same 2,048 tokens as one row or as two: the eager scores grow with the row length squared.
    const fusedLong = planMemory(cfg, { rows: 1, tokens: 2048 }, { recompute: false, kernels: 'fused' });
    const fusedShort = planMemory(cfg, { rows: 2, tokens: 1024 }, { recompute: false, kernels: 'fused' });
    const eagerLong = planMemory(cfg, { rows: 1, tokens: 2048 }, { recompute: false, kernels: 'eager' });
    const eagerShort = planMemory(cfg, { rows: 2, tokens: 1024 }, { recompute: false, kernels: 'eager' });
    expect(fusedLong.bytes.activations).to.equal(fusedShort.bytes.activations);
    expect(eagerLong.bytes.activations).to.be.above(eagerShort.bytes.activations);
    expect(fusedLong.bytes.activations).to.equal(BACKWARD_FACTOR * 24 * 2048 * (ACT_PER_HIDDEN_FUSED * 896 + ACT_PER_MLP * 4864));
    expect(fusedLong.kernels).to.equal('fused');
  });

  it('at [2, 512] the fused plain plan is within 15% of the measured peak RSS (13.6 GB, docs/performance.md)', () => {
    const plan = planMemory(cfg, { rows: 2, tokens: 512 }, { recompute: false, kernels: 'fused' });
    expect(plan.bytes.total / 13_624e6).to.be.within(0.85, 1.15);
    // The eager plan counts ~24 GB there, the figure the eager attention needed.
    expect(planMemory(cfg, { rows: 2, tokens: 512 }, { recompute: false }).bytes.total).to.be.above(20e9);
  });

  it('LoRA r=16 on every projection at [2, 512] with recomputation: plan + the process within 15% of the measured peak RSS (3,179 MiB, docs/lora-and-sharding.md)', () => {
    const lora = { r: 16, dropout: 0.05, targetModules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const };
    const plan = planMemory(cfg, { rows: 2, tokens: 512 }, { recompute: true, kernels: 'fused', lora });
    // 0.30 GB: the process (node, TensorFlow.js, libtensorflow) before any tensor exists.
    expect((plan.bytes.total + 0.3e9) / (3179 * 2 ** 20)).to.be.within(0.85, 1.15);
    const noDropout = planMemory(cfg, { rows: 2, tokens: 512 }, { recompute: true, kernels: 'fused', lora: { ...lora, dropout: 0 } });
    const eager = planMemory(cfg, { rows: 2, tokens: 512 }, { recompute: true, kernels: 'eager', lora });
    // The fused dropout keeps the dropped input only (its mask is drawn again backward); tf.dropout keeps its mask too.
    const inputs = 4 * 1024 * (6 * 896 + 4864);
    expect(plan.bytes.activations - noDropout.bytes.activations).to.equal(BACKWARD_FACTOR * inputs);
    expect(eager.bytes.activations - planMemory(cfg, { rows: 2, tokens: 512 }, { recompute: true, kernels: 'eager', lora: { ...lora, dropout: 0 } }).bytes.activations).to.equal(2 * BACKWARD_FACTOR * inputs);
  });

  it('the fused AdamW updates the moments in place: one new tensor of the largest parameter, against two for the eager ops', () => {
    const fused = planMemory(cfg, { rows: 2, tokens: 512 }, { recompute: true, kernels: 'fused' });
    const eager = planMemory(cfg, { rows: 2, tokens: 512 }, { recompute: true, kernels: 'eager' });
    expect(fused.bytes.optimizer_transient).to.equal(4 * 151936 * 896);
    expect(eager.bytes.optimizer_transient).to.equal(2 * 4 * 151936 * 896);
  });

  it('prmkit plan of a recipe (train.kernels: fused by default) says so, and gives the eager figure beside it', async () => {
    const { recipe, baseDir } = loadRecipe(RECIPE, ['train.recompute=false']);
    const fused = await recipeMemoryPlan(recipe, baseDir, TINY_CONFIG);
    expect(fused.plan.kernels).to.equal('fused');
    expect(fused.text).to.match(/fused kernels \(no T x T attention scores\)/);
    expect(fused.text).to.match(/on wasm, cpu or the GPU build, which run the eager ops: expected peak [\d.]+ GB/);
    const { recipe: eagerRecipe } = loadRecipe(RECIPE, ['train.recompute=false', 'train.kernels=eager']);
    const eager = await recipeMemoryPlan(eagerRecipe, baseDir, TINY_CONFIG);
    expect(eager.plan.kernels).to.equal('eager');
    expect(eager.text).not.to.match(/which run the eager ops/);
    expect(eager.plan.bytes.activations).to.be.above(fused.plan.bytes.activations);
  });
});
