import { comparableRecipe, type RunRecord } from './run-data.js';

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
  /** Sample standard deviation; null for a single value, which has no spread to show. */
  sd: number | null;
  n: number;
}

/** The run's seed: the sweep parameter `seed` when the sweep set it, else the recipe's. */
export function seedOf(run: RunRecord): number | null {
  const fromParams = run.params.seed;
  if (typeof fromParams === 'number') return fromParams;
  const fromRecipe = run.recipe?.seed;
  return typeof fromRecipe === 'number' ? fromRecipe : null;
}

/** Recipe keys that name or describe a run, or seed it, without changing what is trained. */
const NON_CONFIG_KEYS = new Set(['name', 'description', 'seed', 'report', 'sweep', 'extends']);

function withoutSeed(recipe: Record<string, unknown>): Record<string, unknown> {
  const rest = Object.fromEntries(Object.entries(recipe).filter(([k]) => !NON_CONFIG_KEYS.has(k)));
  const train = rest.train;
  if (train && typeof train === 'object' && !Array.isArray(train)) {
    rest.train = Object.fromEntries(Object.entries(train).filter(([k]) => k !== 'seed'));
  }
  return rest;
}

/** JSON with object keys sorted at every level, so equal recipes give equal text. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The configuration a run replicates: its resolved recipe without the seed and the run's name.
 * Sweep parameters and the variant are part of the resolved recipe, so two runs are replicates
 * exactly when they trained the same recipe with different seeds.
 */
function configOf(run: RunRecord): { key: string; label: string } | null {
  const recipe = comparableRecipe(run);
  if (!recipe) return null;
  // Sweep point names join the variant and each grid value ("mc-hard_seed-8"); without the seed
  // part they name the configuration.
  const label = run.name.replace(/_seed-[^_]+/, '') || run.name;
  return { key: canonicalJson(withoutSeed(recipe)), label };
}

/**
 * Configurations run with at least two different seeds, in the order their first run appears. A
 * sweep's points and the same sweep repeated with `--grid seed=...` read as one set of
 * replicates (the recipe's seed counts for the points that do not set one). Runs whose resolved
 * recipes differ in anything but the seed are never pooled, whatever their names.
 */
export function seedGroups(runs: readonly RunRecord[]): SeedGroup[] {
  const groups = new Map<string, SeedGroup>();
  for (const run of runs) {
    const seed = seedOf(run);
    const config = configOf(run);
    if (seed === null || config === null) continue;
    const group = groups.get(config.key) ?? { label: config.label, seeds: [], runs: [] };
    if (group.seeds.includes(seed)) continue; // the same seed twice is not a replicate
    group.seeds.push(seed);
    group.runs.push(run);
    groups.set(config.key, group);
  }
  return [...groups.values()].filter((g) => g.seeds.length >= 2);
}

/** Mean and sample standard deviation of the finite values (null when there are none; sd null below two). */
export function meanSd(values: readonly (number | null | undefined)[]): MeanSd | null {
  const xs = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (xs.length === 0) return null;
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : null;
  return { mean, sd, n: xs.length };
}
