import type { Argv, CommandModule } from 'yargs';
import type { BackendName } from '../../backend/backend-names.js';
import { UsageError } from '../errors.js';
import { backendOverrideOption, positiveInt } from '../options.js';

// The stages and TensorFlow.js load only when the command runs, so `prmkit --help` stays quick.

interface SweepArgs {
  recipe: string;
  grid?: string[];
  set?: string[];
  random?: number;
  seed: number;
  shard?: string;
  out: string;
  backend?: BackendName;
  progress: boolean;
  report: boolean;
  'dry-run': boolean;
}

export const sweepCommand: CommandModule<object, SweepArgs> = {
  command: 'sweep <recipe>',
  describe: 'Run a recipe once per grid point (resumable, shardable), then summary.json and a report with plots',
  builder: (y: Argv) =>
    y
      .positional('recipe', { type: 'string', demandOption: true, describe: 'Recipe YAML file (its own `sweep:` block gives variants and a grid)' })
      .option('grid', { type: 'string', array: true, describe: 'A grid axis key.path=v1,v2,... typed by the recipe schema (repeatable; replaces the same key of the recipe\'s sweep.grid)' })
      .option('set', { type: 'string', array: true, describe: 'Override a recipe key for every point: --set train.epochs=1 (repeatable)' })
      .option('random', { type: 'number', describe: 'Run a seeded random sample of N points instead of all of them' })
      .option('seed', { type: 'number', default: 0, describe: 'Seed of --random' })
      .option('shard', { type: 'string', describe: 'Run only shard i of n (i from 0): the points at positions k with k % n == i. auto: the shard of a Slurm array task (SLURM_ARRAY_TASK_ID/_MIN/_STEP/_COUNT); auto/n: of a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, n completions)' })
      .option('out', { type: 'string', demandOption: true, describe: 'Sweep directory: runs/<point>/, sweep.json, summary.json, report.md, plots/' })
      .option('backend', backendOverrideOption('TensorFlow.js backend for every point (default: the recipe\'s)'))
      .option('progress', { type: 'boolean', default: !process.env.PRMKIT_NO_PROGRESS, describe: 'Progress bars on stderr (--no-progress or PRMKIT_NO_PROGRESS=1 to turn off)' })
      .option('report', { type: 'boolean', default: true, describe: 'Write report.md with plots at the end (--no-report to skip)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'Validate every point and write sweep.json; run nothing' })
      .example('$0 sweep recipes/paper/label-ablation.yaml --out runs/label-ablation', 'The label ablation on the sim world (points from the recipe)')
      .example('$0 sweep recipes/quickstart.yaml --grid train.lr=1e-3,3e-3 --grid labels.threshold=0,0.25 --out runs/lr-x-threshold', 'A 2x2 grid')
      .example('$0 sweep recipes/quickstart.yaml --grid train.lr=1e-4,3e-4,1e-3,3e-3 --random 2 --seed 7 --out runs/lr-random', 'A seeded random sample of 2 grid points')
      .example('$0 sweep recipes/paper/threshold-sweep.yaml --shard auto --out /shared/thr', 'In each task of a Slurm job array (sbatch --array=0-3); then prmkit report /shared/thr')
      .example('$0 sweep recipes/paper/threshold-sweep.yaml --shard auto/4 --out /shared/thr', 'In each pod of a Kubernetes Indexed Job with completions: 4'),
  handler: async (args) => {
    const { runSweep, SweepSetupError } = await import('../../sweep/run.js');
    const { parseShard, SweepPlanError } = await import('../../sweep/plan.js');
    const { RecipeError } = await import('../../recipes/load.js');
    try {
      if (args.random !== undefined) positiveInt(args.random, '--random');
      const result = await runSweep({
        recipePath: args.recipe,
        grid: args.grid ?? [],
        set: args.set ?? [],
        random: args.random !== undefined ? { n: args.random, seed: args.seed } : undefined,
        shard: args.shard !== undefined ? parseShard(args.shard) : null,
        out: args.out,
        backend: args.backend,
        progress: args.progress,
        report: args.report,
        dryRun: args['dry-run'],
      });
      process.stdout.write(
        `${JSON.stringify({ out: result.out, points: result.points.length, ran: result.ran.length, skipped: result.skipped.length, failed: result.failed.map((f) => f.name), finished: result.summary.length, seconds: Math.round(result.seconds), report: result.report })}\n`,
      );
      if (result.failed.length > 0) throw new Error(`${result.failed.length} point(s) failed: ${result.failed.map((f) => `${f.name}: ${f.error}`).join('; ')}`);
    } catch (err) {
      if (err instanceof RecipeError || err instanceof SweepPlanError || err instanceof SweepSetupError) throw new UsageError(err.message);
      throw err;
    }
  },
};
