import { existsSync } from 'node:fs';
import { mkdir, readFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { JsonlWriter } from '../data/jsonl.js';
import { createStepSplitter, type StepSplitOptions } from '../data/step-split.js';
import { aggregateScore, type Aggregator } from '../eval/aggregate.js';
import { cachedEquivalence, problemOutcome, type GradedProblem, type VoteWeights } from '../eval/bon-metrics.js';
import { cachedGrader, type Grader } from '../eval/bon.js';
import { progressBar } from '../util/progress.js';
import { writeFileAtomic } from '../util/durable-fs.js';
import { lockRunDirectory } from '../util/write-lock.js';
import { searchProblem, checkSearchSettings, type SearchMethod, type SearchSettings } from './methods.js';
import type { PolicySampler } from './policy.js';
import type { RewardModel } from './reward.js';
import { searchMetrics, type SearchMetrics } from './metrics.js';
import { renderSearchReport } from './report.js';

export interface SearchProblem {
  id: string;
  problem: string;
  answer: string;
}

export interface SearchRunOptions {
  problems: SearchProblem[];
  methods: SearchMethod[];
  /** Budgets: N per run (every method is run at every N). */
  ns: number[];
  beamWidth: number;
  maxSteps: number;
  aggregator: Aggregator;
  voteWeights?: VoteWeights | 'auto';
  seed: number;
  policy: PolicySampler;
  reward: RewardModel;
  split?: StepSplitOptions;
  /** Problems searched at once (their requests share the client's concurrency limit). */
  concurrency?: number;
  bootstrap?: { resamples?: number; seed?: number };
  out: string;
  grader?: Grader;
  log?: (line: string) => void;
}

/** One line of <method>-n<N>/results.jsonl: what the search chose for one problem. */
export interface SearchResult {
  id: string;
  method: SearchMethod;
  n: number;
  gold: string;
  /** The solution picked by the highest aggregated step score. */
  chosen: { steps: string[]; step_scores: number[] | null; score: number | null; extracted: string | null; correct: boolean; finished: boolean } | null;
  /** The answer with the most weight summed over the final candidates. */
  weighted_vote: { answer: string | null; correct: boolean };
  /** Majority answer and "any candidate right" over the final candidates (for bon: maj@N, pass@N). */
  majority: { answer: string | null; correct: boolean };
  pass: boolean;
  candidates: { extracted: string | null; correct: boolean; score: number | null; steps: number; finished: boolean }[];
  budget: { policy_tokens: number; policy_tokens_estimated: number; policy_requests: number; prm_passes: number; rounds: number };
}

export interface SearchRunResult {
  metrics: SearchMetrics;
  markdown: string;
  files: { metrics: string; report: string; plot: string; results: string[] };
}

export function runDirName(method: SearchMethod, n: number): string {
  return `${method}-n${n}`;
}

/**
 * Results already written by an earlier (killed) run. A last line without its newline was cut
 * off mid-write: it is removed (the response cache makes redoing that problem cheap).
 */
async function readDone(file: string): Promise<Map<string, SearchResult>> {
  const done = new Map<string, SearchResult>();
  if (!existsSync(file)) return done;
  const text = await readFile(file, 'utf8');
  const complete = text.endsWith('\n') ? text : text.slice(0, text.lastIndexOf('\n') + 1);
  if (complete.length < text.length) await truncate(file, Buffer.byteLength(complete));
  complete.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      const r = JSON.parse(line) as SearchResult;
      if (typeof r.id !== 'string') throw new Error('no id');
      // Two results for one problem mean two writers (or a hand edit): which one counts is unknowable.
      if (done.has(r.id)) throw new Error(`a second result for problem "${r.id}"`);
      done.set(r.id, r);
    } catch (e) {
      throw new Error(`${file}:${i + 1}: not a usable result line (${(e as Error).message}); move the file away to start over`);
    }
  });
  return done;
}

function toResult(problem: SearchProblem, settings: SearchSettings, outcome: Awaited<ReturnType<typeof searchProblem>>, grader: Grader, opts: { voteWeights: VoteWeights | 'auto'; equivalent: ReturnType<typeof cachedEquivalence> }): SearchResult {
  const { candidates, budget } = outcome;
  const graded = candidates.map((c) => ({ ...grader(c.text, problem.answer), score: c.stepScores }));
  const values = candidates.flatMap((c) => c.stepScores ?? []);
  const bounded = values.every((v) => v >= 0 && v <= 1);
  const voteWeights: VoteWeights = opts.voteWeights === 'auto' ? (bounded ? 'score' : 'softmax') : opts.voteWeights;
  const gp: GradedProblem = { id: problem.id, responses: graded };
  const o = problemOutcome(gp, graded.length, { aggregators: [settings.aggregator], voteAggregator: settings.aggregator, voteWeights, equivalent: opts.equivalent });
  const pick = o.prm[settings.aggregator]!;
  const finite = (x: number) => (Number.isFinite(x) ? x : null);
  const chosen = pick.pick === -1 ? null : candidates[pick.pick];
  return {
    id: problem.id,
    method: settings.method,
    n: settings.n,
    gold: problem.answer,
    chosen: chosen
      ? { steps: chosen.steps, step_scores: chosen.stepScores, score: finite(pick.score), extracted: graded[pick.pick].extracted, correct: pick.correct, finished: chosen.done }
      : null,
    weighted_vote: { answer: o.weightedAnswer, correct: o.weighted },
    majority: { answer: o.majAnswer, correct: o.maj },
    pass: o.pass,
    candidates: candidates.map((c, i) => ({ extracted: graded[i].extracted, correct: graded[i].correct, score: finite(aggregateScore(c.stepScores, settings.aggregator)), steps: c.steps.length, finished: c.done })),
    budget: {
      policy_tokens: budget.tokens + budget.estimatedTokens,
      policy_tokens_estimated: budget.estimatedTokens,
      policy_requests: budget.requests,
      prm_passes: budget.prmPasses,
      rounds: budget.rounds,
    },
  };
}

/** Everything a run's results depend on: resuming is only right when all of it is the same. */
function runFingerprint(s: SearchSettings, opts: SearchRunOptions): Record<string, unknown> {
  const { model, temperature, topP, maxStepTokens, maxTokens, system, chatTemplate } = opts.policy.settings;
  return {
    search: s,
    policy: { model, temperature, top_p: topP ?? null, max_step_tokens: maxStepTokens, max_tokens: maxTokens, system: system ?? null, chat_template: chatTemplate ?? null },
    reward: opts.reward.description,
    split: s.method === 'bon' ? (opts.split ?? {}) : null,
    vote_weights: opts.voteWeights ?? 'auto',
  };
}

/**
 * A run folder remembers the settings its results were made with; results of other settings
 * are never mixed in: a mismatch stops the run (use another --out).
 */
async function checkSettings(file: string, settings: Record<string, unknown>): Promise<void> {
  const text = `${JSON.stringify(settings, null, 2)}\n`;
  if (existsSync(file)) {
    const before = await readFile(file, 'utf8');
    if (before !== text) {
      const was = JSON.parse(before) as Record<string, unknown>;
      const changed = Object.keys(settings).filter((k) => JSON.stringify(was[k]) !== JSON.stringify(settings[k]));
      throw new Error(`${file}: the results here were made with other settings (${changed.join(', ')} differ); use another --out or remove the folder`);
    }
    return;
  }
  await writeFileAtomic(file, text);
}

/** Runs every (method, N): one results line per problem as it finishes, then metrics, report and plot. */
export async function runSearch(opts: SearchRunOptions): Promise<SearchRunResult> {
  if (opts.problems.length === 0) throw new Error('search: no problems');
  const ids = new Set<string>();
  for (const p of opts.problems) {
    if (ids.has(p.id)) throw new Error(`search: problem id "${p.id}" appears twice`);
    ids.add(p.id);
  }
  const runs: SearchSettings[] = [];
  for (const method of opts.methods) {
    for (const n of opts.ns) {
      const s: SearchSettings = { method, n, beamWidth: opts.beamWidth, maxSteps: opts.maxSteps, aggregator: opts.aggregator, seed: opts.seed };
      checkSearchSettings(s);
      runs.push(s);
    }
  }
  const log = opts.log ?? (() => {});
  await mkdir(opts.out, { recursive: true });
  // One writer per search directory: two on one --out would each append every problem's line.
  const lock = lockRunDirectory(opts.out, `search directory ${opts.out}`);
  try {
    return await searchLocked(opts, runs, log);
  } finally {
    lock.release();
  }
}

async function searchLocked(opts: SearchRunOptions, runs: SearchSettings[], log: (line: string) => void): Promise<SearchRunResult> {
  const grader = opts.grader ?? cachedGrader();
  const equivalent = cachedEquivalence();
  const splitter = createStepSplitter(opts.split);
  const concurrency = opts.concurrency ?? 8;
  const byRun = new Map<string, Map<string, SearchResult>>();
  const files: string[] = [];
  const todo: { s: SearchSettings; p: SearchProblem; file: string }[] = [];
  for (const s of runs) {
    const dir = join(opts.out, runDirName(s.method, s.n));
    await mkdir(dir, { recursive: true });
    const file = join(dir, 'results.jsonl');
    files.push(file);
    await checkSettings(join(dir, 'settings.json'), runFingerprint(s, opts));
    const done = await readDone(file);
    const known = new Set(opts.problems.map((p) => p.id));
    const stray = [...done.keys()].filter((id) => !known.has(id));
    if (stray.length > 0) throw new Error(`${file}: results for problems not in this run (${stray.slice(0, 3).join(', ')}); use another --out`);
    byRun.set(file, done);
    if (done.size > 0) log(`search: ${runDirName(s.method, s.n)}: ${done.size} of ${opts.problems.length} problems already done, resuming`);
    for (const p of opts.problems) if (!done.has(p.id)) todo.push({ s, p, file });
  }

  const writers = new Map<string, JsonlWriter>();
  for (const file of files) writers.set(file, await JsonlWriter.open(file, { append: true }));
  const bar = progressBar('search', todo.length);
  try {
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const job = todo[next++];
        const outcome = await searchProblem({ policy: opts.policy, reward: opts.reward, splitter }, job.s, job.p);
        const result = toResult(job.p, job.s, outcome, grader, { voteWeights: opts.voteWeights ?? 'auto', equivalent });
        await writers.get(job.file)!.write(result);
        byRun.get(job.file)!.set(job.p.id, result);
        bar.tick(1, { method: job.s.method, n: job.s.n });
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, todo.length)) }, worker));
  } finally {
    bar.stop();
    for (const w of writers.values()) await w.close();
  }

  const results = runs.map((s, k) => ({ settings: s, results: opts.problems.map((p) => byRun.get(files[k])!.get(p.id)!) }));
  const metrics = searchMetrics(results, {
    resamples: opts.bootstrap?.resamples ?? 1000,
    seed: opts.bootstrap?.seed ?? 0,
    settings: { beam_width: opts.beamWidth, max_steps: opts.maxSteps, aggregator: opts.aggregator, seed: opts.seed, policy: opts.policy.settings.model, reward: opts.reward.description, temperature: opts.policy.settings.temperature },
  });
  const out = { metrics: join(opts.out, 'metrics.json'), report: join(opts.out, 'report.md'), plot: join(opts.out, 'accuracy_vs_budget.svg') };
  const { markdown, svg } = await renderSearchReport(metrics, 'accuracy_vs_budget.svg');
  await writeFileAtomic(out.metrics, `${JSON.stringify(metrics, null, 2)}\n`);
  await writeFileAtomic(out.plot, svg);
  await writeFileAtomic(out.report, markdown);
  return { metrics, markdown, files: { ...out, results: files } };
}
