import { isAbsolute, join, resolve } from 'node:path';
import { parseHfConfig, type Qwen2Config } from '../model/config.js';
import { readConfigFile, readConfigJson } from '../model/checkpoint.js';
import type { Recipe } from '../recipes/schema.js';
import { formatMemoryPlan, parameterCount, planMemory, type MemoryPlan, type ShardOptimizer } from '../train/memory-plan.js';

/**
 * The memory plan of a recipe's training stage (`prmkit plan`, `prmkit run --dry-run`): the
 * model config (a checkpoint's config.json, or the scratch config with the tokenizer's largest
 * vocabulary), the largest micro-batch the batch settings allow, and what is trained.
 */
export interface ParallelPlan {
  workers: number;
  shardOptimizer: ShardOptimizer;
}

export async function recipeMemoryPlan(
  recipe: Recipe,
  baseDir: string,
  modelConfigFile?: string,
  parallel: ParallelPlan = { workers: 1, shardOptimizer: 'none' },
): Promise<{ plan: MemoryPlan; text: string; source: string }> {
  const model = recipe.model;
  let config: Qwen2Config;
  let source: string;
  if (modelConfigFile) {
    config = await readConfigJson(modelConfigFile);
    source = modelConfigFile;
  } else if (model?.init === 'pretrained') {
    if (!model.path) throw new Error('model.path is required when model.init is pretrained');
    const dir = isAbsolute(model.path) ? model.path : resolve(baseDir, model.path);
    config = await readConfigFile(dir);
    source = join(dir, 'config.json');
  } else {
    const vocab = recipe.tokenizer?.max_vocab ?? 4096;
    config = parseHfConfig({ model_type: 'qwen2', ...(model?.config ?? {}), vocab_size: vocab, num_labels: 2 }, 'model.config');
    source = `model.config (vocabulary at most ${vocab})`;
  }
  const train = recipe.train;
  if (!train) throw new Error('the recipe has no train section');
  const tokens = Math.min(train.max_length, config.maxPositionEmbeddings);
  const rows = Math.max(1, Math.min(train.batch_size, Math.floor(train.max_tokens_per_batch / tokens)));
  const counts = parameterCount(config);
  const h = config.hiddenSize;
  const lora = model?.lora ? { r: model.lora.r, dropout: model.lora.dropout, targetModules: model.lora.target_modules } : undefined;
  const headOnly = train.freeze.head_only;
  const lastLayers = headOnly ? 0 : train.freeze.train_last_layers;
  // LoRA: the plan counts the adapter and the head (planMemory's default for a LoRA plan).
  const frozen = lora === undefined && lastLayers !== undefined;
  const trainable = frozen ? counts.head + (lastLayers > 0 ? h + lastLayers * counts.perLayer : 0) : undefined;
  const largest = frozen ? (lastLayers > 0 ? config.intermediateSize * h : h * h) : undefined;
  const options = {
    recompute: train.recompute,
    trainableParameters: trainable,
    largestTrainable: largest,
    lmLoss: train.lm_loss_weight > 0,
    workers: parallel.workers,
    shardOptimizer: parallel.shardOptimizer,
    lora,
  };
  // train.kernels: fused is what the native CPU backend runs; wasm, cpu and the GPU build fall back
  // to the eager ops, whose attention scores grow with the square of the sequence: both are shown.
  const plan = planMemory(config, { rows, tokens }, { ...options, kernels: train.kernels });
  const eager = train.kernels === 'fused' ? planMemory(config, { rows, tokens }, { ...options, kernels: 'eager' }) : null;
  const fallback = eager ? `\n  (on wasm, cpu or the GPU build, which run the eager ops: expected peak ${(eager.bytes.total / 1e9).toFixed(2)} GB)` : '';
  return { plan, text: `${formatMemoryPlan(plan)}${fallback}\n  (model from ${source}; micro-batch = train.batch_size rows of train.max_length tokens within train.max_tokens_per_batch)`, source };
}
