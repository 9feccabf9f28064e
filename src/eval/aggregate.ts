/**
 * Step scores -> one score per response, for Best-of-N selection (Zhang et al. 2025 §2.2 aggregator
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
 * What the scores of a candidate set are, decided once per set so every problem is treated
 * alike: `scalar` when every scored response carries one number (a plain number or a one-item
 * list, as outcome reward models such as Qwen2.5-Math-RM give), `steps` when some response
 * carries several step scores, `none` without scores. min/max span every value; `bounded` means
 * all lie in [0, 1] (probabilities).
 */
export interface ScoreProfile {
  kind: 'none' | 'scalar' | 'steps';
  min: number;
  max: number;
  bounded: boolean;
}

export function scoreProfile(scores: Iterable<ResponseScore | undefined>): ScoreProfile {
  let scored = 0;
  let multi = false;
  let min = Infinity;
  let max = -Infinity;
  for (const score of scores) {
    if (score === null || score === undefined) continue;
    const values = typeof score === 'number' ? [score] : score;
    if (values.length === 0) continue;
    scored++;
    if (values.length > 1) multi = true;
    for (const v of values) {
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  const kind = scored === 0 ? 'none' : multi ? 'steps' : 'scalar';
  return { kind, min, max, bounded: scored > 0 && min >= 0 && max <= 1 };
}

/**
 * Why an aggregator does not apply to a set's scores, or null when it does. With one score per
 * response every aggregator gives that score back, so the set is reported once as rm@N instead.
 * The product and the geometric mean rank responses by a product of step scores, which has a
 * meaning for probabilities only: a negative score flips the order with the parity of the
 * negative steps, and the geometric mean's logarithm is undefined.
 */
export function inapplicableReason(agg: Aggregator, profile: ScoreProfile): string | null {
  if (profile.kind === 'scalar') return 'one score per response (an outcome reward model): reported as rm@N';
  if ((agg === 'prod' || agg === 'geomean') && profile.kind === 'steps' && profile.min < 0) {
    return `needs nonnegative step scores; these go down to ${Number(profile.min.toPrecision(6))}`;
  }
  return null;
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

/**
 * Relative difference below which two aggregated scores are a tie. A PRM computes in float32
 * (7 significant digits), and the same model scores a step a few units in the last place apart
 * in-process and behind `prmkit serve` (a different batch, a JSON round trip); picks must not
 * turn on that noise.
 */
export const SCORE_TIE_RELATIVE = 1e-5;

/** True when a and b are equal up to float32 noise (both -Infinity, the unscored mark, tie too). */
export function scoresTie(a: number, b: number): boolean {
  if (a === b) return true;
  return Math.abs(a - b) <= SCORE_TIE_RELATIVE * Math.max(Math.abs(a), Math.abs(b));
}

/**
 * Index of the best value: the earliest of those that tie with the largest (scoresTie), so a
 * pick does not depend on float noise; -1 for an empty list.
 */
export function bestIndex(values: readonly number[], among?: readonly number[]): number {
  const indices = among ?? values.map((_, i) => i);
  if (indices.length === 0) return -1;
  // The plain argmax (earliest on exact ties; a NaN never replaces the first)...
  let best = indices[0];
  for (const i of indices) if (values[i] > values[best]) best = i;
  // ...then the earliest index that ties with it up to float noise.
  for (const i of indices) if (i === best || scoresTie(values[i], values[best])) return i;
  return best;
}

/** Indices of the k best values, best first; ties (scoresTie) keep the earlier index first. */
export function topIndices(values: readonly number[], k: number): number[] {
  const left = values.map((_, i) => i);
  const out: number[] = [];
  while (out.length < k && left.length > 0) {
    const best = bestIndex(values, left);
    out.push(best);
    left.splice(left.indexOf(best), 1);
  }
  return out;
}
