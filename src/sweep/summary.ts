import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { loadRun, POINT_FILE, runDirsUnder, type RunMetrics, type RunRecord } from '../report/run-data.js';
import type { SweepPoint } from './plan.js';

/** DIR/sweep.json: what a sweep was asked to run, so `prmkit report` can tell what is missing. */
export interface SweepFile {
  recipe: string;
  recipe_name: string;
  /** --set overrides applied to every point. */
  set: string[];
  variants: { name: string; params: Record<string, unknown> }[];
  grid: { key: string; values: unknown[] }[];
  random: { n: number; seed: number } | null;
  total: number;
  points: SweepPoint[];
  updated_at: string;
}

/** One line of DIR/summary.json. */
export interface SummaryEntry {
  name: string;
  variant: string | null;
  params: Record<string, unknown>;
  metrics: RunMetrics;
  /** Run directory, relative to the sweep directory. */
  run_dir: string;
  seconds: number | null;
}

export const SWEEP_FILE = 'sweep.json';
export const SUMMARY_FILE = 'summary.json';
export const RUNS_DIR = 'runs';

export function readSweepFile(dir: string): SweepFile | null {
  const path = join(dir, SWEEP_FILE);
  if (!existsSync(path)) return null;
  return JSON.parse(readFileSync(path, 'utf8')) as SweepFile;
}

export function summaryEntry(run: RunRecord, sweepDir: string, seconds: number | null = null): SummaryEntry {
  return { name: run.name, variant: run.variant, params: run.params, metrics: run.metrics, run_dir: relative(sweepDir, run.dir), seconds };
}

/**
 * The finished runs of a sweep directory: the plan's points in plan order, or without a plan
 * every run under DIR/runs that a sweep finished.
 */
export function finishedRuns(dir: string, plan: readonly SweepPoint[] | null): RunRecord[] {
  const runsDir = join(dir, RUNS_DIR);
  const dirs = plan ? plan.map((p) => join(runsDir, p.name)) : runDirsUnder(runsDir);
  return dirs.filter((d) => existsSync(join(d, POINT_FILE))).map((d) => loadRun(d)).filter((r) => r.finished);
}
