import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { SweepPoint } from '../sweep/plan.js';
import { readSweepFile } from '../sweep/summary.js';
import { POINT_FILE, isRunDir, loadRun, runDirsUnder, type RunRecord, type SweepPointRecord } from './run-data.js';

/**
 * The inputs of `prmkit report`: run directories and sweep directories (one or several shards
 * of a sweep, on a shared disk or copied from several machines), merged into one set of runs
 * and one plan.
 */

export interface SweepInput {
  dir: string;
  recipe: string;
  recipeName: string;
  grid: { key: string; values: unknown[] }[];
  variants: { name: string; params: Record<string, unknown> }[];
  points: SweepPoint[];
}

export interface Collected {
  /** Finished runs, each name once. */
  runs: RunRecord[];
  /** Runs present but not finished (a shard still running, a failed point). */
  unfinished: RunRecord[];
  sweeps: SweepInput[];
  /** The union of the sweeps' plans. */
  plan: SweepPoint[];
  /** Plan points with no finished run. */
  missing: SweepPoint[];
  warnings: string[];
  /** Point seconds from sweep-point.json, by run name. */
  seconds: Record<string, number>;
}

/** A sweep directory has DIR/sweep.json or DIR/runs/ holding run directories. */
export function isSweepDir(dir: string): boolean {
  return existsSync(join(dir, 'sweep.json')) || runDirsUnder(join(dir, 'runs')).length > 0;
}

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export function collectInputs(inputs: readonly string[]): Collected {
  if (inputs.length === 0) throw new Error('no run or sweep directory given');
  const out: Collected = { runs: [], unfinished: [], sweeps: [], plan: [], missing: [], warnings: [], seconds: {} };
  const byName = new Map<string, RunRecord>();
  const planByName = new Map<string, SweepPoint>();
  const addRun = (run: RunRecord) => {
    const pointFile = join(run.dir, POINT_FILE);
    const fromSweep = existsSync(pointFile);
    const prior = byName.get(run.name);
    if (prior?.dir === run.dir) return;
    let name = run.name;
    if (prior && fromSweep) {
      // The same point in two shards' directories: a finished run wins, else the first.
      if (prior.finished && run.finished) out.warnings.push(`${name}: finished in both ${prior.dir} and ${run.dir}; using the first`);
      if (prior.finished || !run.finished) return;
    } else if (prior) {
      // Two plain runs of one recipe: tell them apart by directory.
      name = `${run.name} (${basename(run.dir)})`;
    }
    byName.set(name, { ...run, name });
    if (fromSweep) out.seconds[name] = (JSON.parse(readFileSync(pointFile, 'utf8')) as SweepPointRecord).seconds;
  };

  for (const input of inputs) {
    const dir = resolve(input);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${input}: no such directory`);
    if (isRunDir(dir)) {
      addRun(loadRun(dir));
    } else if (isSweepDir(dir)) {
      const s = readSweepFile(dir);
      if (s) {
        out.sweeps.push({ dir, recipe: s.recipe, recipeName: s.recipe_name, grid: s.grid, variants: s.variants, points: s.points });
        for (const p of s.points) {
          const known = planByName.get(p.name);
          if (known && !sameJson(known.params, p.params)) out.warnings.push(`point ${p.name} has different parameters in ${dir}`);
          if (!known) planByName.set(p.name, p);
        }
      }
      for (const runDir of runDirsUnder(join(dir, 'runs'))) addRun(loadRun(runDir));
    } else {
      throw new Error(`${input}: neither a run directory (recipe.resolved.yaml, stages/) nor a sweep directory (sweep.json, runs/)`);
    }
  }
  out.plan = [...planByName.values()];
  const order = new Map(out.plan.map((p, i) => [p.name, i]));
  const all = [...byName.values()];
  // Plan order first (the order the sweep declared), then the rest by name.
  const rank = (r: RunRecord) => order.get(r.name) ?? Number.MAX_SAFE_INTEGER;
  out.runs = all.filter((r) => r.finished).sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
  out.unfinished = all.filter((r) => !r.finished).sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name));
  const done = new Set(out.runs.map((r) => r.name));
  out.missing = out.plan.filter((p) => !done.has(p.name));
  return out;
}
