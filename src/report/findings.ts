import jstat from 'jstat';
import { markdownTable } from '../eval/markdown.js';
import { comparableRecipe, type RunRecord } from './run-data.js';
import { seedOf } from './seeds.js';

/**
 * The paper's findings (Zhang et al. 2025, arXiv 2501.07301, §3-4), tested on the runs of a report:
 *
 *  1. consensus-filtered hard labels train a better PRM than MC hard labels (step-error F1);
 *  2. after filtering, hard labels do at least as well as soft ones (tested as non-inferiority:
 *     hard is no worse than soft by more than HARD_SOFT_MARGIN_F1, a margin fixed before any run);
 *  3. F1 falls as the MC hard-label threshold rises;
 *  4. the best Best-of-N aggregator depends on the label source: "last" favours MC-trained
 *     PRMs, min favours judge-, consensus- or human-trained ones.
 *
 * Statistics. The unit of replication is the seed: it sets the sim data, the train/dev split,
 * the initial weights and the batch order, while the test sets stay fixed. Runs are paired when
 * they share the seed and every setting but the label source (so the same source data), and each
 * finding is a difference computed within one seed, d_s. Its 95% interval is the t interval over
 * seeds, mean(d) ± t(0.975, n-1) · sd(d)/√n: the spread between seeds is the noise the finding
 * has to beat (a bootstrap over the test problems would ignore it), and with 5-10 seeds a
 * t interval is the usual choice (a bootstrap over so few seeds understates the spread). A finding
 * is "shown" when the interval lies on the paper's side of 0, "reversed" when it lies on the
 * other, "not shown" when it covers 0; fewer than two seeds give no interval. A non-inferiority
 * claim ("at least as well") moves 0 to -margin: shown when the whole interval lies above
 * -margin, reversed when it lies below it.
 */

/**
 * F1 points hard labels may trail soft ones by and still count as "at least as good". Two points
 * is about the seed spread of a sim PRM's step-error F1 (sd 1-2 over 5 seeds), and fixed here,
 * before the runs, so the verdict cannot be tuned to them.
 */
export const HARD_SOFT_MARGIN_F1 = 2;

export type Verdict = 'shown' | 'not shown' | 'reversed' | 'too few seeds';

export interface PairedEstimate {
  n: number;
  mean: number;
  /** Sample standard deviation of the differences (0 for one seed). */
  sd: number;
  /** 95% t interval; null for fewer than two seeds. */
  interval: [number, number] | null;
}

export interface Finding {
  id: 'filter-beats-mc' | 'hard-ge-soft-after-filtering' | 'f1-falls-with-threshold' | 'aggregator-by-source';
  /** The paper's statement. */
  claim: string;
  /** Settings that set this group of runs apart from the report's other groups ('' when one group). */
  context: string;
  /** What each paired difference is. */
  difference: string;
  metric: string;
  seeds: number[];
  /** One paired difference per seed, in the order of `seeds`. */
  values: number[];
  estimate: PairedEstimate;
  /** Non-inferiority margin (the claim holds down to -margin); 0 for a plain directional claim. */
  margin: number;
  verdict: Verdict;
}

/** Mean, sd and the two-sided t interval of paired differences. */
export function pairedEstimate(values: readonly number[], level = 0.95): PairedEstimate {
  const n = values.length;
  if (n === 0) return { n, mean: NaN, sd: NaN, interval: null };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { n, mean, sd: 0, interval: null };
  const sd = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
  const half = jstat.jStat.studentt.inv(1 - (1 - level) / 2, n - 1) * (sd / Math.sqrt(n));
  return { n, mean, sd, interval: [mean - half, mean + half] };
}

/**
 * The verdict for a claim that the difference is positive (direction +1) or negative (-1), or,
 * with a margin, that it is no worse than -margin in that direction (non-inferiority).
 */
export function verdictOf(estimate: PairedEstimate, direction: 1 | -1, margin = 0): Verdict {
  if (!estimate.interval) return 'too few seeds';
  const [lo, hi] = estimate.interval.map((x) => x * direction + margin).sort((a, b) => a - b);
  if (lo > 0) return 'shown';
  if (hi < 0) return 'reversed';
  return 'not shown';
}

interface RunFacts {
  run: RunRecord;
  seed: number;
  /** Every setting but the seed, the label source and the label threshold (the pairing key). */
  context: string;
  contextValues: Record<string, string>;
  /** 'MC hard', 'MC soft', 'consensus hard', 'consensus soft', 'judge', 'truth', 'given'. */
  source: string;
  threshold: number;
}

type Plain = Record<string, unknown>;
const asPlain = (v: unknown): Plain => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Plain) : {});

function flatten(value: unknown, prefix: string, out: Record<string, string>): void {
  const obj = asPlain(value);
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const k of Object.keys(obj).sort()) flatten(obj[k], prefix ? `${prefix}.${k}` : k, out);
  } else {
    out[prefix] = JSON.stringify(value);
  }
}

/** The label source of a run, from its resolved recipe. */
export function labelSource(recipe: Plain): { source: string; threshold: number } | null {
  const labels = asPlain(recipe.labels);
  const method = labels.method;
  if (typeof method !== 'string') return null;
  const threshold = typeof labels.threshold === 'number' ? labels.threshold : 0;
  if (method === 'mc' || method === 'consensus') {
    const kind = labels.mc_labels === 'soft' ? 'soft' : 'hard';
    return { source: `${method === 'mc' ? 'MC' : 'consensus'} ${kind}`, threshold };
  }
  return { source: method, threshold };
}

function factsOf(run: RunRecord): RunFacts | null {
  const seed = seedOf(run);
  const recipe = comparableRecipe(run);
  if (seed === null || !recipe) return null;
  if (!recipe) return null;
  const label = labelSource(recipe);
  if (!label) return null;
  const train = { ...asPlain(recipe.train) };
  delete train.label_mode;
  delete train.seed;
  const values: Record<string, string> = {};
  flatten({ data: recipe.data, tokenizer: recipe.tokenizer, model: recipe.model, train, eval: recipe.eval }, '', values);
  return { run, seed, context: JSON.stringify(values), contextValues: values, ...label };
}

/** Names each context by the settings in which it differs from the other contexts. */
function contextNames(facts: readonly RunFacts[]): Map<string, string> {
  const contexts = [...new Map(facts.map((f) => [f.context, f.contextValues])).entries()];
  const keys = [...new Set(contexts.flatMap(([, v]) => Object.keys(v)))];
  const varying = keys.filter((k) => new Set(contexts.map(([, v]) => v[k])).size > 1);
  return new Map(contexts.map(([key, v]) => [key, varying.map((k) => `${k}=${v[k] ?? '-'}`).join(', ')]));
}

const F1_METRICS: [key: string, title: string][] = [
  ['sim_processbench_f1', 'sim step-error F1'],
  ['processbench_avg_f1', 'ProcessBench avg F1'],
];

/** The first metric every run of the list has, else the first any has. */
function pickMetric(runs: readonly RunFacts[], options: readonly [string, string][]): [string, string] | null {
  const has = (f: RunFacts, k: string) => typeof f.run.metrics[k] === 'number';
  return options.find(([k]) => runs.length > 0 && runs.every((f) => has(f, k))) ?? options.find(([k]) => runs.some((f) => has(f, k))) ?? null;
}

/** One run per seed (the first) among the runs of one source and threshold. */
function bySeed(facts: readonly RunFacts[], source: string, threshold?: number): Map<number, RunFacts> {
  const out = new Map<number, RunFacts>();
  for (const f of facts) if (f.source === source && (threshold === undefined || f.threshold === threshold) && !out.has(f.seed)) out.set(f.seed, f);
  return out;
}

/** The lowest threshold both sources ran at (the paper's comparisons use threshold 0). */
function commonThreshold(facts: readonly RunFacts[], a: string, b: string): number | undefined {
  const ts = (s: string) => new Set(facts.filter((f) => f.source === s).map((f) => f.threshold));
  const tb = ts(b);
  return [...ts(a)].filter((t) => tb.has(t)).sort((x, y) => x - y)[0];
}

function finding(
  base: Omit<Finding, 'estimate' | 'verdict' | 'seeds' | 'values' | 'margin'>,
  pairs: { seed: number; value: number }[],
  direction: 1 | -1,
  margin = 0,
): Finding {
  pairs.sort((a, b) => a.seed - b.seed);
  const estimate = pairedEstimate(pairs.map((p) => p.value));
  return { ...base, seeds: pairs.map((p) => p.seed), values: pairs.map((p) => p.value), estimate, margin, verdict: verdictOf(estimate, direction, margin) };
}

/** Paired differences a - b of a metric, per seed with both sources present. */
function pairedSources(facts: readonly RunFacts[], a: string, b: string, metric: (f: RunFacts) => number | null): { seed: number; value: number }[] {
  const t = commonThreshold(facts, a, b);
  if (t === undefined) return [];
  const ra = bySeed(facts, a, t);
  const rb = bySeed(facts, b, t);
  const out: { seed: number; value: number }[] = [];
  for (const [seed, fa] of ra) {
    const fb = rb.get(seed);
    const va = metric(fa);
    const vb = fb ? metric(fb) : null;
    if (va !== null && vb !== null) out.push({ seed, value: va - vb });
  }
  return out;
}

const metricOf = (key: string) => (f: RunFacts) => {
  const v = f.run.metrics[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
};

/** Least-squares slope of y on x. */
function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  const sxx = points.reduce((a, p) => a + (p.x - mx) ** 2, 0);
  return points.reduce((a, p) => a + (p.x - mx) * (p.y - my), 0) / sxx;
}

/** Every finding the runs can speak to, per group of runs that differ only in seed and label source. */
export function paperFindings(runs: readonly RunRecord[]): Finding[] {
  const facts = runs.map(factsOf).filter((f): f is RunFacts => f !== null);
  const names = contextNames(facts);
  const out: Finding[] = [];
  for (const [context, name] of names) {
    const group = facts.filter((f) => f.context === context);
    const f1 = pickMetric(group, F1_METRICS);
    if (f1) {
      const [key, title] = f1;
      const filtered = pairedSources(group, 'consensus hard', 'MC hard', metricOf(key));
      if (filtered.length > 0) {
        out.push(
          finding({ id: 'filter-beats-mc', claim: 'consensus-filtered hard labels > MC hard labels on F1', context: name, difference: 'consensus hard − MC hard', metric: title }, filtered, 1),
        );
      }
      const hardSoft = pairedSources(group, 'consensus hard', 'consensus soft', metricOf(key));
      if (hardSoft.length > 0) {
        out.push(
          finding(
            {
              id: 'hard-ge-soft-after-filtering',
              claim: `after filtering, hard labels >= soft labels on F1 (non-inferiority, margin ${HARD_SOFT_MARGIN_F1} points)`,
              context: name,
              difference: 'consensus hard − consensus soft',
              metric: title,
            },
            hardSoft,
            1,
            HARD_SOFT_MARGIN_F1,
          ),
        );
      }
      // Threshold sweep: per seed, the fitted change of F1 from the lowest to the highest threshold.
      const mcHard = group.filter((f) => f.source === 'MC hard' && metricOf(key)(f) !== null);
      const slopes: { seed: number; value: number }[] = [];
      for (const seed of new Set(mcHard.map((f) => f.seed))) {
        const byT = new Map<number, number>();
        for (const f of mcHard) if (f.seed === seed && !byT.has(f.threshold)) byT.set(f.threshold, metricOf(key)(f) as number);
        // Two thresholds give their difference; more give the least-squares trend over all of them.
        if (byT.size < 2) continue;
        const ts = [...byT.keys()];
        const span = Math.max(...ts) - Math.min(...ts);
        slopes.push({ seed, value: slope([...byT].map(([x, y]) => ({ x, y }))) * span });
      }
      if (slopes.length > 0) {
        const ts = [...new Set(mcHard.map((f) => f.threshold))].sort((a, b) => a - b);
        out.push(
          finding(
            {
              id: 'f1-falls-with-threshold',
              claim: 'F1 falls as the MC threshold rises',
              context: name,
              difference: `fitted F1 change from threshold ${fmtT(ts[0])} to ${fmtT(ts[ts.length - 1])} (least squares over ${ts.length} thresholds)`,
              metric: title,
            },
            slopes,
            -1,
          ),
        );
      }
    }
    // Aggregators: (last − min) for MC-hard-trained PRMs against the same for other sources.
    const agg = pickMetric(group, [
      ['sim_bon_prm_at_n_last', 'sim'],
      ['bon_prm_at_n_last', 'real'],
    ]);
    if (agg) {
      const prefix = agg[1] === 'sim' ? 'sim_bon_prm_at_n_' : 'bon_prm_at_n_';
      const gap = (f: RunFacts) => {
        const last = metricOf(`${prefix}last`)(f);
        const min = metricOf(`${prefix}min`)(f);
        return last === null || min === null ? null : last - min;
      };
      for (const other of ['consensus hard', 'judge', 'truth', 'given']) {
        const pairs = pairedSources(group, 'MC hard', other, gap);
        if (pairs.length === 0) continue;
        out.push(
          finding(
            {
              id: 'aggregator-by-source',
              claim: `"last" favours MC-trained PRMs, min favours ${other}-trained ones`,
              context: name,
              difference: `(last − min) of MC hard − (last − min) of ${other}`,
              metric: `${agg[1] === 'sim' ? 'sim ' : ''}prm@N`,
            },
            pairs,
            1,
          ),
        );
      }
    }
  }
  return out;
}

function fmtT(t: number): string {
  const eighths = t * 8;
  return Number.isInteger(eighths) && t > 0 && t < 1 ? `${eighths}/8` : String(t);
}

const num = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');

/** The findings as a markdown section body (empty string when there are none). */
export function findingsMarkdown(findings: readonly Finding[]): string {
  if (findings.length === 0) return '';
  const withContext = findings.some((f) => f.context !== '');
  const rows = findings.map((f) => [
    f.claim,
    ...(withContext ? [f.context || '-'] : []),
    f.difference,
    f.metric,
    f.seeds.join(', '),
    f.values.map(num).join(', '),
    f.estimate.n >= 2 ? `${num(f.estimate.mean)} ± ${num(f.estimate.sd)}` : num(f.estimate.mean),
    f.estimate.interval ? `[${num(f.estimate.interval[0])}, ${num(f.estimate.interval[1])}]` : '-',
    `**${f.verdict}**`,
  ]);
  return markdownTable(['paper finding', ...(withContext ? ['runs'] : []), 'paired difference', 'metric', 'seeds', 'per seed', 'mean ± sd', '95% interval', 'verdict'], rows);
}
