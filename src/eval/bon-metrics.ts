/**
 * Best-of-N metrics (PAPER.md §2.2): pass@N, maj@N, prm@N per aggregator, PRM-weighted
 * majority vote, the curve over N, bootstrap intervals over problems, and the share of
 * responses whose minimum step score is on the last step (§3.2). Every figure is a percentage.
 *
 * Choices, all deterministic:
 * - Subsampling: the N-response metrics use each problem's FIRST N responses (policy samples
 *   are i.i.d., so a prefix is an unbiased sample of size N, and nested prefixes make the
 *   curve monotone for pass@N).
 * - Answers are grouped by equivalence, not by string: responses are visited in order, an
 *   answer joins the first cluster whose representative (its first member) it is equivalent
 *   to, else opens a new cluster. Responses without an extracted answer do not vote.
 * - maj@N: the largest cluster wins; ties go to the cluster whose first member comes first.
 *   It is correct when its representative response was graded correct.
 * - prm@N: the response with the highest aggregated score; ties go to the earliest response.
 * - weighted vote: a cluster's weight is the sum of its members' aggregated scores (vote
 *   aggregator, default prod; unscored members add 0); ties go to the earliest cluster.
 *   Weights are meant to be probabilities (nonnegative).
 */
import { isEquivalent } from '../math/index.js';
import { aggregateScore, minIsOnLastStep, type Aggregator, type ResponseScore } from './aggregate.js';
import { bootstrapCounts, bootstrapInterval, type BootstrapOptions, type Interval } from './bootstrap.js';

export interface GradedResponse {
  extracted: string | null;
  correct: boolean;
  score?: ResponseScore;
}

export interface GradedProblem {
  id: string;
  responses: readonly GradedResponse[];
}

export type Equivalence = (a: string, b: string) => boolean;

/** Memoises an equivalence test per (a, b): symbolic checks are slow and answers repeat. */
export function cachedEquivalence(equivalent: Equivalence = (a, b) => isEquivalent(a, b)): Equivalence {
  const cache = new Map<string, boolean>();
  return (a, b) => {
    if (a === b) return true;
    const key = `${a}\u0000${b}`;
    let value = cache.get(key);
    if (value === undefined) cache.set(key, (value = equivalent(a, b)));
    return value;
  };
}

/** Cluster index per answer (in order of first appearance), -1 for a missing answer. */
export function clusterAnswers(answers: readonly (string | null)[], equivalent: Equivalence): number[] {
  const representatives: string[] = [];
  const byString = new Map<string, number>();
  return answers.map((answer) => {
    if (answer === null) return -1;
    const known = byString.get(answer);
    if (known !== undefined) return known;
    let cluster = representatives.findIndex((rep) => equivalent(rep, answer));
    if (cluster === -1) {
      cluster = representatives.length;
      representatives.push(answer);
    }
    byString.set(answer, cluster);
    return cluster;
  });
}

/** Index of the largest value, the earliest on ties; -1 for an empty list. */
function argmaxFirst(values: readonly number[]): number {
  let best = -1;
  for (let i = 0; i < values.length; i++) if (best === -1 || values[i] > values[best]) best = i;
  return best;
}

export interface ProblemOutcome {
  pass: boolean;
  /** Representative answer of the winning cluster, null when no response has an answer. */
  majAnswer: string | null;
  maj: boolean;
  /** Per aggregator: the picked response index and whether it is correct. */
  prm: Partial<Record<Aggregator, { pick: number; score: number; correct: boolean }>>;
  weightedAnswer: string | null;
  weighted: boolean;
  /** Cluster index per response (-1 without answer). */
  clusters: number[];
}

export interface OutcomeOptions {
  aggregators: readonly Aggregator[];
  voteAggregator: Aggregator;
  equivalent: Equivalence;
}

/** The BoN outcome of one problem over its first n responses. */
export function problemOutcome(problem: GradedProblem, n: number, opts: OutcomeOptions): ProblemOutcome {
  const responses = problem.responses.slice(0, n);
  const clusters = clusterAnswers(
    responses.map((r) => r.extracted),
    opts.equivalent,
  );
  const nClusters = clusters.reduce((m, c) => Math.max(m, c + 1), 0);
  const firstMember = new Array<number>(nClusters).fill(-1);
  const size = new Array<number>(nClusters).fill(0);
  const weight = new Array<number>(nClusters).fill(0);
  clusters.forEach((c, i) => {
    if (c === -1) return;
    if (firstMember[c] === -1) firstMember[c] = i;
    size[c]++;
    const w = aggregateScore(responses[i].score ?? null, opts.voteAggregator);
    if (w !== -Infinity) weight[c] += w;
  });

  const majCluster = argmaxFirst(size);
  const weightedCluster = argmaxFirst(weight);
  const prm: ProblemOutcome['prm'] = {};
  for (const agg of opts.aggregators) {
    const scores = responses.map((r) => aggregateScore(r.score ?? null, agg));
    const pick = argmaxFirst(scores);
    prm[agg] = { pick, score: scores[pick], correct: pick !== -1 && responses[pick].correct };
  }
  const clusterAnswer = (c: number) => (c === -1 ? null : responses[firstMember[c]].extracted);
  const clusterCorrect = (c: number) => c !== -1 && responses[firstMember[c]].correct;
  return {
    pass: responses.some((r) => r.correct),
    majAnswer: clusterAnswer(majCluster),
    maj: clusterCorrect(majCluster),
    prm,
    weightedAnswer: clusterAnswer(weightedCluster),
    weighted: clusterCorrect(weightedCluster),
    clusters,
  };
}

export interface BonPoint {
  n: number;
  pass_at_n: number;
  maj_at_n: number;
  prm_at_n: Partial<Record<Aggregator, number>>;
  weighted_vote: number | null;
}

export interface BonIntervals {
  pass_at_n: Interval;
  maj_at_n: Interval;
  prm_at_n: Partial<Record<Aggregator, Interval>>;
  weighted_vote: Interval | null;
}

export interface BonCurvePoint extends BonPoint {
  ci?: BonIntervals;
}

export interface BonMetrics extends BonPoint {
  n_problems: number;
  /** Percent of scored step lists (first n responses) whose first minimum is the last step. */
  min_at_last_step: number | null;
  /** Responses among the first n without a usable score. */
  n_unscored: number;
  aggregators: Aggregator[];
  vote_aggregator: Aggregator;
  curve: BonCurvePoint[];
  /** Intervals at n, with the bootstrap settings; absent when resamples is 0. */
  ci?: BonIntervals & { level: number; resamples: number; seed: number; method: string };
}

export interface BonMetricsOptions {
  /** Responses per problem (default: the smallest count over problems); every problem needs >= n. */
  n?: number;
  aggregators?: readonly Aggregator[];
  voteAggregator?: Aggregator;
  equivalent?: Equivalence;
  bootstrap?: BootstrapOptions;
}

/** N = 1, 2, 4, ... below n, then n itself. */
export function curveSizes(n: number): number[] {
  const sizes: number[] = [];
  for (let k = 1; k < n; k *= 2) sizes.push(k);
  sizes.push(n);
  return sizes;
}

function meanPercent(flags: readonly boolean[]): number {
  return flags.length === 0 ? 0 : (100 * flags.filter(Boolean).length) / flags.length;
}

export function bonMetrics(problems: readonly GradedProblem[], opts: BonMetricsOptions = {}): BonMetrics {
  if (problems.length === 0) throw new Error('Best-of-N: no problems');
  const available = Math.min(...problems.map((p) => p.responses.length));
  const n = opts.n ?? available;
  if (!Number.isInteger(n) || n < 1) throw new Error(`Best-of-N: n must be a positive integer, got ${n}`);
  const short = problems.find((p) => p.responses.length < n);
  if (short) throw new Error(`Best-of-N: problem "${short.id}" has ${short.responses.length} responses, fewer than n=${n}`);
  const aggregators = [...(opts.aggregators ?? ['min', 'prod', 'last', 'mean', 'geomean'])];
  const voteAggregator = opts.voteAggregator ?? 'prod';
  const equivalent = opts.equivalent ?? cachedEquivalence();
  const outcomeOpts: OutcomeOptions = { aggregators, voteAggregator, equivalent };

  let nUnscored = 0;
  let nStepLists = 0;
  let nMinLast = 0;
  for (const p of problems) {
    for (const r of p.responses.slice(0, n)) {
      const score = r.score ?? null;
      if (score === null || (typeof score !== 'number' && score.length === 0)) nUnscored++;
      const onLast = minIsOnLastStep(score);
      if (onLast !== null) {
        nStepLists++;
        if (onLast) nMinLast++;
      }
    }
  }
  const anyScored = nUnscored < problems.length * n;

  const resamples = opts.bootstrap?.resamples ?? 1000;
  const seed = opts.bootstrap?.seed ?? 0;
  const level = opts.bootstrap?.level ?? 95;
  const draws = resamples > 0 ? bootstrapCounts(problems.length, resamples, seed) : [];

  const curve: BonCurvePoint[] = curveSizes(n).map((size) => {
    const outcomes = problems.map((p) => problemOutcome(p, size, outcomeOpts));
    const pass = outcomes.map((o) => o.pass);
    const maj = outcomes.map((o) => o.maj);
    const weighted = outcomes.map((o) => o.weighted);
    const prmFlags = Object.fromEntries(
      aggregators.map((agg) => [agg, outcomes.map((o) => (o.prm[agg] as { correct: boolean }).correct)]),
    ) as Record<Aggregator, boolean[]>;
    const point: BonCurvePoint = {
      n: size,
      pass_at_n: meanPercent(pass),
      maj_at_n: meanPercent(maj),
      prm_at_n: anyScored ? Object.fromEntries(aggregators.map((agg) => [agg, meanPercent(prmFlags[agg])])) : {},
      weighted_vote: anyScored ? meanPercent(weighted) : null,
    };
    if (draws.length > 0) {
      const interval = (flags: boolean[]) => bootstrapInterval(flags.map(Number), draws, level);
      point.ci = {
        pass_at_n: interval(pass),
        maj_at_n: interval(maj),
        prm_at_n: anyScored ? Object.fromEntries(aggregators.map((agg) => [agg, interval(prmFlags[agg])])) : {},
        weighted_vote: anyScored ? interval(weighted) : null,
      };
    }
    return point;
  });

  const last = curve[curve.length - 1];
  return {
    n_problems: problems.length,
    n,
    pass_at_n: last.pass_at_n,
    maj_at_n: last.maj_at_n,
    prm_at_n: last.prm_at_n,
    weighted_vote: last.weighted_vote,
    min_at_last_step: nStepLists === 0 ? null : (100 * nMinLast) / nStepLists,
    n_unscored: nUnscored,
    aggregators,
    vote_aggregator: voteAggregator,
    curve,
    ...(last.ci ? { ci: { ...last.ci, level, resamples, seed, method: 'percentile bootstrap over problems (paired draws)' } } : {}),
  };
}
