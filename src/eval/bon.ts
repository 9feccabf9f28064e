import { basename, dirname, extname } from 'node:path';
import { gradeAnswer } from '../math/index.js';
import { progressBar } from '../util/progress.js';
import { aggregateScore, type Aggregator, type ResponseScore } from './aggregate.js';
import {
  bonMetrics,
  cachedEquivalence,
  outcomeOptionsOf,
  problemOutcome,
  type BonMetrics,
  type BonMetricsOptions,
  type Equivalence,
  type GradedProblem,
  type OutcomeOptions,
} from './bon-metrics.js';
import { markdownTable, pct } from './markdown.js';

/** What grading needs from a candidates line (src/data/bon.ts BonCandidate fits). */
export interface CandidateLike {
  id: string;
  answer: string;
  responses: readonly string[];
  line?: number;
}

export type Grader = (response: string, gold: string) => { extracted: string | null; correct: boolean };

/** Memoises grading per (response, gold): policies repeat responses and grading can be symbolic. */
export function cachedGrader(grade: Grader = (r, g) => gradeAnswer(r, g)): Grader {
  const cache = new Map<string, { extracted: string | null; correct: boolean }>();
  return (response, gold) => {
    const key = `${gold}\u0000${response}`;
    let result = cache.get(key);
    if (result === undefined) {
      const { extracted, correct } = grade(response, gold);
      cache.set(key, (result = { extracted, correct }));
    }
    return result;
  };
}

/**
 * Grades the first n responses of every candidate line and attaches their scores
 * (scores[i][j] for response j of line i; a missing list leaves the responses unscored).
 */
export function gradeCandidates(
  candidates: readonly CandidateLike[],
  scores: readonly (readonly ResponseScore[] | undefined)[],
  opts: { n: number; grader?: Grader; label?: string },
): GradedProblem[] {
  const grader = opts.grader ?? cachedGrader();
  const bar = progressBar(opts.label ?? 'grade', candidates.length);
  try {
    return candidates.map((c, i) => {
      const problemScores = scores[i];
      const problem: GradedProblem = {
        id: c.id,
        responses: c.responses.slice(0, opts.n).map((response, j) => ({
          ...grader(response, c.answer),
          score: problemScores ? (problemScores[j] ?? null) : null,
        })),
      };
      bar.tick();
      return problem;
    });
  } finally {
    bar.stop();
  }
}

export interface GradedRecord {
  id: string;
  line?: number;
  answer: string;
  pass: boolean;
  maj: { answer: string | null; correct: boolean };
  weighted_vote: { answer: string | null; correct: boolean };
  prm: Partial<Record<Aggregator, { pick: number; score: number | null; correct: boolean }>>;
  /** With one score per response: the response that score picks. */
  rm?: { pick: number; score: number | null; correct: boolean };
  responses: {
    extracted: string | null;
    correct: boolean;
    cluster: number;
    score: ResponseScore;
    aggregated: Partial<Record<Aggregator, number | null>>;
  }[];
}

/** One graded.jsonl line per problem: grades, clusters, aggregated scores and picks at n. */
export function gradedRecords(
  candidates: readonly CandidateLike[],
  problems: readonly GradedProblem[],
  opts: Omit<OutcomeOptions, 'equivalent'> & { n: number; equivalent?: Equivalence },
): GradedRecord[] {
  const equivalent = opts.equivalent ?? cachedEquivalence();
  const finite = (x: number) => (Number.isFinite(x) ? x : null);
  return problems.map((p, i) => {
    const o = problemOutcome(p, opts.n, { ...opts, equivalent });
    const prm: GradedRecord['prm'] = {};
    for (const agg of opts.aggregators) {
      const pick = o.prm[agg] as { pick: number; score: number; correct: boolean };
      prm[agg] = { pick: pick.pick, score: finite(pick.score), correct: pick.correct };
    }
    return {
      id: p.id,
      ...(candidates[i].line === undefined ? {} : { line: candidates[i].line }),
      answer: candidates[i].answer,
      pass: o.pass,
      maj: { answer: o.majAnswer, correct: o.maj },
      weighted_vote: { answer: o.weightedAnswer, correct: o.weighted },
      prm,
      ...(o.rm ? { rm: { pick: o.rm.pick, score: finite(o.rm.score), correct: o.rm.correct } } : {}),
      responses: p.responses.slice(0, opts.n).map((r, j) => ({
        extracted: r.extracted,
        correct: r.correct,
        cluster: o.clusters[j],
        score: r.score ?? null,
        aggregated: Object.fromEntries(
          opts.aggregators.map((agg) => [agg, finite(aggregateScore(r.score ?? null, agg))]),
        ),
      })),
    };
  });
}

/** Grades, then computes the metrics and the graded records of one candidate set. */
export function evaluateBonSet(
  candidates: readonly CandidateLike[],
  scores: readonly (readonly ResponseScore[] | undefined)[],
  opts: BonMetricsOptions & { n: number; grader?: Grader; label?: string },
): { metrics: BonMetrics; graded: GradedRecord[] } {
  const equivalent = opts.equivalent ?? cachedEquivalence();
  const problems = gradeCandidates(candidates, scores, opts);
  const metrics = bonMetrics(problems, { ...opts, equivalent });
  const graded = gradedRecords(candidates, problems, { n: metrics.n, ...outcomeOptionsOf(metrics, equivalent) });
  return { metrics, graded };
}

/**
 * A short, unique name per candidate file: the file name without extension, or its folder
 * name when several files share a name (bon-eval/gsm8k/test.jsonl -> gsm8k), else numbered.
 */
export function candidateSetNames(files: readonly string[]): string[] {
  const stem = (f: string) => basename(f, extname(f));
  const stems = files.map(stem);
  const dirs = files.map((f) => basename(dirname(f)));
  const names = stems.map((s, i) => (stems.filter((t) => t === s).length > 1 ? dirs[i] : s));
  return names.map((name, i) => (names.filter((t) => t === name).length > 1 ? `${name}-${i + 1}` : name));
}

export interface BonSummaryRow {
  n_problems: number;
  n: number;
  pass_at_n: number;
  maj_at_n: number;
  prm_at_n: Partial<Record<Aggregator, number>>;
  rm_at_n?: number | null;
  weighted_vote: number | null;
  /** Baselines (bon-metrics.ts BonPoint): expected accuracy of a random pick, and of a constant score. */
  random_pick?: number;
  constant_score?: number;
  min_at_last_step: number | null;
  not_applicable?: Partial<Record<Aggregator, string>>;
}

export interface BonSummary {
  sets: Record<string, BonSummaryRow>;
  /** Plain (unweighted) mean over the sets, as the paper averages its 7 sets. */
  average: Omit<BonSummaryRow, 'n_problems' | 'n'> & { n_sets: number };
}

function summaryRow(m: BonMetrics): BonSummaryRow {
  return {
    n_problems: m.n_problems,
    n: m.n,
    pass_at_n: m.pass_at_n,
    maj_at_n: m.maj_at_n,
    prm_at_n: m.prm_at_n,
    rm_at_n: m.rm_at_n,
    weighted_vote: m.weighted_vote,
    random_pick: m.random_pick,
    constant_score: m.constant_score,
    min_at_last_step: m.min_at_last_step,
    not_applicable: m.not_applicable,
  };
}

function meanOf(values: readonly (number | null | undefined)[]): number | null {
  const present = values.filter((v): v is number => typeof v === 'number');
  return present.length === 0 ? null : present.reduce((a, b) => a + b, 0) / present.length;
}

export function summarizeBonSets(sets: readonly { name: string; metrics: BonMetrics }[]): BonSummary {
  const rows = sets.map((s) => summaryRow(s.metrics));
  const aggregators = [...new Set(sets.flatMap((s) => s.metrics.aggregators))];
  const prm: Partial<Record<Aggregator, number>> = {};
  for (const agg of aggregators) {
    const m = meanOf(rows.map((r) => r.prm_at_n[agg]));
    if (m !== null) prm[agg] = m;
  }
  return {
    sets: Object.fromEntries(sets.map((s, i) => [s.name, rows[i]])),
    average: {
      n_sets: sets.length,
      pass_at_n: meanOf(rows.map((r) => r.pass_at_n)) as number,
      maj_at_n: meanOf(rows.map((r) => r.maj_at_n)) as number,
      prm_at_n: prm,
      rm_at_n: meanOf(rows.map((r) => r.rm_at_n)),
      weighted_vote: meanOf(rows.map((r) => r.weighted_vote)),
      random_pick: meanOf(rows.map((r) => r.random_pick)) ?? undefined,
      constant_score: meanOf(rows.map((r) => r.constant_score)) ?? undefined,
      min_at_last_step: meanOf(rows.map((r) => r.min_at_last_step)),
    },
  };
}

/** Table of one or more sets (rows) with pass/maj/prm per aggregator/weighted vote columns. */
export function bonMarkdown(rows: readonly { name: string; row: Omit<BonSummaryRow, 'n_problems' | 'n'> & { n_problems?: number; n?: number } }[], aggregators: readonly Aggregator[]): string {
  const withRm = rows.some(({ row }) => typeof row.rm_at_n === 'number');
  const header = ['set', 'problems', 'N', 'pass@N', 'maj@N', ...(withRm ? ['rm@N'] : []), ...aggregators.map((a) => `prm@N ${a}`), 'weighted vote', 'random pick', 'constant score', 'min at last step'];
  const table = markdownTable(
    header,
    rows.map(({ name, row }) => [
      name,
      row.n_problems === undefined ? '' : String(row.n_problems),
      row.n === undefined ? '' : String(row.n),
      pct(row.pass_at_n),
      pct(row.maj_at_n),
      ...(withRm ? [pct(row.rm_at_n)] : []),
      ...aggregators.map((a) => (row.not_applicable?.[a] !== undefined ? 'n/a' : pct(row.prm_at_n[a]))),
      pct(row.weighted_vote),
      pct(row.random_pick),
      pct(row.constant_score),
      pct(row.min_at_last_step),
    ]),
  );
  return [table, ...belowBaselineLines(rows, aggregators), ...notApplicableLines(rows)].join('\n');
}

/** Picks no better than chance, said in words: a table alone lets them pass as results. */
export function belowBaselineLines(
  rows: readonly { name: string; row: { prm_at_n: Partial<Record<Aggregator, number>>; rm_at_n?: number | null; random_pick?: number } }[],
  aggregators: readonly Aggregator[],
): string[] {
  const lines: string[] = [];
  for (const { name, row } of rows) {
    if (row.random_pick === undefined) continue;
    const random = row.random_pick;
    const picks: [string, number | null | undefined][] = [...aggregators.map((a): [string, number | undefined] => [`prm@N ${a}`, row.prm_at_n[a]]), ['rm@N', row.rm_at_n]];
    const below = picks.filter(([, v]) => typeof v === 'number' && v <= random).map(([label, v]) => `${label} ${pct(v)}`);
    if (below.length > 0) lines.push(`- ${name}: ${below.join(', ')} at or below a random pick (${pct(random)}): these picks are no better than chance.`);
  }
  return lines.length === 0 ? [] : ['', 'Below the random-pick baseline:', ...lines];
}

/** "n/a" explained: each aggregator that does not apply to some set, with the reason. */
function notApplicableLines(rows: readonly { name: string; row: { not_applicable?: Partial<Record<Aggregator, string>> } }[]): string[] {
  const reasons = new Map<string, string[]>();
  for (const { name, row } of rows) {
    for (const [agg, reason] of Object.entries(row.not_applicable ?? {})) {
      const key = `${agg}: ${reason}`;
      reasons.set(key, [...(reasons.get(key) ?? []), name]);
    }
  }
  if (reasons.size === 0) return [];
  const many = rows.length > 1;
  return ['', 'Not applicable (n/a):', ...[...reasons].map(([reason, sets]) => `- prm@N ${reason}${many ? ` (${sets.join(', ')})` : ''}`)];
}

/** The curve over N with intervals, as markdown. */
export function bonCurveMarkdown(metrics: BonMetrics): string {
  const aggs = metrics.aggregators;
  const cell = (v: number | null | undefined, ci?: [number, number] | null) =>
    ci ? `${pct(v)} [${pct(ci[0])}, ${pct(ci[1])}]` : pct(v);
  const withRm = metrics.rm_at_n !== null;
  return markdownTable(
    ['N', 'pass@N', 'maj@N', ...(withRm ? ['rm@N'] : []), ...aggs.map((a) => `prm@N ${a}`), 'weighted vote', 'random pick', 'constant score'],
    metrics.curve.map((p) => [
      String(p.n),
      cell(p.pass_at_n, p.ci?.pass_at_n),
      cell(p.maj_at_n, p.ci?.maj_at_n),
      ...(withRm ? [cell(p.rm_at_n, p.ci?.rm_at_n)] : []),
      ...aggs.map((a) => cell(p.prm_at_n[a], p.ci?.prm_at_n[a])),
      cell(p.weighted_vote, p.ci?.weighted_vote),
      pct(p.random_pick),
      pct(p.constant_score),
    ]),
  );
}
