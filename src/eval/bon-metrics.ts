/**
 * Best-of-N metrics (Zhang et al. 2025 §2.2): pass@N, maj@N, prm@N per aggregator, PRM-weighted
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
 * - prm@N: the response with the highest aggregated score; ties go to the earliest response,
 *   and scores within float32 noise of each other (aggregate.ts SCORE_TIE_RELATIVE) tie.
 * - weighted vote: a cluster's weight is the sum of its members' weights; ties go to the
 *   earliest cluster; unscored members add 0. A response's vote value is its aggregated score
 *   (vote aggregator, default prod) or, with one score per response, that score. Weights
 *   (`voteWeights`): `score` uses the values as they are, right for probabilities; `softmax`
 *   uses exp(v - max v) / sum over the problem's responses, for unbounded scores (reward-model
 *   logits, often negative), where a plain sum would let negative scores vote against their
 *   answer and depend on the scores' offset. `auto` (default) takes `score` when every score
 *   of the set lies in [0, 1], else `softmax`. Softmax rather than rank weights: it keeps how
 *   far apart the scores are (a response far ahead outweighs several just behind), is
 *   invariant to the reward's offset, and turns into the plain argmax as score gaps grow.
 * - Scores that an aggregator cannot take make it "not applicable" for the set, with the reason
 *   (aggregate.ts inapplicableReason), never a failed run. One score per response (an outcome
 *   RM) is reported once as rm@N: the response with the highest score, earliest on ties.
 */
import { isEquivalent } from '../math/index.js';
import { aggregateScore, bestIndex, inapplicableReason, minIsOnLastStep, scoreProfile, type Aggregator, type ResponseScore } from './aggregate.js';
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

/** Index of the largest value, the earliest on ties (up to float noise: aggregate.ts bestIndex); -1 for an empty list. */
function argmaxFirst(values: readonly number[]): number {
  return bestIndex(values);
}

export interface ProblemOutcome {
  pass: boolean;
  /** Representative answer of the winning cluster, null when no response has an answer. */
  majAnswer: string | null;
  maj: boolean;
  /** Per aggregator: the picked response index and whether it is correct. */
  prm: Partial<Record<Aggregator, { pick: number; score: number; correct: boolean }>>;
  /** With one score per response (opts.scalar): the response picked by that score. */
  rm?: { pick: number; score: number; correct: boolean };
  weightedAnswer: string | null;
  weighted: boolean;
  /** Cluster index per response (-1 without answer). */
  clusters: number[];
}

export type VoteWeights = 'score' | 'softmax';

export interface OutcomeOptions {
  aggregators: readonly Aggregator[];
  /** The aggregator giving each response its vote value; null: no weighted vote. */
  voteAggregator: Aggregator | null;
  equivalent: Equivalence;
  /** How vote values become weights (default score). */
  voteWeights?: VoteWeights;
  /** One score per response: rm@N picks by it, and it is the vote value. */
  scalar?: boolean;
}

/** Per response its vote weight: the value itself, or softmax over the responses (unscored: 0). */
export function voteWeightsOf(values: readonly number[], mode: VoteWeights): number[] {
  if (mode === 'score') return values.map((v) => (v === -Infinity ? 0 : v));
  let max = -Infinity;
  for (const v of values) if (v > max) max = v;
  if (max === -Infinity) return values.map(() => 0);
  const e = values.map((v) => (v === -Infinity ? 0 : Math.exp(v - max)));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
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
  const voteAgg = opts.scalar ? 'last' : opts.voteAggregator;
  const voteValues = responses.map((r) => (voteAgg === null ? -Infinity : aggregateScore(r.score ?? null, voteAgg)));
  const weights = voteWeightsOf(voteValues, opts.voteWeights ?? 'score');
  clusters.forEach((c, i) => {
    if (c === -1) return;
    if (firstMember[c] === -1) firstMember[c] = i;
    size[c]++;
    weight[c] += weights[i];
  });

  const majCluster = argmaxFirst(size);
  const weightedCluster = voteAgg === null ? -1 : argmaxFirst(weight);
  const prm: ProblemOutcome['prm'] = {};
  for (const agg of opts.aggregators) {
    const scores = responses.map((r) => aggregateScore(r.score ?? null, agg));
    const pick = argmaxFirst(scores);
    prm[agg] = { pick, score: scores[pick], correct: pick !== -1 && responses[pick].correct };
  }
  let rm: ProblemOutcome['rm'];
  if (opts.scalar) {
    const pick = argmaxFirst(voteValues);
    rm = { pick, score: voteValues[pick], correct: pick !== -1 && responses[pick].correct };
  }
  const clusterAnswer = (c: number) => (c === -1 ? null : responses[firstMember[c]].extracted);
  const clusterCorrect = (c: number) => c !== -1 && responses[firstMember[c]].correct;
  return {
    pass: responses.some((r) => r.correct),
    majAnswer: clusterAnswer(majCluster),
    maj: clusterCorrect(majCluster),
    prm,
    ...(rm ? { rm } : {}),
    weightedAnswer: clusterAnswer(weightedCluster),
    weighted: clusterCorrect(weightedCluster),
    clusters,
  };
}

export interface BonPoint {
  n: number;
  pass_at_n: number;
  maj_at_n: number;
  /** Per applicable aggregator (none with one score per response: see rm_at_n). */
  prm_at_n: Partial<Record<Aggregator, number>>;
  /** With one score per response: accuracy of the response with the best score; else null. */
  rm_at_n: number | null;
  weighted_vote: number | null;
  /**
   * Baselines a PRM pick must beat: the expected accuracy of a uniformly random pick (the mean
   * share of right responses among the first N), and a constant score (every response ties, so
   * the first is picked).
   */
  random_pick: number;
  constant_score: number;
}

export interface BonIntervals {
  pass_at_n: Interval;
  maj_at_n: Interval;
  prm_at_n: Partial<Record<Aggregator, Interval>>;
  rm_at_n: Interval | null;
  weighted_vote: Interval | null;
}

export interface BonCurvePoint extends BonPoint {
  ci?: BonIntervals;
}

export interface BonMetrics extends BonPoint {
  n_problems: number;
  /** Percent of scored step lists (first n responses) whose first minimum is the last step. */
  min_at_last_step: number | null;
  /**
   * Per aggregator: percent of the picked responses (prm@n) whose first minimum step score is on
   * their last step (Zhang et al. 2025 §3.2: a PRM whose picks hinge on the last step grades the
   * answer, as an outcome RM does, not the process).
   */
  picked_min_at_last_step: Partial<Record<Aggregator, number | null>>;
  /** Responses among the first n without a usable score. */
  n_unscored: number;
  /** What the scores are: one per response (scalar), per step (steps), or absent (none). */
  score_kind: 'none' | 'scalar' | 'steps';
  /** Smallest and largest score value of the set; null without scores. */
  score_range: [number, number] | null;
  /** The aggregators applied (those in prm_at_n). */
  aggregators: Aggregator[];
  /** Aggregators asked for that do not apply to these scores, with the reason. */
  not_applicable: Partial<Record<Aggregator, string>>;
  vote_aggregator: Aggregator;
  /** How vote values were weighted; null when there is no weighted vote. */
  vote_weights: VoteWeights | null;
  /** Why the weighted vote is null, when it is despite scores. */
  weighted_vote_note?: string;
  curve: BonCurvePoint[];
  /** Intervals at n, with the bootstrap settings; absent when resamples is 0. */
  ci?: BonIntervals & { level: number; resamples: number; seed: number; method: string };
}

/** The outcome options that reproduce a metrics run's picks (graded records use them). */
export function outcomeOptionsOf(m: BonMetrics, equivalent: Equivalence): OutcomeOptions {
  const weighted = m.vote_weights !== null;
  return {
    aggregators: m.aggregators,
    voteAggregator: weighted ? m.vote_aggregator : null,
    voteWeights: m.vote_weights ?? 'score',
    scalar: m.score_kind === 'scalar',
    equivalent,
  };
}

export interface BonMetricsOptions {
  /** Responses per problem (default: the smallest count over problems); every problem needs >= n. */
  n?: number;
  aggregators?: readonly Aggregator[];
  voteAggregator?: Aggregator;
  /** auto (default): score weights for scores in [0, 1], softmax otherwise. */
  voteWeights?: VoteWeights | 'auto';
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
  const requested = [...(opts.aggregators ?? ['min', 'prod', 'last', 'mean', 'geomean'])];
  const voteAggregator = opts.voteAggregator ?? 'prod';
  const equivalent = opts.equivalent ?? cachedEquivalence();
  const profile = scoreProfile(problems.flatMap((p) => p.responses.slice(0, n).map((r) => r.score)));
  const scalar = profile.kind === 'scalar';
  const notApplicable: Partial<Record<Aggregator, string>> = {};
  for (const agg of requested) {
    const reason = inapplicableReason(agg, profile);
    if (reason !== null) notApplicable[agg] = reason;
  }
  const aggregators = requested.filter((a) => notApplicable[a] === undefined);
  let voteWeights: VoteWeights | null = null;
  let weightedNote: string | undefined;
  if (profile.kind !== 'none') {
    const voteReason = scalar ? null : inapplicableReason(voteAggregator, profile);
    const mode = opts.voteWeights ?? 'auto';
    if (voteReason !== null) weightedNote = `vote aggregator ${voteAggregator} ${voteReason}; choose another with --vote-agg`;
    else if (mode === 'score' && profile.min < 0) weightedNote = 'score weights need nonnegative scores; use softmax weights';
    else voteWeights = mode === 'auto' ? (profile.bounded ? 'score' : 'softmax') : mode;
  }
  const outcomeOpts: OutcomeOptions = {
    aggregators,
    voteAggregator: voteWeights === null ? null : voteAggregator,
    voteWeights: voteWeights ?? 'score',
    scalar,
    equivalent,
  };

  let nUnscored = 0;
  let nStepLists = 0;
  let nMinLast = 0;
  for (const p of problems) {
    for (const r of p.responses.slice(0, n)) {
      const score = r.score ?? null;
      if (score === null || (typeof score !== 'number' && score.length === 0)) nUnscored++;
      const onLast = scalar ? null : minIsOnLastStep(score);
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
    const rm = outcomes.map((o) => o.rm?.correct === true);
    const prmFlags = Object.fromEntries(
      aggregators.map((agg) => [agg, outcomes.map((o) => (o.prm[agg] as { correct: boolean }).correct)]),
    ) as Record<Aggregator, boolean[]>;
    const point: BonCurvePoint = {
      n: size,
      pass_at_n: meanPercent(pass),
      maj_at_n: meanPercent(maj),
      prm_at_n: anyScored ? Object.fromEntries(aggregators.map((agg) => [agg, meanPercent(prmFlags[agg])])) : {},
      rm_at_n: scalar ? meanPercent(rm) : null,
      weighted_vote: voteWeights !== null ? meanPercent(weighted) : null,
      random_pick: problems.reduce((a, p) => a + p.responses.slice(0, size).filter((r) => r.correct).length / size, 0) * (100 / problems.length),
      constant_score: meanPercent(problems.map((p) => p.responses[0].correct)),
    };
    if (draws.length > 0) {
      const interval = (flags: boolean[]) => bootstrapInterval(flags.map(Number), draws, level);
      point.ci = {
        pass_at_n: interval(pass),
        maj_at_n: interval(maj),
        prm_at_n: anyScored ? Object.fromEntries(aggregators.map((agg) => [agg, interval(prmFlags[agg])])) : {},
        rm_at_n: scalar ? interval(rm) : null,
        weighted_vote: voteWeights !== null ? interval(weighted) : null,
      };
    }
    return point;
  });

  const last = curve[curve.length - 1];
  const pickedMinAtLast: Partial<Record<Aggregator, number | null>> = {};
  if (!scalar && anyScored) {
    const outcomes = problems.map((p) => problemOutcome(p, n, outcomeOpts));
    for (const agg of aggregators) {
      const flags = outcomes
        .map((o, i) => {
          const pick = o.prm[agg]?.pick ?? -1;
          return pick === -1 ? null : minIsOnLastStep(problems[i].responses[pick].score ?? null);
        })
        .filter((f): f is boolean => f !== null);
      pickedMinAtLast[agg] = flags.length === 0 ? null : meanPercent(flags);
    }
  }
  return {
    n_problems: problems.length,
    n,
    pass_at_n: last.pass_at_n,
    maj_at_n: last.maj_at_n,
    prm_at_n: last.prm_at_n,
    rm_at_n: last.rm_at_n,
    weighted_vote: last.weighted_vote,
    random_pick: last.random_pick,
    constant_score: last.constant_score,
    min_at_last_step: nStepLists === 0 ? null : (100 * nMinLast) / nStepLists,
    picked_min_at_last_step: pickedMinAtLast,
    n_unscored: nUnscored,
    score_kind: profile.kind,
    score_range: profile.kind === 'none' ? null : [profile.min, profile.max],
    aggregators,
    not_applicable: notApplicable,
    vote_aggregator: voteAggregator,
    vote_weights: voteWeights,
    ...(weightedNote ? { weighted_vote_note: weightedNote } : {}),
    curve,
    ...(last.ci ? { ci: { ...last.ci, level, resamples, seed, method: 'percentile bootstrap over problems (paired draws)' } } : {}),
  };
}
