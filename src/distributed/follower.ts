/**
 * A data-parallel worker of rank > 0 in `prmkit run` (see join.ts): joins the cluster, waits for
 * rank 0 to reach the train stage, trains its share of every global batch from the shared run
 * directory, writes nothing, and returns.
 */
import { selectBackend } from '../backend/backend.js';
import { describeKernels, setKernelChoice } from '../backend/fused/kernel-choice.js';
import type { Recipe } from '../recipes/schema.js';
import { readStageMarker, type RunContext } from '../run/context.js';
import { SAMPLES_FILE } from '../run/data-stage.js';
import type { LabelsSummary } from '../run/labels-stage.js';
import { runTrainStage } from '../run/train-stage.js';
import { joinCluster } from './join.js';
import type { ClusterConfig } from './tf-config.js';

export interface FollowerOptions {
  cluster: ClusterConfig;
  recipe: Recipe;
  baseDir: string;
  runDir: string;
  resume: boolean;
  restart?: boolean;
  log: (line: string) => void;
}

/** Returns the optimizer steps trained (0 when rank 0 had no training to run). */
export async function runTrainingWorker(opts: FollowerOptions): Promise<{ steps: number }> {
  const { recipe, log } = opts;
  const backend = await selectBackend(recipe.backend, { log });
  log(describeKernels(setKernelChoice(recipe.train?.kernels ?? 'fused')));
  const dp = await joinCluster(opts.cluster, { log });
  try {
    if (!(await dp.trainingStarts(false))) {
      log(`worker ${dp.rank}: rank 0 runs no training (none in the recipe, or it finished earlier); nothing to do`);
      return { steps: 0 };
    }
    if (!recipe.train) throw new Error(`worker ${dp.rank}: rank 0 trains but this worker's recipe has no train stage (workers must run the same recipe)`);
    const labels = readStageMarker<LabelsSummary>(opts.runDir, 'labels');
    const ctx: RunContext = {
      runDir: opts.runDir,
      recipe,
      baseDir: opts.baseDir,
      resume: opts.resume,
      restart: opts.restart,
      backend: backend.name,
      log,
      progress: false,
      parallel: dp,
    };
    const summary = await runTrainStage(ctx, recipe, recipe.train, { labelled: labels?.summary.train_file ?? SAMPLES_FILE, corpus: SAMPLES_FILE });
    log(`worker ${dp.rank}: trained ${summary.steps} steps with the others in ${summary.seconds.toFixed(1)} s`);
    return { steps: summary.steps };
  } finally {
    dp.close();
  }
}
