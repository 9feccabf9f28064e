import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import YAML from 'yaml';
import type { BonCurvePoint } from '../eval/bon-metrics.js';
import { absoluteRecipePaths } from '../recipes/load.js';
import { RecipeSchema } from '../recipes/schema.js';
import { readStageMarker, type StageName } from '../run/context.js';
import type { DataSummary } from '../run/data-stage.js';
import type { EvalSummary } from '../run/eval-stage.js';
import type { LabelsSummary } from '../run/labels-stage.js';
import type { RunManifest } from '../run/manifest.js';
import { headlineMetrics } from '../run/report-stage.js';
import type { TrainSummary } from '../run/train-stage.js';

/**
 * Everything `prmkit report` and `prmkit sweep` read from one run directory, as `prmkit run`
 * writes it: stages/<stage>.json (each stage's summary), metrics.jsonl (train and dev rows),
 * eval/sim/bon/metrics.json and eval/bon/[<set>/]metrics.json (Best-of-N curves over N),
 * recipe.resolved.yaml, manifest.json, and sweep-point.json when a sweep made the run.
 */

/** RUN/sweep-point.json: written by `prmkit sweep` when a point's run has finished. */
export const POINT_FILE = 'sweep-point.json';

export interface SweepPointRecord {
  name: string;
  variant: string | null;
  params: Record<string, unknown>;
  status: 'done';
  finished_at: string;
  seconds: number;
}

export interface TrainRow {
  step: number;
  /** The whole training objective (with the auxiliary LM term when there is one). */
  loss: number;
  /** The step-label part of the loss (what dev_loss measures), logged when there is an LM term. */
  step_loss?: number;
  /** The weighted auxiliary LM term (train.lm_loss_weight). */
  lm_loss?: number;
  lr: number;
  grad_norm?: number;
  tokens_per_s?: number;
}

export interface DevRow {
  step: number;
  dev_loss: number;
  step_accuracy: number;
  step_auroc: number | null;
  first_error_f1: number | null;
}

export interface BonCurve {
  /** "sim" for the sim world, else the candidate set's name ("average" = mean over the real sets). */
  set: string;
  curve: BonCurvePoint[];
}

/**
 * Flat headline metrics of a run; every value a number or null. Benchmark figures are percent;
 * label_first_error_precision, label_first_error_recall, label_first_error_f1 and retained are
 * fractions (as in RUN/summary.json).
 */
export type RunMetrics = Record<string, number | null>;

export interface RunRecord {
  dir: string;
  /** The sweep point's name, or the recipe's name for a plain run. */
  name: string;
  variant: string | null;
  params: Record<string, unknown>;
  /** The resolved recipe as written by the run (plain data). */
  recipe: Record<string, unknown> | null;
  manifest: RunManifest | null;
  /** Every stage the recipe has finished, and report.md written. */
  finished: boolean;
  stageSeconds: Partial<Record<StageName, number>>;
  data: DataSummary | null;
  labels: LabelsSummary | null;
  train: TrainSummary | null;
  evals: EvalSummary | null;
  trainCurve: TrainRow[];
  devCurve: DevRow[];
  bonCurves: BonCurve[];
  metrics: RunMetrics;
}

const RECIPE_STAGES = ['data', 'labels', 'train', 'eval'] as const;

/**
 * The run's resolved recipe as settings to compare runs by: relative paths made absolute
 * against the folder of the recipe the run was started with (from its manifest), so runs of one
 * model started from recipes in different folders compare equal; and the current schema's
 * defaults filled in, so a run written before a key existed compares equal to newer runs that
 * hold the key at its default.
 */
export function comparableRecipe(run: Pick<RunRecord, 'recipe' | 'manifest'>): Record<string, unknown> | null {
  if (!run.recipe) return null;
  const requested = run.manifest?.recipe?.files?.[0]?.path;
  const recipe = requested ? absoluteRecipePaths(run.recipe, dirname(requested)) : run.recipe;
  const parsed = RecipeSchema.safeParse(recipe);
  return parsed.success ? (parsed.data as Record<string, unknown>) : recipe;
}

/** True when DIR looks like a `prmkit run` directory. */
export function isRunDir(dir: string): boolean {
  return existsSync(join(dir, 'recipe.resolved.yaml')) || existsSync(join(dir, 'stages'));
}

function readJson<T>(path: string): T | null {
  if (!existsSync(path)) return null;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
  }
}

/** The train and dev rows of RUN/metrics.jsonl; a torn last line (a killed run) is skipped. */
export function readMetricsJsonl(path: string): { train: TrainRow[]; dev: DevRow[] } {
  const train: TrainRow[] = [];
  const dev: DevRow[] = [];
  if (!existsSync(path)) return { train, dev };
  const lines = readFileSync(path, 'utf8').split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line) as Record<string, unknown>;
    } catch (err) {
      if (i >= lines.length - 2) return;
      throw new Error(`${path}:${i + 1}: not valid JSON (${(err as Error).message})`);
    }
    if (row.kind === 'train' && typeof row.step === 'number' && typeof row.loss === 'number') train.push(row as unknown as TrainRow);
    else if (row.kind === 'dev' && typeof row.step === 'number') dev.push(row as unknown as DevRow);
  });
  // A resumed run rewrites the steps after its checkpoint: keep the last row of each step.
  const lastByStep = <T extends { step: number }>(rows: T[]) => [...new Map(rows.map((r) => [r.step, r])).values()].sort((a, b) => a.step - b.step);
  return { train: lastByStep(train), dev: lastByStep(dev) };
}

function bonCurvesOf(runDir: string, evals: EvalSummary | null): BonCurve[] {
  const curves: BonCurve[] = [];
  const sim = readJson<{ curve?: BonCurvePoint[] }>(join(runDir, 'eval', 'sim', 'bon', 'metrics.json'));
  if (sim?.curve) curves.push({ set: 'sim', curve: sim.curve });
  if (evals?.bon) {
    const names = Object.keys(evals.bon.sets);
    const single = readJson<{ curve?: BonCurvePoint[]; set?: string }>(join(runDir, 'eval', 'bon', 'metrics.json'));
    if (names.length === 1 && single?.curve) curves.push({ set: names[0], curve: single.curve });
    else {
      for (const name of names) {
        const m = readJson<{ curve?: BonCurvePoint[] }>(join(runDir, 'eval', 'bon', name, 'metrics.json'));
        if (m?.curve) curves.push({ set: name, curve: m.curve });
      }
    }
  }
  return curves;
}

const mean = (xs: readonly (number | null | undefined)[]): number | null => {
  const v = xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x));
  return v.length === 0 ? null : v.reduce((a, b) => a + b, 0) / v.length;
};

/**
 * The headline metrics a sweep compares: the run's own (src/run/report-stage.ts headlineMetrics)
 * plus each Best-of-N aggregator, the label figures in percent, and real-benchmark details.
 */
export function runMetrics(labels: LabelsSummary | null, train: TrainSummary | null, evals: EvalSummary | null): RunMetrics {
  const out: RunMetrics = {};
  for (const [k, v] of Object.entries(headlineMetrics(labels, train, evals))) out[k] = typeof v === 'number' && Number.isFinite(v) ? v : null;
  if (labels) {
    // Fractions, as in the run's own summary.json (label_first_error_precision, retained too).
    const used = labels.sources[labels.method];
    out.label_first_error_recall = used?.recall ?? null;
    // The labels' own ProcessBench-style F1 against the sim truth (accuracy on erroneous and on correct samples).
    out.label_first_error_f1 = used?.f1 ?? null;
    out.labelled_samples = used?.output ?? null;
  }
  if (evals?.sim) {
    const pb = evals.sim.prm.processbench;
    out.sim_processbench_acc_error = pb.acc_error;
    out.sim_processbench_acc_correct = pb.acc_correct;
    const bon = evals.sim.prm.bon;
    out.sim_bon_pass_at_n = bon.pass_at_n;
    out.sim_bon_maj_at_n = bon.maj_at_n;
    for (const [agg, v] of Object.entries(bon.prm_at_n)) out[`sim_bon_prm_at_n_${agg}`] = v ?? null;
    out.sim_bon_min_at_last_step = bon.min_at_last_step;
    for (const [agg, v] of Object.entries(bon.picked_min_at_last_step ?? {})) out[`sim_bon_picked_min_at_last_step_${agg}`] = v ?? null;
    out.sim_extracted_accuracy = pb.extracted_accuracy ?? null;
    // What the PRM checks: first errors found per error kind, and right vs first wrong steps.
    for (const [kind, k] of Object.entries(pb.by_kind ?? {})) out[`sim_recall_${kind}`] = k.recall;
    if (pb.step_scores) out.sim_step_auroc = pb.step_scores.auroc;
  }
  if (evals?.processbench) {
    for (const [subset, f1] of Object.entries(evals.processbench.subsets)) out[`processbench_f1_${subset}`] = f1;
  }
  if (evals?.bon) {
    const sets = Object.values(evals.bon.sets);
    const aggs = [...new Set(sets.flatMap((s) => Object.keys(s.prm_at_n)))];
    for (const agg of aggs) out[`bon_prm_at_n_${agg}`] = mean(sets.map((s) => s.prm_at_n[agg]));
    out.bon_pass_at_n = mean(sets.map((s) => s.pass_at_n));
    out.bon_maj_at_n = mean(sets.map((s) => s.maj_at_n));
  }
  return out;
}

/** Reads one run directory (finished or not). */
export function loadRun(dirIn: string): RunRecord {
  const dir = resolve(dirIn);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: not a directory`);
  if (!isRunDir(dir)) throw new Error(`${dir}: not a prmkit run directory (no recipe.resolved.yaml or stages/)`);
  const recipePath = join(dir, 'recipe.resolved.yaml');
  const recipe = existsSync(recipePath) ? (YAML.parse(readFileSync(recipePath, 'utf8')) as Record<string, unknown>) : null;
  const point = readJson<SweepPointRecord>(join(dir, POINT_FILE));
  const marker = <T>(stage: StageName) => readStageMarker<T>(dir, stage);
  const data = marker<DataSummary>('data');
  const labels = marker<LabelsSummary>('labels');
  const train = marker<TrainSummary>('train');
  const evals = marker<EvalSummary>('eval');
  const stageSeconds: RunRecord['stageSeconds'] = {};
  for (const [stage, m] of [['data', data], ['labels', labels], ['train', train], ['eval', evals]] as const) if (m) stageSeconds[stage] = m.seconds;
  const wanted = RECIPE_STAGES.filter((s) => recipe !== null && recipe[s] !== undefined && recipe[s] !== null);
  const finished = recipe !== null && wanted.every((s) => stageSeconds[s] !== undefined) && existsSync(join(dir, 'report.md'));
  const { train: trainCurve, dev: devCurve } = readMetricsJsonl(join(dir, 'metrics.jsonl'));
  const evalSummary = evals?.summary ?? null;
  return {
    dir,
    name: point?.name ?? (typeof recipe?.name === 'string' ? recipe.name : basename(dir)),
    variant: point?.variant ?? null,
    params: point?.params ?? {},
    recipe,
    manifest: readJson<RunManifest>(join(dir, 'manifest.json')),
    finished,
    stageSeconds,
    data: data?.summary ?? null,
    labels: labels?.summary ?? null,
    train: train?.summary ?? null,
    evals: evalSummary,
    trainCurve,
    devCurve,
    bonCurves: bonCurvesOf(dir, evalSummary),
    metrics: runMetrics(labels?.summary ?? null, train?.summary ?? null, evalSummary),
  };
}

/** Subdirectories of DIR that are run directories, sorted by name. */
export function runDirsUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && isRunDir(join(dir, e.name)))
    .map((e) => join(dir, e.name))
    .sort();
}
