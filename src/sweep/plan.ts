import YAML from 'yaml';
import { coerceValue, schemaAt } from '../recipes/overrides.js';
import { Rng } from '../util/rng.js';
import { SchedulerShardError, shardFromScheduler } from './scheduler-shard.js';
import type { SweepConfig } from './schema.js';

/**
 * The points of a sweep: named variants (each a set of recipe keys) times the cartesian
 * product of a grid, optionally a seeded random sample of them, optionally one shard.
 * Everything here is deterministic: the same recipe and flags give the same points, names
 * and shards on every machine, which is what lets a Slurm array or an indexed job split a
 * sweep without talking.
 */

export interface SweepPoint {
  /** Directory-safe and unique within the sweep: `<variant>_<key>-<value>_...`. */
  name: string;
  variant: string | null;
  /** Dotted recipe key -> typed value, in the order applied (variant keys, then grid keys). */
  params: Record<string, unknown>;
}

export interface GridAxis {
  key: string;
  values: unknown[];
}

export interface SweepPlan {
  variants: { name: string; params: Record<string, unknown> }[];
  grid: GridAxis[];
  /** Points before random sampling (variants x grid). */
  total: number;
  random: { n: number; seed: number } | null;
  points: SweepPoint[];
}

export class SweepPlanError extends Error {
  override name = 'SweepPlanError';
}

/** A value typed by the recipe schema at `key` (text from a flag or YAML is parsed as that type). */
export function typedValue(key: string, value: unknown): unknown {
  let schema;
  try {
    schema = schemaAt(key.split('.'));
  } catch (err) {
    throw new SweepPlanError((err as Error).message);
  }
  if (typeof value !== 'string') return value;
  try {
    return coerceValue(value, schema, key);
  } catch (err) {
    throw new SweepPlanError((err as Error).message.replace(/^--set /, 'sweep '));
  }
}

/**
 * `--grid key=v1,v2,...`: values split on commas and typed by the schema at key. For a key
 * whose values are lists, give the values as one YAML list of lists: `--grid 'k=[[a,b],[c]]'`.
 */
export function parseGridFlag(text: string): GridAxis {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new SweepPlanError(`--grid ${text}: expected key.path=v1,v2,...`);
  const key = text.slice(0, eq).trim();
  const rest = text.slice(eq + 1).trim();
  if (rest === '') throw new SweepPlanError(`--grid ${text}: no values after "="`);
  let raw: unknown[];
  if (rest.startsWith('[')) {
    const parsed: unknown = YAML.parse(rest);
    if (!Array.isArray(parsed) || parsed.length === 0) throw new SweepPlanError(`--grid ${text}: expected a non-empty YAML list`);
    raw = parsed;
  } else {
    raw = rest.split(',').map((v) => v.trim());
    if (raw.some((v) => v === '')) throw new SweepPlanError(`--grid ${text}: empty value in the list`);
  }
  return { key, values: raw.map((v) => typedValue(key, v)) };
}

/** Merges axes: a later axis with the same key replaces the earlier one (flags override the recipe). */
export function mergeAxes(...lists: GridAxis[][]): GridAxis[] {
  const out = new Map<string, GridAxis>();
  for (const list of lists) for (const axis of list) out.set(axis.key, axis);
  return [...out.values()];
}

/** The recipe's `sweep.grid` as typed axes. */
export function axesFromConfig(cfg: SweepConfig | undefined): GridAxis[] {
  return Object.entries(cfg?.grid ?? {}).map(([key, values]) => ({ key, values: values.map((v) => typedValue(key, v)) }));
}

export function variantsFromConfig(cfg: SweepConfig | undefined): SweepPlan['variants'] {
  return Object.entries(cfg?.variants ?? {}).map(([name, params]) => {
    const typed: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(params)) typed[key] = typedValue(key, value);
    return { name, params: typed };
  });
}

/** Every combination of the axes, the first axis varying slowest. */
export function expandGrid(axes: readonly GridAxis[]): Record<string, unknown>[] {
  let out: Record<string, unknown>[] = [{}];
  for (const axis of axes) out = out.flatMap((p) => axis.values.map((v) => ({ ...p, [axis.key]: v })));
  return out;
}

function valueText(v: unknown): string {
  if (Array.isArray(v)) return v.map(valueText).join('+');
  if (v !== null && typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

const unsafe = /[^A-Za-z0-9.+_-]+/g;

/** Short names for grid keys: the last path segment unless two keys share it. */
function shortKeys(keys: readonly string[]): Map<string, string> {
  const last = (k: string) => k.split('.').pop() as string;
  const counts = new Map<string, number>();
  for (const k of keys) counts.set(last(k), (counts.get(last(k)) ?? 0) + 1);
  return new Map(keys.map((k) => [k, (counts.get(last(k)) ?? 0) > 1 ? k : last(k)]));
}

/** Point names: variant, then `key-value` for each grid key (only keys that vary). */
function nameOf(variant: string | null, gridParams: Record<string, unknown>, short: Map<string, string>, varying: Set<string>): string {
  const parts: string[] = [];
  if (variant) parts.push(variant);
  for (const [k, v] of Object.entries(gridParams)) if (varying.has(k)) parts.push(`${short.get(k)}-${valueText(v)}`.replace(unsafe, '_'));
  return parts.length === 0 ? 'base' : parts.join('_');
}

/**
 * Up to n distinct indices of [0, total), drawn with a seeded RNG, returned in ascending
 * order so the sampled points keep the plan's order.
 */
export function sampleIndices(total: number, n: number, seed: number): number[] {
  if (n >= total) return Array.from({ length: total }, (_, i) => i);
  const rng = new Rng(seed).fork('sweep-random');
  const chosen = new Set<number>();
  // Rejection sampling: total may be a huge product, so never materialise all indices.
  while (chosen.size < n) chosen.add(Math.floor(rng.next() * total));
  return [...chosen].sort((a, b) => a - b);
}

export function planSweep(opts: { variants?: SweepPlan['variants']; grid?: GridAxis[]; random?: { n: number; seed: number } | null }): SweepPlan {
  const variants = opts.variants ?? [];
  const grid = (opts.grid ?? []).filter((a) => a.values.length > 0);
  for (const v of variants) {
    const overlap = grid.map((a) => a.key).filter((k) => k in v.params);
    if (overlap.length > 0) throw new SweepPlanError(`variant ${v.name} and the grid both set ${overlap.join(', ')}`);
  }
  const combos = expandGrid(grid);
  const variantList: ({ name: string; params: Record<string, unknown> } | null)[] = variants.length > 0 ? variants : [null];
  const total = variantList.length * combos.length;
  const random = opts.random ?? null;
  const indices = random ? sampleIndices(total, random.n, random.seed) : Array.from({ length: total }, (_, i) => i);
  const short = shortKeys(grid.map((a) => a.key));
  const varying = new Set(grid.filter((a) => a.values.length > 1 || variants.length === 0).map((a) => a.key));
  const seen = new Map<string, number>();
  const points = indices.map((index) => {
    const variant = variantList[Math.floor(index / combos.length)];
    const gridParams = combos[index % combos.length];
    let name = nameOf(variant?.name ?? null, gridParams, short, varying);
    const dup = seen.get(name) ?? 0;
    seen.set(name, dup + 1);
    if (dup > 0) name = `${name}-${dup + 1}`;
    return { name, variant: variant?.name ?? null, params: { ...(variant?.params ?? {}), ...gridParams } };
  });
  return { variants, grid, total, random, points };
}

/**
 * `--shard i/n`, i counted from 0; or `--shard auto[/n]`, the shard of a Slurm array task or a
 * Kubernetes Indexed Job from the environment (scheduler-shard.ts).
 */
export function parseShard(text: string, env: NodeJS.ProcessEnv = process.env): { index: number; count: number; from?: string } {
  const auto = /^\s*auto\s*(?:\/\s*(\d+)\s*)?$/.exec(text);
  if (auto) {
    try {
      return shardFromScheduler(env, auto[1] !== undefined ? Number(auto[1]) : undefined);
    } catch (err) {
      if (err instanceof SchedulerShardError) throw new SweepPlanError(err.message);
      throw err;
    }
  }
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new SweepPlanError(`--shard ${text}: expected i/n (e.g. 0/4), auto or auto/n`);
  const index = Number(m[1]);
  const count = Number(m[2]);
  if (count < 1) throw new SweepPlanError(`--shard ${text}: n must be at least 1`);
  if (index >= count) throw new SweepPlanError(`--shard ${text}: i counts from 0 and must be below n (0..${count - 1})`);
  return { index, count };
}

/** Shard i of n: the points whose position in the plan is i modulo n (balanced, disjoint, covering). */
export function shardPoints<T>(points: readonly T[], shard: { index: number; count: number } | null): T[] {
  if (!shard) return [...points];
  return points.filter((_, k) => k % shard.count === shard.index);
}
