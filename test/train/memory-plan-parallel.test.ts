import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { printMemoryPlan } from '../../src/cli/commands/plan.js';
import { loadPrm } from '../../src/model/checkpoint.js';
import { loadRecipe } from '../../src/recipes/load.js';
import { recipeMemoryPlan } from '../../src/run/plan.js';
import { loraParameterCount, parameterCount, planMemory, type MemoryPlan } from '../../src/train/memory-plan.js';

/**
 * The memory plan per worker (`prmkit plan --workers N --shard-optimizer ...`) and with a LoRA
 * adapter: the 7B recipes load and validate, their plans say what the docs' table says, the
 * adapter's parameter count is the real model's, and the flags are checked.
 */
const recipe = (name: string) => fileURLToPath(new URL(`../../recipes/${name}`, import.meta.url));
const CONFIG_7B = fileURLToPath(new URL('../fixtures/model/qwen2.5-math-7b/config.json', import.meta.url));
const GQA = fileURLToPath(new URL('../fixtures/model/qwen2-gqa', import.meta.url));
const GB = 1e9;

async function planOf(file: string, workers = 1, shardOptimizer: 'none' | 'states' | 'states+gradients' = 'none', overrides: string[] = []): Promise<MemoryPlan> {
  const { recipe: r, baseDir } = loadRecipe(recipe(file), overrides);
  return (await recipeMemoryPlan(r, baseDir, CONFIG_7B, { workers, shardOptimizer })).plan;
}

async function captureStdout(fn: () => Promise<void>): Promise<string> {
  const write = process.stdout.write.bind(process.stdout);
  let out = '';
  process.stdout.write = ((chunk: string) => {
    out += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    await fn();
  } finally {
    process.stdout.write = write;
  }
  return out;
}

describe('train/memory-plan: workers, optimizer sharding, LoRA', () => {
  it('the two 7B recipes load and validate', () => {
    const full = loadRecipe(recipe('qwen2.5-math-7b-prm-8gpu.yaml')).recipe;
    expect(full.train!.recompute).to.equal(true);
    expect(full.model!.lora).to.equal(undefined);
    const lora = loadRecipe(recipe('qwen2.5-math-7b-prm-lora.yaml')).recipe;
    expect(lora.model!.lora).to.deep.equal({ r: 16, alpha: 32, dropout: 0.05, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] });
    expect(lora.model!.init).to.equal('pretrained');
    expect(full.train!.shard_optimizer).to.equal('states+gradients');
  });

  it('7B fully trained on 8 workers: only ZeRO stage 2 fits 80 GB a GPU; stage 1 shards the moments 8 ways', async () => {
    const none = await planOf('qwen2.5-math-7b-prm-8gpu.yaml', 8);
    const states = await planOf('qwen2.5-math-7b-prm-8gpu.yaml', 8, 'states');
    const stage2 = await planOf('qwen2.5-math-7b-prm-8gpu.yaml', 8, 'states+gradients');
    expect(none.rows_per_worker).to.equal(1);
    // Each worker holds the moments of its flat slice of ceil(P / 8) parameters.
    expect(states.bytes.optimizer_moments).to.equal(8 * Math.ceil(none.trainable_parameters / 8));
    expect(stage2.bytes.gradients).to.be.below(none.bytes.gradients / 4);
    expect(none.bytes.total / GB).to.be.above(80);
    expect(stage2.bytes.total / GB).to.be.within(40, 80);
    expect(stage2.bytes.weights).to.equal(none.bytes.weights);
  });

  it('7B LoRA: fits one 80 GB GPU, not a 24 GB one (the fp32 base alone is over 24 GB)', async () => {
    const plan = await planOf('qwen2.5-math-7b-prm-lora.yaml');
    expect(plan.lora?.r).to.equal(16);
    expect(plan.bytes.total / GB).to.be.within(24, 80);
    expect(plan.bytes.weights / GB).to.be.above(24);
    expect(plan.trainable_parameters).to.be.below(plan.parameters / 100);
    expect(plan.bytes.optimizer_moments).to.equal(8 * plan.trainable_parameters);
  });

  it("the plan's adapter size is the real adapter's (PrmModel.addLora)", async () => {
    const before = tf.memory().numTensors;
    const { model } = await loadPrm(GQA);
    try {
      const lora = { r: 8, alpha: 16, dropout: 0, targetModules: ['q_proj', 'v_proj', 'gate_proj', 'down_proj'] as const };
      model.addLora({ ...lora, targetModules: [...lora.targetModules] }, 0);
      const real = model.trainableVariables().reduce((a, v) => a + v.size, 0);
      const plan = planMemory(model.config, { rows: 1, tokens: 16 }, { recompute: true, lora: { ...lora } });
      expect(plan.trainable_parameters).to.equal(real);
      expect(plan.parameters).to.equal(parameterCount(model.config).total + loraParameterCount(model.config, lora).total);
      expect(plan.parameters).to.equal(model.numParameters());
    } finally {
      model.dispose();
    }
    expect(tf.memory().numTensors).to.equal(before);
  });

  it('prmkit plan takes --workers, --shard-optimizer and --lora-r / --lora-targets', async () => {
    const json = JSON.parse(
      await captureStdout(() => printMemoryPlan(recipe('qwen2.5-math-7b-prm-8gpu.yaml'), [], true, CONFIG_7B, { workers: 8, shardOptimizer: 'states+gradients' })),
    ) as MemoryPlan;
    expect(json.workers).to.equal(8);
    expect(json.shard_optimizer).to.equal('states+gradients');
    const text = await captureStdout(() => printMemoryPlan(recipe('qwen2.5-math-7b-prm-lora.yaml'), [], false, CONFIG_7B, { loraR: 8, loraTargets: 'q_proj,v_proj' }));
    expect(text).to.match(/LoRA r=8 on q_proj,v_proj \+ head/);
    for (const [flags, pattern] of [
      [{ shardOptimizer: 'states' }, /--workers 2 or more/],
      [{ workers: 2, shardOptimizer: 'zero3' }, /--shard-optimizer must be one of/],
      [{ loraTargets: 'qkv' }, /target_modules/],
    ] as const) {
      let message = '';
      try {
        await printMemoryPlan(recipe('qwen2.5-math-7b-prm-lora.yaml'), [], true, CONFIG_7B, flags);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).to.match(pattern);
    }
  });
});
