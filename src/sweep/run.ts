import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BackendName } from '../backend/backend.js';
import { readRecipeTree, recipeToYaml, resolveRecipe } from '../recipes/load.js';
import type { Override } from '../recipes/overrides.js';
import type { Recipe } from '../recipes/schema.js';
import { runRecipe, type RunOptions, type RunResult } from '../run/run.js';
import { writeFileAtomic } from '../util/durable-fs.js';
import { POINT_FILE, type SweepPointRecord } from '../report/run-data.js';
import { DIR_LOCK_FILE, lockRunDirectory } from '../util/write-lock.js';
import { writeReport } from '../report/report.js';
import { axesFromConfig, mergeAxes, parseGridFlag, planSweep, shardPoints, variantsFromConfig, type SweepPlan, type SweepPoint } from './plan.js';
import { finishedRuns, RUNS_DIR, SUMMARY_FILE, SWEEP_FILE, summaryEntry, type SummaryEntry, type SweepFile } from './summary.js';

export interface SweepOptions {
  recipePath: string;
  /** `--grid key=v1,v2` flags; a key also in the recipe's sweep.grid replaces it. */
  grid?: string[];
  /** `--set key=value` overrides applied to every point. */
  set?: string[];
  /** A seeded random sample of n points instead of all (replaces the recipe's sweep.random). */
  random?: { n: number; seed: number } | null;
  /** Run only shard index of count (points k with k % count == index); `from` says where a scheduler's shard came from. */
  shard?: { index: number; count: number; from?: string } | null;
  out: string;
  backend?: BackendName;
  progress?: boolean;
  log?: (line: string) => void;
  /** Write DIR/report.md with plots at the end (default true). */
  report?: boolean;
  /** Only validate and write the plan; run nothing. */
  dryRun?: boolean;
  /** The function that runs one point (default runRecipe); tests may wrap it. */
  runPoint?: (opts: RunOptions) => Promise<RunResult>;
}

export interface SweepResult {
  out: string;
  plan: SweepPlan;
  /** The points of this shard (all points without --shard). */
  points: SweepPoint[];
  ran: string[];
  /** Finished by an earlier invocation, not redone. */
  skipped: string[];
  failed: { name: string; error: string }[];
  summary: SummaryEntry[];
  seconds: number;
  report: string | null;
}

/** A sweep that cannot start or continue as asked (the CLI exits 2). */
export class SweepSetupError extends Error {
  override name = 'SweepSetupError';
}

interface PreparedPoint {
  point: SweepPoint;
  overrides: (string | Override)[];
  resolvedYaml: string;
  runDir: string;
}

function isNonEmptyDir(dir: string): boolean {
  return existsSync(dir) && readdirSync(dir).some((name) => name !== DIR_LOCK_FILE);
}

/** The recipe's own sweep block merged with the flags, typed and validated. */
export function sweepPlanFor(opts: Pick<SweepOptions, 'recipePath' | 'grid' | 'set' | 'random'>): { plan: SweepPlan; raw: Record<string, unknown>; base: Recipe } {
  const { raw } = readRecipeTree(opts.recipePath);
  const base = resolveRecipe(raw, opts.set ?? [], opts.recipePath);
  const cfg = base.sweep;
  const flagAxes = (opts.grid ?? []).map(parseGridFlag);
  const random = opts.random !== undefined ? opts.random : (cfg?.random ?? null);
  const plan = planSweep({ variants: variantsFromConfig(cfg), grid: mergeAxes(axesFromConfig(cfg), flagAxes), random });
  return { plan, raw, base };
}

function prepare(opts: SweepOptions, plan: SweepPlan, raw: Record<string, unknown>, base: Recipe, out: string): PreparedPoint[] {
  return plan.points.map((point) => {
    const overrides: (string | Override)[] = [
      ...(opts.set ?? []),
      // The sweep block describes the whole sweep; a point's run does not carry it, so adding
      // a value to the grid later leaves the finished points' recipes unchanged.
      { path: ['sweep'], value: undefined },
      { path: ['name'], value: `${base.name}-${point.name}` },
      ...Object.entries(point.params).map(([key, value]) => ({ path: key.split('.'), value })),
    ];
    if (opts.backend) overrides.push(`backend=${opts.backend}`);
    const recipe = resolveRecipe(raw, overrides, `${opts.recipePath} (sweep point ${point.name})`);
    return { point, overrides, resolvedYaml: recipeToYaml(recipe), runDir: join(out, RUNS_DIR, point.name) };
  });
}

/**
 * Through durable-fs: its temporary names carry random bytes, so shards on different machines
 * (containers often share a pid) never write the same temporary summary.json on a shared volume.
 */
async function writeJson(path: string, value: unknown): Promise<void> {
  await writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Rewrites DIR/summary.json from the finished runs on disk (every shard's, when they share DIR). */
export async function writeSweepSummary(out: string, plan: readonly SweepPoint[]): Promise<SummaryEntry[]> {
  const entries = finishedRuns(out, plan).map((run) => {
    const point = JSON.parse(readFileSync(join(run.dir, POINT_FILE), 'utf8')) as SweepPointRecord;
    return summaryEntry(run, out, point.seconds);
  });
  await writeJson(join(out, SUMMARY_FILE), entries);
  return entries;
}

function fmtSeconds(s: number): string {
  return s >= 120 ? `${(s / 60).toFixed(1)} min` : `${s.toFixed(0)} s`;
}

/**
 * `prmkit sweep`: one `prmkit run` per point into DIR/runs/<point>, sequentially. A point whose
 * run finished earlier (DIR/runs/<point>/sweep-point.json) is not redone; a half-done one
 * resumes. A failed point is reported and the sweep goes on. Then DIR/summary.json and
 * DIR/report.md with plots.
 */
export async function runSweep(opts: SweepOptions): Promise<SweepResult> {
  const t0 = Date.now();
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const out = resolve(opts.out);
  const { plan, raw, base } = sweepPlanFor(opts);
  const prepared = prepare(opts, plan, raw, base, out);
  const mine = shardPoints(prepared, opts.shard ?? null);
  const shardText = opts.shard ? ` (shard ${opts.shard.index}/${opts.shard.count}${opts.shard.from ? ` from ${opts.shard.from}` : ''}: ${mine.length} of them)` : '';
  log(`sweep: ${base.name}: ${plan.points.length} point(s)${plan.random ? ` sampled from ${plan.total}` : ''}${shardText} -> ${out}`);

  // A point finished with another recipe would mix results of two different sweeps.
  for (const p of mine) {
    if (!existsSync(join(p.runDir, POINT_FILE))) continue;
    const before = existsSync(join(p.runDir, 'recipe.resolved.yaml')) ? readFileSync(join(p.runDir, 'recipe.resolved.yaml'), 'utf8') : '';
    if (before !== p.resolvedYaml) {
      throw new SweepSetupError(
        `${p.runDir} finished with a different recipe than point ${p.point.name} has now; ` +
          'sweep into another --out, or delete that run directory to redo it',
      );
    }
  }

  mkdirSync(join(out, RUNS_DIR), { recursive: true });
  // One sweep per directory (each point's run also locks its own directory).
  const lock = opts.dryRun ? null : lockRunDirectory(out, `sweep directory ${out}`);
  try {
    return await sweepLocked(opts, { t0, log, out, plan, base, mine });
  } finally {
    lock?.release();
  }
}

async function sweepLocked(
  opts: SweepOptions,
  { t0, log, out, plan, base, mine }: { t0: number; log: (line: string) => void; out: string; plan: SweepPlan; base: Recipe; mine: PreparedPoint[] },
): Promise<SweepResult> {
  const sweepFile: SweepFile = {
    recipe: resolve(opts.recipePath),
    recipe_name: base.name,
    set: opts.set ?? [],
    variants: plan.variants,
    grid: plan.grid,
    random: plan.random,
    total: plan.total,
    points: plan.points,
    updated_at: new Date().toISOString(),
  };
  await writeJson(join(out, SWEEP_FILE), sweepFile);
  const result: SweepResult = { out, plan, points: mine.map((p) => p.point), ran: [], skipped: [], failed: [], summary: [], seconds: 0, report: null };
  if (opts.dryRun) {
    for (const p of mine) log(`sweep: ${p.point.name}: ${JSON.stringify(p.point.params)}`);
    result.seconds = (Date.now() - t0) / 1000;
    return result;
  }

  const runPoint = opts.runPoint ?? runRecipe;
  for (const [k, p] of mine.entries()) {
    const tag = `[${k + 1}/${mine.length} ${p.point.name}]`;
    if (existsSync(join(p.runDir, POINT_FILE))) {
      log(`sweep: ${tag} finished earlier, not redone`);
      result.skipped.push(p.point.name);
      continue;
    }
    const resume = isNonEmptyDir(p.runDir);
    log(`sweep: ${tag} ${resume ? 'resuming' : 'start'}: ${JSON.stringify(p.point.params)}`);
    const started = Date.now();
    try {
      await runPoint({
        recipePath: opts.recipePath,
        overrides: p.overrides,
        out: p.runDir,
        resume,
        progress: opts.progress,
        log: (line) => log(`${tag} ${line}`),
        command: ['prmkit', 'sweep', opts.recipePath, '--out', opts.out, '(point)', p.point.name],
      });
      const seconds = (Date.now() - started) / 1000;
      const record: SweepPointRecord = { name: p.point.name, variant: p.point.variant, params: p.point.params, status: 'done', finished_at: new Date().toISOString(), seconds };
      await writeJson(join(p.runDir, POINT_FILE), record);
      result.ran.push(p.point.name);
      log(`sweep: ${tag} done in ${fmtSeconds(seconds)}`);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      result.failed.push({ name: p.point.name, error: message });
      log(`sweep: ${tag} FAILED: ${message}`);
    }
    await writeSweepSummary(out, plan.points);
  }

  result.summary = await writeSweepSummary(out, plan.points);
  if (opts.shard) {
    mkdirSync(join(out, 'shards'), { recursive: true });
    await writeJson(join(out, 'shards', `${opts.shard.index}-of-${opts.shard.count}.json`), {
      shard: opts.shard,
      points: mine.map((p) => p.point.name),
      ran: result.ran,
      skipped: result.skipped,
      failed: result.failed,
      finished_at: new Date().toISOString(),
      seconds: (Date.now() - t0) / 1000,
    });
  }
  if (opts.report ?? true) {
    const report = await writeReport([out], { out, log });
    result.report = report.markdownPath;
  }
  result.seconds = (Date.now() - t0) / 1000;
  const missing = plan.points.length - result.summary.length;
  log(
    `sweep: ${result.ran.length} run, ${result.skipped.length} finished earlier, ${result.failed.length} failed in ${fmtSeconds(result.seconds)}; ` +
      `${result.summary.length}/${plan.points.length} points finished${missing > 0 && opts.shard ? ' (other shards hold the rest)' : ''}; summary ${join(out, SUMMARY_FILE)}`,
  );
  return result;
}
