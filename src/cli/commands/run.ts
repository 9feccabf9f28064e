import type { Argv, CommandModule } from 'yargs';
import type { BackendName } from '../../backend/backend-names.js';
import { UsageError } from '../errors.js';
import { backendOverrideOption, exposeWorkersOption, positiveInt, restartOption } from '../options.js';

// TensorFlow.js and the stages load only when the command runs, so `prmkit --help` stays quick.

interface RunArgs {
  recipe: string;
  set?: string[];
  out?: string;
  resume: boolean;
  restart: boolean;
  backend?: BackendName;
  progress: boolean;
  workers?: number;
  'expose-workers': boolean;
  'dry-run': boolean;
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
      .option('restart', restartOption)
      .option('backend', backendOverrideOption('TensorFlow.js backend (default: the recipe\'s, auto)'))
      .option('progress', { type: 'boolean', default: !process.env.PRMKIT_NO_PROGRESS, describe: 'Progress bars on stderr (--no-progress or PRMKIT_NO_PROGRESS=1 to turn off)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Print the training memory plan (as prmkit plan) and stop' })
      .option('workers', {
        type: 'number',
        describe:
          'Data-parallel training in N local worker processes (native backend; each gets TF_CONFIG, output prefixed by rank), in a network namespace with only loopback. On a cluster set TF_CONFIG instead',
      })
      .option('expose-workers', exposeWorkersOption)
      .example('$0 run recipes/quickstart.yaml --out runs/quickstart', 'The sim-world quickstart (a few minutes on a laptop CPU)')
      .example('$0 run recipes/quickstart.yaml --set train.lr=3e-3 --set data.problems=500 --out runs/qs-small', 'Override recipe keys')
      .example('$0 run recipes/quickstart.yaml --out runs/quickstart --resume', 'Continue a killed run')
      .example('$0 run recipes/quickstart.yaml --out runs/qs-dp --workers 2', 'Train with 2 data-parallel workers on this machine'),
  handler: async (args) => {
    if (args['dry-run']) {
      const { printMemoryPlan } = await import('./plan.js');
      // Per worker when the run would be data-parallel.
      return printMemoryPlan(args.recipe, args.set ?? [], false, undefined, { workers: args.workers ?? 1 });
    }
    if (args.workers !== undefined && positiveInt(args.workers, '--workers') > 1) {
      const { TF_CONFIG_ENV } = await import('../../distributed/tf-config.js');
      if (process.env[TF_CONFIG_ENV]) throw new UsageError(`--workers starts local workers with their own ${TF_CONFIG_ENV}, but ${TF_CONFIG_ENV} is already set: use one or the other`);
      const { launchLocalWorkers, workerArgs } = await import('../../distributed/launch.js');
      const network = args['expose-workers'] ? 'host' : 'fenced';
      const { exitCode } = await launchLocalWorkers({ workers: args.workers, args: workerArgs(), network });
      process.exitCode = exitCode;
      return;
    }
    const { runRecipe, RunSetupError } = await import('../../run/run.js');
    const { RecipeError } = await import('../../recipes/load.js');
    const { CollectivesUnavailableError } = await import('../../distributed/native.js');
    try {
      const result = await runRecipe({
        recipePath: args.recipe,
        overrides: args.set ?? [],
        out: args.out,
        resume: args.resume,
        restart: args.restart,
        backend: args.backend,
        progress: args.progress,
        command: ['prmkit', ...process.argv.slice(2)],
      });
      process.stdout.write(`${JSON.stringify({ run_dir: result.runDir, seconds: Math.round(result.seconds), ...result.headline })}\n`);
    } catch (err) {
      if (err instanceof RecipeError || err instanceof RunSetupError || err instanceof CollectivesUnavailableError) throw new UsageError(err.message);
      throw err;
    }
  },
};
