/**
 * Step scores -> one score per response, for Best-of-N selection (PAPER.md §2.2 aggregator
 * ablation: min, product, last; plus mean and geometric mean).
 */

export const AGGREGATORS = ['min', 'prod', 'last', 'mean', 'geomean'] as const;
export type Aggregator = (typeof AGGREGATORS)[number];

/**
 * What a response's score can be: a list of step scores, a single number (an outcome-style or
 * precomputed score, used as is by every aggregator), or null when the response could not be
 * scored (e.g. longer than the model context).
 */
export type ResponseScore = number | readonly number[] | null;

export function isAggregator(name: string): name is Aggregator {
  return (AGGREGATORS as readonly string[]).includes(name);
}

/** Parses "min,prod,last" into aggregators, rejecting unknown names with the list of known ones. */
export function parseAggregators(list: string): Aggregator[] {
  const names = list
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0) throw new Error(`no aggregator given (known: ${AGGREGATORS.join(', ')})`);
  for (const name of names) {
    if (!isAggregator(name)) throw new Error(`unknown aggregator "${name}" (known: ${AGGREGATORS.join(', ')})`);
  }
  return [...new Set(names)] as Aggregator[];
}

/**
 * One score per response. Unscored responses (null or an empty step list) get -Infinity, so they
 * are picked only when no response of the problem has a score. The geometric mean is
 * exp(mean(log s)), 0 when a step scores 0; it needs nonnegative step scores.
 */
export function aggregateScore(score: ResponseScore, agg: Aggregator): number {
  if (score === null) return -Infinity;
  if (typeof score === 'number') return score;
  const n = score.length;
  if (n === 0) return -Infinity;
  switch (agg) {
    case 'min': {
      let m = score[0];
      for (let i = 1; i < n; i++) if (score[i] < m) m = score[i];
      return m;
    }
    case 'prod': {
      let p = 1;
      for (let i = 0; i < n; i++) p *= score[i];
      return p;
    }
    case 'last':
      return score[n - 1];
    case 'mean': {
      let s = 0;
      for (let i = 0; i < n; i++) s += score[i];
      return s / n;
    }
    case 'geomean': {
      let logSum = 0;
      for (let i = 0; i < n; i++) {
        const v = score[i];
        if (v < 0) throw new Error(`geometric mean needs nonnegative step scores, got ${v}`);
        if (v === 0) return 0;
        logSum += Math.log(v);
      }
      return Math.exp(logSum / n);
    }
  }
}

/**
 * Whether the (first) minimum of a step-score list sits on the last step; null when the score is
 * not a step list (single number, unscored). A tie between the last step and an earlier one
 * counts as "not on the last step" (first occurrence, like numpy's argmin).
 */
export function minIsOnLastStep(score: ResponseScore): boolean | null {
  if (score === null || typeof score === 'number' || score.length === 0) return null;
  let argmin = 0;
  for (let i = 1; i < score.length; i++) if (score[i] < score[argmin]) argmin = i;
  return argmin === score.length - 1;
}
