import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readBonCandidates, type BonCandidate, type BonFieldOptions } from '../data/bon.js';
import { JsonlWriter, RecordError } from '../data/jsonl.js';
import { splitSteps } from '../data/split.js';
import type { Aggregator, ResponseScore } from './aggregate.js';
import type { BonMetrics } from './bon-metrics.js';
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
  n: number;
  aggregators: Aggregator[];
  voteAggregator?: Aggregator;
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

/** Reads a candidates file and checks that every line has at least n responses (and scores). */
export async function loadCandidates(
  file: string,
  opts: { n: number; fields?: BonFieldOptions; requireScores?: string },
): Promise<BonCandidate[]> {
  const out: BonCandidate[] = [];
  for await (const c of readBonCandidates(file, opts.fields ?? {})) {
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
 * steps (default on a blank line) and all of them go to the scorer in one batched call.
 * A response with no step (empty text) or too long for the model stays unscored (null).
 */
export async function scoreCandidates(
  candidates: readonly BonCandidate[],
  scorer: StepScorer,
  opts: { n: number; stepSeparator?: string; label?: string },
): Promise<ResponseScore[][]> {
  const samples: { id: string; problem: string; steps: string[] }[] = [];
  const where: [number, number][] = [];
  const scores: ResponseScore[][] = candidates.map((c) => new Array<ResponseScore>(Math.min(opts.n, c.responses.length)).fill(null));
  candidates.forEach((c, i) => {
    c.responses.slice(0, opts.n).forEach((response, j) => {
      const steps = splitSteps(response, opts.stepSeparator);
      if (steps.length === 0) return;
      samples.push({ id: `${c.id} response ${j}`, problem: c.problem, steps });
      where.push([i, j]);
    });
  });
  const { stepScores } = await scoreNamingSamples(scorer, samples, opts.label);
  stepScores.forEach((s, k) => {
    const [i, j] = where[k];
    scores[i][j] = s;
  });
  return scores;
}

/** DIR/metrics.json and DIR/graded.jsonl of one candidate set. */
export async function writeBonOutputs(dir: string, metrics: object, graded: readonly GradedRecord[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'metrics.json'), `${JSON.stringify(metrics, null, 2)}\n`);
  const writer = await JsonlWriter.open(join(dir, 'graded.jsonl'));
  for (const record of graded) await writer.write(record);
  await writer.close();
}

/** `prmkit eval bon`: one or several candidate sets -> metrics.json + graded.jsonl (+ summary.json). */
export async function runBon(opts: BonRunOptions): Promise<BonRunResult> {
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
  for (const [k, file] of opts.candidates.entries()) {
    const fields: BonFieldOptions = { ...opts.fields, ...(opts.scoresField ? { scoresField: opts.scoresField } : {}) };
    const candidates = await loadCandidates(file, { n: opts.n, fields, requireScores: opts.scoresField });
    const scores: (readonly ResponseScore[] | undefined)[] = opts.scorer
      ? await scoreCandidates(candidates, opts.scorer, { n: opts.n, stepSeparator: opts.stepSeparator, label: `score ${names[k]}` })
      : candidates.map((c) => c.scores);
    const { metrics, graded } = evaluateBonSet(candidates, scores, {
      n: opts.n,
      aggregators: opts.aggregators,
      voteAggregator: opts.voteAggregator,
      bootstrap: opts.bootstrap,
      grader,
      equivalent,
      label: `grade ${names[k]}`,
    });
    const dir = multi ? join(opts.out, names[k]) : opts.out;
    await writeBonOutputs(dir, { set: names[k], file, ...metrics }, graded);
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
    await writeFile(join(opts.out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
    parts.push(`Best-of-${opts.n} over ${sets.length} sets`, '', bonMarkdown([...rows, { name: '**average**', row: summary.average }], aggs));
  } else {
    const m = sets[0].metrics;
    if (m.n_unscored > 0) parts.push(`${m.n_unscored} responses unscored (empty, or longer than the model context): ranked last`, '');
    const intervals = m.ci ? ` (${m.ci.level}% bootstrap interval over problems)` : '';
    parts.push(`Best-of-${opts.n} on ${sets[0].name}`, '', bonMarkdown(rows, aggs), '', `Curve over N${intervals}:`, '', bonCurveMarkdown(m));
  }
  return { sets, summary, markdown: parts.join('\n') };
}
