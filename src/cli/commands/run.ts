import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../errors.js';

// TensorFlow.js and the stages load only when the command runs, so `prmkit --help` stays quick.
const BACKENDS = ['auto', 'tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;

interface RunArgs {
  recipe: string;
  set?: string[];
  out?: string;
  resume: boolean;
  backend?: (typeof BACKENDS)[number];
  progress: boolean;
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run <recipe>',
  describe: 'Run a recipe: data -> labels -> train -> eval -> report',
  builder: (y: Argv) =>
    y
      .positional('recipe', { type: 'string', demandOption: true, describe: 'Recipe YAML file' })
      .option('set', { type: 'string', array: true, describe: 'Override a recipe key: --set train.lr=3e-4 (repeatable)' })
      .option('out', { type: 'string', describe: 'Run directory (default runs/<recipe name>)' })
      .option('resume', { type: 'boolean', default: false, describe: 'Continue the run in --out: finished stages are skipped, training resumes from its newest complete checkpoint' })
      .option('backend', { choices: BACKENDS, describe: 'TensorFlow.js backend (default: the recipe\'s, auto)' })
      .option('progress', { type: 'boolean', default: true, describe: 'Progress bars on stderr (--no-progress to turn off)' })
      .example('$0 run recipes/quickstart.yaml --out runs/quickstart', 'The sim-world quickstart (a few minutes on a laptop CPU)')
      .example('$0 run recipes/quickstart.yaml --set train.lr=3e-3 --set data.problems=500 --out runs/qs-small', 'Override recipe keys')
      .example('$0 run recipes/quickstart.yaml --out runs/quickstart --resume', 'Continue a killed run') as unknown as Argv<RunArgs>,
  handler: async (args) => {
    const { runRecipe, RunSetupError } = await import('../../run/run.js');
    const { RecipeError } = await import('../../recipes/load.js');
    try {
      const result = await runRecipe({
        recipePath: args.recipe,
        overrides: args.set ?? [],
        out: args.out,
        resume: args.resume,
        backend: args.backend,
        progress: args.progress,
        command: ['prmkit', ...process.argv.slice(2)],
      });
      process.stdout.write(`${JSON.stringify({ run_dir: result.runDir, seconds: Math.round(result.seconds), ...result.headline })}\n`);
    } catch (err) {
      if (err instanceof RecipeError || err instanceof RunSetupError) throw new UsageError(err.message);
      throw err;
    }
  },
};
