import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.js';

interface PlanArgs {
  recipe: string;
  set?: string[];
  json: boolean;
  'model-config'?: string;
}

/** Prints a recipe's training memory plan; shared with `prmkit run --dry-run`. */
export async function printMemoryPlan(recipePath: string, overrides: readonly string[], json: boolean, modelConfig?: string): Promise<void> {
  const { loadRecipe, RecipeError } = await import('../../recipes/load.js');
  const { recipeMemoryPlan } = await import('../../run/plan.js');
  let loaded;
  try {
    loaded = loadRecipe(recipePath, overrides);
  } catch (err) {
    if (err instanceof RecipeError) throw new UsageError(err.message);
    throw err;
  }
  const { plan, text } = await recipeMemoryPlan(loaded.recipe, loaded.baseDir, modelConfig);
  process.stdout.write(json ? `${JSON.stringify(plan)}\n` : `${text}\n`);
}

export const planCommand: CommandModule<object, PlanArgs> = {
  command: 'plan <recipe>',
  describe: "Print a recipe's training memory: weights, gradients, AdamW moments, activations",
  builder: (y: Argv) =>
    y
      .positional('recipe', { type: 'string', demandOption: true, describe: 'Recipe YAML file' })
      .option('set', { type: 'string', array: true, describe: 'Override a recipe key: --set train.recompute=true (repeatable)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the plan as JSON (bytes)' })
      .option('model-config', { type: 'string', describe: "A config.json to plan with instead of the recipe's model (e.g. before downloading it)" })
      .example('$0 plan recipes/qwen2.5-math-1.5b-prm.yaml', 'Memory of the 1.5B recipe on its GPU')
      .example('$0 plan recipes/quickstart.yaml --set train.recompute=true', 'With activation recomputation')
      .example('$0 plan recipes/qwen2.5-math-1.5b-prm.yaml --model-config qwen7b/config.json', 'Another backbone under the same recipe'),
  handler: async (args) => printMemoryPlan(args.recipe, args.set ?? [], args.json, args['model-config']),
};
