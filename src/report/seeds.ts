import type { RunRecord } from './run-data.js';

/**
 * Runs that differ only in their seed are replicates of one configuration. A small PRM trained
 * for minutes can land several F1 points apart from one seed to the next, so an ablation is
 * read from the mean and spread over seeds, not from one run per point.
 */

export interface SeedGroup {
  /** The configuration: the sweep variant and every parameter but the seed. */
  label: string;
  seeds: number[];
  runs: RunRecord[];
}

export interface MeanSd {
  mean: number;
  sd: number;
  n: number;
}

/** The run's seed: the sweep parameter `seed` when the sweep set it, else the recipe's. */
export function seedOf(run: RunRecord): number | null {
  const fromParams = run.params.seed;
  if (typeof fromParams === 'number') return fromParams;
  const fromRecipe = run.recipe?.seed;
  return typeof fromRecipe === 'number' ? fromRecipe : null;
}

function configOf(run: RunRecord): { key: string; label: string } {
  const rest = Object.entries(run.params)
    .filter(([k]) => k !== 'seed')
    .sort(([a], [b]) => a.localeCompare(b));
  // Sweep point names join the variant and each grid value ("mc-hard_seed-8"); without the seed
  // part they name the configuration.
  const label = run.name.replace(/_seed-[^_]+/, '') || run.name;
  return { key: JSON.stringify([run.variant, rest]), label };
}

/**
 * Configurations run with at least two different seeds, in the order their first run appears. A
 * sweep's points and the same sweep repeated with `--grid seed=...` read as one set of
 * replicates (the recipe's seed counts for the points that do not set one).
 */
export function seedGroups(runs: readonly RunRecord[]): SeedGroup[] {
  const groups = new Map<string, SeedGroup>();
  for (const run of runs) {
    const seed = seedOf(run);
    if (seed === null) continue;
    const { key, label } = configOf(run);
    const group = groups.get(key) ?? { label, seeds: [], runs: [] };
    if (group.seeds.includes(seed)) continue; // the same seed twice is not a replicate
    group.seeds.push(seed);
    group.runs.push(run);
    groups.set(key, group);
  }
  return [...groups.values()].filter((g) => g.seeds.length >= 2);
}

/** Mean and sample standard deviation of the finite values (null when there are none). */
export function meanSd(values: readonly (number | null | undefined)[]): MeanSd | null {
  const xs = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (xs.length === 0) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, sd, n: xs.length };
}
