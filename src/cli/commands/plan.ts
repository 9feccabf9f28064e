import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.js';
import { positiveInt } from '../options.js';

interface PlanArgs {
  recipe: string;
  set?: string[];
  json: boolean;
  'model-config'?: string;
  workers: number;
  'shard-optimizer'?: string;
  'lora-r'?: number;
  'lora-targets'?: string;
}

const SHARD_MODES = ['none', 'states', 'states+gradients'] as const;

export interface PlanFlags {
  workers?: number;
  shardOptimizer?: string;
  loraR?: number;
  loraTargets?: string;
}

/** --lora-r and --lora-targets as recipe overrides (model.lora), so the recipe's schema checks them. */
function loraOverrides(flags: PlanFlags): string[] {
  const out: string[] = [];
  if (flags.loraR !== undefined) out.push(`model.lora.r=${positiveInt(flags.loraR, '--lora-r')}`);
  if (flags.loraTargets !== undefined) out.push(`model.lora.target_modules=${flags.loraTargets}`);
  return out;
}

/** Prints a recipe's training memory plan; shared with `prmkit run --dry-run`. */
export async function printMemoryPlan(recipePath: string, overrides: readonly string[], json: boolean, modelConfig?: string, flags: PlanFlags = {}): Promise<void> {
  const { loadRecipe, RecipeError } = await import('../../recipes/load.js');
  const { recipeMemoryPlan } = await import('../../run/plan.js');
  const workers = positiveInt(flags.workers ?? 1, '--workers');
  const given = flags.shardOptimizer;
  if (given !== undefined && !(SHARD_MODES as readonly string[]).includes(given)) throw new UsageError(`--shard-optimizer must be one of ${SHARD_MODES.join(', ')}, got ${JSON.stringify(given)}`);
  if (given !== undefined && given !== 'none' && workers < 2) throw new UsageError('--shard-optimizer shards across data-parallel workers: give --workers 2 or more');
  let loaded;
  try {
    loaded = loadRecipe(recipePath, [...overrides, ...loraOverrides(flags)]);
  } catch (err) {
    if (err instanceof RecipeError) throw new UsageError(err.message);
    throw err;
  }
  // Without the flag, the recipe's train.shard_optimizer (no effect with one worker, as in training).
  const shard = (given ?? (workers > 1 ? loaded.recipe.train?.shard_optimizer : undefined) ?? 'none') as (typeof SHARD_MODES)[number];
  const { plan, text } = await recipeMemoryPlan(loaded.recipe, loaded.baseDir, modelConfig, { workers, shardOptimizer: shard });
  process.stdout.write(json ? `${JSON.stringify(plan)}\n` : `${text}\n`);
}

export const planCommand: CommandModule<object, PlanArgs> = {
  command: 'plan <recipe>',
  describe: "Print a recipe's training memory per worker: weights, gradients, AdamW moments, activations",
  builder: (y: Argv) =>
    y
      .positional('recipe', { type: 'string', demandOption: true, describe: 'Recipe YAML file' })
      .option('set', { type: 'string', array: true, describe: 'Override a recipe key: --set train.recompute=true (repeatable)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the plan as JSON (bytes)' })
      .option('model-config', { type: 'string', describe: "A config.json to plan with instead of the recipe's model (e.g. before downloading it)" })
      .option('workers', { type: 'number', default: 1, describe: 'Data-parallel workers: each computes its share of every micro-batch' })
      .option('shard-optimizer', {
        type: 'string',
        describe: "Plan with AdamW moments (states) and also gradients (states+gradients) sharded across the workers (ZeRO stages 1 and 2; default: the recipe's train.shard_optimizer)",
      })
      .option('lora-r', { type: 'number', describe: 'Plan a LoRA adapter of this rank (sets model.lora.r; the recipe\'s model must be pretrained)' })
      .option('lora-targets', { type: 'string', describe: 'Comma-separated LoRA target projections (model.lora.target_modules), e.g. q_proj,v_proj' })
      .example('$0 plan recipes/qwen2.5-math-1.5b-prm.yaml', 'Memory of the 1.5B recipe on its GPU')
      .example('$0 plan recipes/quickstart.yaml --set train.recompute=true', 'With activation recomputation')
      .example('$0 plan recipes/qwen2.5-math-1.5b-prm.yaml --model-config qwen7b/config.json', 'Another backbone under the same recipe')
      .example('$0 plan recipes/qwen2.5-math-7b-prm-8gpu.yaml --workers 8 --shard-optimizer states+gradients', 'Per-GPU memory of 7B on 8 GPUs')
      .example('$0 plan recipes/qwen2.5-math-7b-prm-lora.yaml --lora-r 8', '7B with a rank-8 LoRA adapter'),
  handler: async (args) =>
    printMemoryPlan(args.recipe, args.set ?? [], args.json, args['model-config'], {
      workers: args.workers,
      shardOptimizer: args['shard-optimizer'],
      loraR: args['lora-r'],
      loraTargets: args['lora-targets'],
    }),
};
