import { join } from 'node:path';
import { readBonCandidates, type BonCandidate, type BonFieldOptions } from '../data/bon.js';
import { addJsonlOutput, RecordError } from '../data/jsonl.js';
import { AtomicOutputSet } from '../util/durable-fs.js';
import { createStepSplitter, describeSplitStats, type StepSplitOptions, type StepSplitStats } from '../data/step-split.js';
import type { Aggregator, ResponseScore } from './aggregate.js';
import type { BonMetrics, VoteWeights } from './bon-metrics.js';
import { cachedEquivalence } from './bon-metrics.js';
import {
  bonCurveMarkdown,
  bonMarkdown,
  cachedGrader,
  candidateSetNames,
  evaluateBonSet,
  summarizeBonSets,
  type BonSummary,
  type GradedRecord,
  type Grader,
} from './bon.js';
import type { BootstrapOptions } from './bootstrap.js';
import { scoreNamingSamples, type StepScorer } from './step-scorer.js';

export interface BonRunOptions {
  /** One or more candidate files; several make a multi-set run with a summary. */
  candidates: string[];
  /** Scores come from this field of each line ... */
  scoresField?: string;
  /** ... or from a PRM scoring the responses split into steps. */
  scorer?: StepScorer;
  stepSeparator?: string;
  /** How responses are split into steps for the PRM (data/step-split.ts); stepSeparator overrides its separator. */
  split?: StepSplitOptions;
  n: number;
  aggregators: Aggregator[];
  voteAggregator?: Aggregator;
  /** Weights of the weighted vote: auto (default), score or softmax (bon-metrics.ts). */
  voteWeights?: VoteWeights | 'auto';
  fields?: Omit<BonFieldOptions, 'scoresField'>;
  bootstrap?: BootstrapOptions;
  /** Grader override (tests); default gradeAnswer, cached. */
  grader?: Grader;
  out: string;
}

export interface BonSetResult {
  name: string;
  file: string;
  metrics: BonMetrics;
  dir: string;
}

export interface BonRunResult {
  sets: BonSetResult[];
  summary?: BonSummary;
  markdown: string;
}

/** Reads a candidates file and checks that every line has at least n responses (and scores) and a new id. */
export async function loadCandidates(
  file: string,
  opts: { n: number; fields?: BonFieldOptions; requireScores?: string },
): Promise<BonCandidate[]> {
  const out: BonCandidate[] = [];
  // A problem listed twice would be counted twice in every metric: an error, not a warning,
  // since which copy to keep is the user's call.
  const firstLine = new Map<string, number>();
  for await (const c of readBonCandidates(file, opts.fields ?? {})) {
    const earlier = firstLine.get(c.id);
    if (earlier !== undefined) {
      throw new RecordError(file, c.line, opts.fields?.idField ?? 'idx', `problem id "${c.id}" already given at line ${earlier}; each problem may appear once`);
    }
    firstLine.set(c.id, c.line);
    if (c.responses.length < opts.n) {
      throw new RecordError(
        file,
        c.line,
        opts.fields?.responsesField ?? 'responses',
        `${c.responses.length} responses, fewer than n=${opts.n} (lower --n or generate more)`,
      );
    }
    if (opts.requireScores !== undefined && c.scores === undefined) {
      throw new RecordError(file, c.line, opts.requireScores, 'missing: --scores-field needs a score per response');
    }
    out.push(c);
  }
  if (out.length === 0) throw new Error(`${file}: no candidate lines`);
  return out;
}

/**
 * Scores the first n responses of every candidate with the PRM: each response is split into
 * steps by the step splitter (default: paragraphs) and all of them go to the scorer in one
 * batched call. A response with no step (empty text) or too long for the model stays unscored
 * (null). `onSplit` receives what the splitter did.
 */
export async function scoreCandidates(
  candidates: readonly BonCandidate[],
  scorer: StepScorer,
  opts: { n: number; stepSeparator?: string; split?: StepSplitOptions; label?: string; onSplit?: (stats: StepSplitStats) => void },
): Promise<ResponseScore[][]> {
  const splitter = createStepSplitter({ ...opts.split, ...(opts.stepSeparator !== undefined ? { separator: opts.stepSeparator } : {}) });
  const samples: { id: string; problem: string; steps: string[] }[] = [];
  const where: [number, number][] = [];
  const scores: ResponseScore[][] = candidates.map((c) => new Array<ResponseScore>(Math.min(opts.n, c.responses.length)).fill(null));
  candidates.forEach((c, i) => {
    c.responses.slice(0, opts.n).forEach((response, j) => {
      const steps = splitter.split(response);
      if (steps.length === 0) return;
      samples.push({ id: `${c.id} response ${j}`, problem: c.problem, steps });
      where.push([i, j]);
    });
  });
  opts.onSplit?.(splitter.stats);
  const { stepScores } = await scoreNamingSamples(scorer, samples, opts.label);
  stepScores.forEach((s, k) => {
    const [i, j] = where[k];
    scores[i][j] = s;
  });
  return scores;
}

/**
 * DIR/metrics.json and DIR/graded.jsonl of one candidate set, written atomically: into `set`
 * when given (committed by the caller with its other outputs), else committed here.
 */
export async function writeBonOutputs(dir: string, metrics: object, graded: readonly GradedRecord[], set?: AtomicOutputSet): Promise<void> {
  const outputs = set ?? new AtomicOutputSet();
  try {
    await outputs.addFile(join(dir, 'metrics.json'), `${JSON.stringify(metrics, null, 2)}\n`);
    await addJsonlOutput(outputs, join(dir, 'graded.jsonl'), graded);
    if (!set) await outputs.commit();
  } catch (err) {
    if (!set) await outputs.discard();
    throw err;
  }
}

/** `prmkit eval bon`: one or several candidate sets -> metrics.json + graded.jsonl (+ summary.json). */
export async function runBon(opts: BonRunOptions): Promise<BonRunResult> {
  // Every set's files (and the summary) are put in place together once all sets are done: a
  // run that fails on its third set leaves the outputs of an earlier run as they were.
  const outputs = new AtomicOutputSet();
  try {
    const result = await evaluateBonSets(opts, outputs);
    await outputs.commit();
    return result;
  } catch (err) {
    await outputs.discard();
    throw err;
  }
}

async function evaluateBonSets(opts: BonRunOptions, outputs: AtomicOutputSet): Promise<BonRunResult> {
  if ((opts.scoresField === undefined) === (opts.scorer === undefined)) {
    throw new Error('runBon: give exactly one of scoresField and scorer');
  }
  if (opts.candidates.length === 0) throw new Error('runBon: no candidate file');
  const names = candidateSetNames(opts.candidates);
  const multi = opts.candidates.length > 1;
  // One grader and one equivalence cache across sets: the same answers recur.
  const grader = opts.grader ?? cachedGrader();
  const equivalent = cachedEquivalence();
  const sets: BonSetResult[] = [];
  const splitNotes: string[] = [];
  for (const [k, file] of opts.candidates.entries()) {
    const fields: BonFieldOptions = { ...opts.fields, ...(opts.scoresField ? { scoresField: opts.scoresField } : {}) };
    const candidates = await loadCandidates(file, { n: opts.n, fields, requireScores: opts.scoresField });
    let split: { options: StepSplitOptions; stats: StepSplitStats } | undefined;
    const scores: (readonly ResponseScore[] | undefined)[] = opts.scorer
      ? await scoreCandidates(candidates, opts.scorer, {
          n: opts.n,
          stepSeparator: opts.stepSeparator,
          split: opts.split,
          label: `score ${names[k]}`,
          onSplit: (stats) => (split = { options: { ...opts.split, ...(opts.stepSeparator !== undefined ? { separator: opts.stepSeparator } : {}) }, stats }),
        })
      : candidates.map((c) => c.scores);
    if (split) splitNotes.push(`${multi ? `${names[k]}: ` : ''}${describeSplitStats(split.stats)}`);
    const { metrics, graded } = evaluateBonSet(candidates, scores, {
      n: opts.n,
      aggregators: opts.aggregators,
      voteAggregator: opts.voteAggregator,
      voteWeights: opts.voteWeights,
      bootstrap: opts.bootstrap,
      grader,
      equivalent,
      label: `grade ${names[k]}`,
    });
    const dir = multi ? join(opts.out, names[k]) : opts.out;
    await writeBonOutputs(dir, { set: names[k], file, ...metrics, ...(split ? { step_split: split } : {}) }, graded, outputs);
    sets.push({ name: names[k], file, metrics, dir });
  }

  const aggs = opts.aggregators;
  const rows = sets.map((s) => ({ name: s.name, row: s.metrics }));
  let summary: BonSummary | undefined;
  const parts: string[] = [];
  if (multi) {
    summary = summarizeBonSets(sets);
    const unscored = sets.filter((s) => s.metrics.n_unscored > 0).map((s) => `${s.name} ${s.metrics.n_unscored}`);
    if (unscored.length > 0) parts.push(`Unscored responses (empty, or longer than the model context): ${unscored.join(', ')}`, '');
    await outputs.addFile(join(opts.out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
    parts.push(`Best-of-${opts.n} over ${sets.length} sets`, '', bonMarkdown([...rows, { name: '**average**', row: summary.average }], aggs));
  } else {
    const m = sets[0].metrics;
    if (m.n_unscored > 0) parts.push(`${m.n_unscored} responses unscored (empty, or longer than the model context): ranked last`, '');
    const intervals = m.ci ? ` (${m.ci.level}% bootstrap interval over problems)` : '';
    parts.push(`Best-of-${opts.n} on ${sets[0].name}`, '', bonMarkdown(rows, aggs), '', `Curve over N${intervals}:`, '', bonCurveMarkdown(m));
    if (m.score_kind === 'scalar') parts.push('', 'One score per response (an outcome reward model): rm@N picks the response with the highest score.');
    if (m.vote_weights === 'softmax') parts.push('', 'Weighted vote: softmax weights over each problem\'s responses (the scores are not probabilities in [0, 1]).');
    if (m.weighted_vote_note) parts.push('', `Weighted vote not computed: ${m.weighted_vote_note}.`);
  }
  if (splitNotes.length > 0) parts.push('', `Steps (${describeSplitOptions(opts)}): ${splitNotes.join('; ')}`);
  return { sets, summary, markdown: parts.join('\n') };
}

function describeSplitOptions(opts: BonRunOptions): string {
  const o = opts.split ?? {};
  const how = opts.stepSeparator !== undefined || o.separator !== undefined ? `separator ${JSON.stringify(opts.stepSeparator ?? o.separator)}` : (o.mode ?? 'paragraphs');
  return [how, ...(o.minChars ? [`min ${o.minChars} chars`] : []), ...(o.maxSteps ? [`max ${o.maxSteps} steps`] : []), `think ${o.think ?? 'scored'}`].join(', ');
}
