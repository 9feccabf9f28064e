import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { runTrainingWorker } from '../distributed/follower.js';
import { joinCluster, trainingCluster } from '../distributed/join.js';
import { TfConfigError } from '../distributed/tf-config.js';
import { selectBackend, type BackendName } from '../backend/backend.js';
import { describeKernels, setKernelChoice } from '../backend/fused/kernel-choice.js';
import { loadRecipe, recipeToYaml } from '../recipes/load.js';
import type { Recipe } from '../recipes/schema.js';
import type { Override } from '../recipes/overrides.js';
import { readStageMarker, runStage, type RunContext } from './context.js';
import { writeFileAtomic } from '../util/durable-fs.js';
import { DIR_LOCK_FILE, lockRunDirectory } from '../util/write-lock.js';
import { checkInputs } from './preflight.js';
import { runDataStage, SAMPLES_FILE } from './data-stage.js';
import { runEvalStage } from './eval-stage.js';
import { runLabelsStage, type LabelsSummary } from './labels-stage.js';
import { createManifest, updateManifest, type RunManifest } from './manifest.js';
import { runReportStage, type HeadlineMetrics } from './report-stage.js';
import { readLabelledSplit, runTrainStage } from './train-stage.js';
import type { StepSample } from '../data/types.js';

export interface RunOptions {
  recipePath: string;
  /** `key.path=value` overrides (--set), or already typed ones (sweep points). */
  overrides?: (string | Override)[];
  /** Run directory (default runs/<recipe name>). */
  out?: string;
  resume?: boolean;
  /** With resume: train from step 0 when no checkpoint verifies (--restart; else an error). */
  restart?: boolean;
  /** Overrides the recipe's backend. */
  backend?: BackendName;
  log?: (line: string) => void;
  progress?: boolean;
  /** The command line, for the manifest. */
  command?: string[];
}

export interface RunResult {
  runDir: string;
  headline: HeadlineMetrics;
  seconds: number;
}

/** A run directory or recipe problem the user must fix (the CLI exits 2). */
export class RunSetupError extends Error {
  override name = 'RunSetupError';
}

const RESOLVED = 'recipe.resolved.yaml';

function firstDifference(a: string, b: string): string {
  const la = a.split('\n');
  const lb = b.split('\n');
  for (let i = 0; i < Math.max(la.length, lb.length); i++) {
    if (la[i] !== lb[i]) return `line ${i + 1}: was "${la[i] ?? ''}", now "${lb[i] ?? ''}"`;
  }
  return '';
}

/** Stage order and what each needs, checked before anything runs. */
function checkStages(recipe: Recipe): void {
  const problems: string[] = [];
  if (recipe.labels && !recipe.data) problems.push('labels needs a data stage');
  if (recipe.train && !recipe.data) problems.push('train needs a data stage');
  // train without a labels stage reads the labels the data carries; that is checked when it is read.
  if (recipe.eval && !recipe.train && !(recipe.model?.init === 'pretrained' && recipe.model.path)) {
    problems.push('eval needs a train stage or model.init pretrained with model.path');
  }
  if (!recipe.data && !recipe.train && !recipe.eval) problems.push('the recipe has no stage (data, labels, train, eval)');
  if (problems.length > 0) throw new RunSetupError(`recipe ${recipe.name}: ${problems.join('; ')}`);
}

/**
 * `prmkit run`: data -> labels -> train -> eval -> report into one run directory, each stage
 * skipped on --resume when its marker says it finished; training resumes from its newest
 * complete checkpoint.
 */
export async function runRecipe(opts: RunOptions): Promise<RunResult> {
  const t0 = Date.now();
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const overrides = [...(opts.overrides ?? [])];
  if (opts.backend) overrides.push(`backend=${opts.backend}`);
  const loaded = loadRecipe(opts.recipePath, overrides);
  const recipe = loaded.recipe;
  checkStages(recipe);
  checkInputs(recipe, loaded.baseDir);
  const runDir = resolve(opts.out ?? join('runs', recipe.name));
  const resolvedYaml = recipeToYaml(recipe);

  // Data-parallel training (TF_CONFIG, see src/distributed/join.ts): ranks > 0 only train, in
  // the run directory rank 0 prepares and writes.
  let cluster: ReturnType<typeof trainingCluster>;
  try {
    cluster = trainingCluster();
  } catch (err) {
    if (err instanceof TfConfigError) throw new RunSetupError(err.message);
    throw err;
  }
  if (cluster && cluster.rank > 0) {
    const worker = await runTrainingWorker({ cluster, recipe, baseDir: loaded.baseDir, runDir, resume: Boolean(opts.resume), restart: Boolean(opts.restart), log });
    return { runDir, headline: { train_steps: worker.steps }, seconds: (Date.now() - t0) / 1000 };
  }

  const exists = existsSync(runDir) && readdirSync(runDir).some((name) => name !== DIR_LOCK_FILE);
  if (exists && !opts.resume) {
    throw new RunSetupError(`run directory ${runDir} is not empty: pass --resume to continue that run, or choose another --out`);
  }
  if (exists && opts.resume && existsSync(join(runDir, RESOLVED))) {
    const before = readFileSync(join(runDir, RESOLVED), 'utf8');
    if (before !== resolvedYaml) {
      throw new RunSetupError(
        `cannot resume ${runDir}: the resolved recipe differs from the one the run started with (${firstDifference(before, resolvedYaml)}); ` +
          'resume with the same recipe and --set values, or start a new run with another --out',
      );
    }
  }
  // One writer per run directory: a second `prmkit run` on it stops here, naming this one's pid.
  const lock = lockRunDirectory(runDir);
  try {
    mkdirSync(runDir, { recursive: true });
    await writeFileAtomic(join(runDir, RESOLVED), resolvedYaml);
    log(`run: ${recipe.name} -> ${runDir}${opts.resume && exists ? ' (resuming)' : ''}`);

    if (recipe.report?.mlflow) {
      // Reached before any stage runs: a long run should not end in a tracking server it cannot reach.
      const { MlflowClient } = await import('../report/mlflow.js');
      await new MlflowClient(recipe.report.mlflow.tracking_uri).experimentId(recipe.report.mlflow.experiment);
    }
    const backend = await selectBackend(recipe.backend, { log });
    log(describeKernels(setKernelChoice(recipe.train?.kernels ?? 'fused')));
    // Joined right after the backend is chosen: collectives must be enabled before the first tensor.
    const parallel = cluster ? await joinCluster(cluster, { log }) : undefined;
    const ctx: RunContext = {
      runDir,
      recipe,
      baseDir: loaded.baseDir,
      resume: Boolean(opts.resume),
      restart: Boolean(opts.restart),
      backend: backend.name,
      log,
      progress: opts.progress ?? !process.env.PRMKIT_NO_PROGRESS,
      parallel,
    };
    const manifestPath = join(runDir, 'manifest.json');
    const manifest: RunManifest =
      opts.resume && existsSync(manifestPath)
        ? (JSON.parse(readFileSync(manifestPath, 'utf8')) as RunManifest)
        : await createManifest({ runDir, recipeName: recipe.name, recipeFiles: loaded.files, seed: recipe.seed, command: opts.command ?? process.argv.slice(1) });
    await updateManifest(runDir, manifest, []);

    if (recipe.data) {
      const data = recipe.data;
      await runStage(ctx, 'data', () => runDataStage(ctx, data));
      await updateManifest(runDir, manifest, [SAMPLES_FILE]);
    }
    let labels: LabelsSummary | undefined;
    if (recipe.labels) {
      const cfg = recipe.labels;
      labels = await runStage(ctx, 'labels', () => runLabelsStage(ctx, cfg));
      await updateManifest(runDir, manifest, [labels.train_file]);
    }
    let modelDir: string | undefined;
    let dev: StepSample[] = [];
    if (parallel) await parallel.trainingStarts(Boolean(recipe.train) && !readStageMarker(runDir, 'train'));
    if (recipe.train) {
      const cfg = recipe.train;
      const trainFile = labels?.train_file ?? SAMPLES_FILE;
      const train = await runStage(ctx, 'train', () => runTrainStage(ctx, recipe, cfg, { labelled: trainFile, corpus: SAMPLES_FILE }));
      // Eval and report run on rank 0 alone.
      parallel?.close();
      modelDir = join(runDir, train.final_dir);
      dev = (await readLabelledSplit(runDir, trainFile, cfg.dev_fraction, cfg.seed ?? recipe.seed)).dev;
      await updateManifest(runDir, manifest, [join('tokenizer', 'tokenizer.json'), join(train.final_dir, 'model.safetensors')]);
    } else if (recipe.model?.init === 'pretrained' && recipe.model.path) {
      modelDir = resolve(loaded.baseDir, recipe.model.path);
    }
    if (recipe.eval) {
      const cfg = recipe.eval;
      await runStage(ctx, 'eval', () => runEvalStage(ctx, cfg, modelDir as string, dev));
    }
    const headline = await runReportStage(ctx);
    await updateManifest(runDir, manifest, []);
    {
      // TensorBoard: the run's hyperparameters and final metrics beside the training curves.
      const { flattenParams } = await import('../report/mlflow.js');
      const { hparamsOf, writeTensorBoardSummary } = await import('../report/tb-hparams.js');
      const file = await writeTensorBoardSummary(join(runDir, 'tensorboard'), {
        hparams: hparamsOf(flattenParams(recipe)),
        metrics: Object.fromEntries(Object.entries(headline).map(([k, v]) => [`final/${k}`, v as number | null | undefined])),
        step: headline.train_steps ?? 0,
        startTime: t0,
        endTime: Date.now(),
      });
      log(`report: hparams and final metrics for TensorBoard in ${file}`);
    }
    if (recipe.report?.mlflow) {
      const { logRunToMlflow } = await import('../report/mlflow.js');
      await logRunToMlflow(recipe.report.mlflow, { runDir, recipe, final: { ...headline }, finalStep: headline.train_steps ?? 0, runName: recipe.name, log });
    }
    const seconds = (Date.now() - t0) / 1000;
    log(`run: done in ${seconds.toFixed(1)} s; report at ${join(runDir, 'report.md')}`);
    return { runDir, headline, seconds };
  } finally {
    lock.release();
  }
}
