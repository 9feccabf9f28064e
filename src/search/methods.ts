import { aggregateScore, topIndices, type Aggregator } from '../eval/aggregate.js';
import type { StepSplitter } from '../data/step-split.js';
import { hashString } from '../util/rng.js';
import { emptyUsage, type PolicySampler, type PolicyUsage } from './policy.js';
import type { RewardModel } from './reward.js';

/**
 * Test-time search guided by a PRM (as in Hugging Face's search-and-learn, and Snell et al.
 * 2024, "Scaling LLM test-time compute"), for one problem:
 *
 * - bon: N whole solutions sampled at once; each split into steps (the step splitter) and scored.
 * - beam: the first step is sampled N times; every round the PRM scores each partial solution,
 *   the N/M best unfinished ones are kept, and each is extended by M sampled next steps (N
 *   again). Finished solutions (a final answer, the model's own stop, or the token limit) are
 *   set aside; the search ends when N are finished, none is left, or after maxSteps rounds.
 * - dvts: N/M independent subtrees; in each, the current partial solution is extended by M
 *   sampled next steps and only the best one is kept (a greedy beam of width M per subtree),
 *   so the N/M final solutions come from different first steps: diversity across subtrees.
 *
 * Partial solutions are ranked by the aggregated step score (`aggregator`). Budgets are counted
 * the same way for every method: tokens the policy generated, policy requests, and PRM forward
 * passes (one per sequence scored).
 */

export const SEARCH_METHODS = ['bon', 'beam', 'dvts'] as const;
export type SearchMethod = (typeof SEARCH_METHODS)[number];

export interface SearchSettings {
  method: SearchMethod;
  /** Candidates per round (beam), samples (bon), or subtrees x width (dvts). */
  n: number;
  /** M: next steps sampled per kept partial solution (beam, dvts). */
  beamWidth: number;
  /** Most rounds (steps) of step-wise search. */
  maxSteps: number;
  aggregator: Aggregator;
  seed: number;
}

export interface Candidate {
  steps: string[];
  /** One per step; null when the PRM could not score it (too long). */
  stepScores: number[] | null;
  /** The solution ended (final answer, model stop, token limit); false if the search ran out of rounds. */
  done: boolean;
  /** The solution text that is graded: the sample itself (bon) or the steps joined (beam, dvts). */
  text: string;
}

export interface SearchBudget extends PolicyUsage {
  prmPasses: number;
  rounds: number;
}

export interface SearchOutcome {
  candidates: Candidate[];
  budget: SearchBudget;
}

export interface SearchContext {
  policy: PolicySampler;
  reward: RewardModel;
  /** Splits bon samples into steps (step-wise methods write one step per request). */
  splitter: StepSplitter;
}

/** Checks that n and M fit the method: step-wise methods need n a multiple of M. */
export function checkSearchSettings(s: SearchSettings): void {
  if (!Number.isInteger(s.n) || s.n < 1) throw new Error(`n must be a positive integer, got ${s.n}`);
  if (!Number.isInteger(s.maxSteps) || s.maxSteps < 1) throw new Error(`max steps must be a positive integer, got ${s.maxSteps}`);
  if (s.method === 'bon') return;
  if (!Number.isInteger(s.beamWidth) || s.beamWidth < 1) throw new Error(`beam width must be a positive integer, got ${s.beamWidth}`);
  if (s.n < s.beamWidth || s.n % s.beamWidth !== 0) throw new Error(`${s.method} needs n to be a multiple of the beam width ${s.beamWidth}, got n=${s.n}`);
}

export function rankScore(c: Candidate, agg: Aggregator): number {
  return aggregateScore(c.stepScores, agg);
}

/** Indices of the k best candidates by aggregated score; ties (up to float noise) keep the earlier one. */
function topK(cands: readonly Candidate[], k: number, agg: Aggregator): number[] {
  return topIndices(
    cands.map((c) => rankScore(c, agg)),
    k,
  );
}

function requestSeed(s: SearchSettings, problemId: string, round: number, branch: number): number {
  return hashString(`${s.seed}:${s.method}:${s.n}:${s.beamWidth}:${problemId}:${round}:${branch}`) & 0x7fffffff;
}

async function scoreAll(ctx: SearchContext, problem: string, cands: Candidate[], budget: SearchBudget): Promise<void> {
  const todo = cands.filter((c) => c.stepScores === null && c.steps.length > 0);
  const scores = await ctx.reward.score(todo.map((c) => ({ problem, steps: c.steps })));
  budget.prmPasses += todo.length;
  todo.forEach((c, k) => (c.stepScores = scores[k]));
}

/** Children of a partial solution from sampled next steps. A child with no new text ends where its parent stood. */
function extend(parent: Candidate, next: { text: string; done: boolean }[]): Candidate[] {
  return next.map((c) =>
    c.text === ''
      ? { steps: parent.steps, stepScores: parent.stepScores, done: true, text: parent.steps.join('\n\n') }
      : { steps: [...parent.steps, c.text], stepScores: null, done: c.done, text: [...parent.steps, c.text].join('\n\n') },
  );
}

export async function searchProblem(ctx: SearchContext, s: SearchSettings, problem: { id: string; problem: string }): Promise<SearchOutcome> {
  checkSearchSettings(s);
  const budget: SearchBudget = { ...emptyUsage(), prmPasses: 0, rounds: 0 };
  switch (s.method) {
    case 'bon':
      return { candidates: await bestOfN(ctx, s, problem, budget), budget };
    case 'beam':
      return { candidates: await beamSearch(ctx, s, problem, budget), budget };
    case 'dvts':
      return { candidates: await dvts(ctx, s, problem, budget), budget };
  }
}

async function bestOfN(ctx: SearchContext, s: SearchSettings, p: { id: string; problem: string }, budget: SearchBudget): Promise<Candidate[]> {
  const samples = await ctx.policy.sample(p.problem, [], { n: s.n, seed: requestSeed(s, p.id, 0, 0), stepwise: false }, budget);
  budget.rounds = 1;
  const cands: Candidate[] = samples.map((c) => ({ steps: ctx.splitter.split(c.text), stepScores: null, done: true, text: c.text }));
  await scoreAll(ctx, p.problem, cands, budget);
  return cands;
}

async function beamSearch(ctx: SearchContext, s: SearchSettings, p: { id: string; problem: string }, budget: SearchBudget): Promise<Candidate[]> {
  const keep = s.n / s.beamWidth;
  const root: Candidate = { steps: [], stepScores: [], done: false, text: '' };
  let active: Candidate[] = [root];
  const finished: Candidate[] = [];
  for (let round = 0; round < s.maxSteps && active.length > 0 && finished.length < s.n; round++) {
    budget.rounds++;
    const width = round === 0 ? s.n : s.beamWidth;
    const next = await Promise.all(active.map((b, j) => ctx.policy.sample(p.problem, b.steps, { n: width, seed: requestSeed(s, p.id, round, j), stepwise: true }, budget)));
    const children = active.flatMap((b, j) => extend(b, next[j]));
    await scoreAll(ctx, p.problem, children, budget);
    const open: Candidate[] = [];
    for (const c of children) (c.done ? finished : open).push(c);
    active = topK(open, keep, s.aggregator).map((i) => open[i]);
  }
  // Out of rounds with nothing finished: the best partial solutions are all there is.
  return finished.length > 0 ? finished : active;
}

async function dvts(ctx: SearchContext, s: SearchSettings, p: { id: string; problem: string }, budget: SearchBudget): Promise<Candidate[]> {
  const subtrees: Candidate[] = Array.from({ length: s.n / s.beamWidth }, () => ({ steps: [], stepScores: [], done: false, text: '' }));
  for (let round = 0; round < s.maxSteps && subtrees.some((t) => !t.done); round++) {
    budget.rounds++;
    const open = subtrees.map((t, j) => ({ t, j })).filter(({ t }) => !t.done);
    const next = await Promise.all(open.map(({ t, j }) => ctx.policy.sample(p.problem, t.steps, { n: s.beamWidth, seed: requestSeed(s, p.id, round, j), stepwise: true }, budget)));
    const children = open.map(({ t }, k) => extend(t, next[k]));
    await scoreAll(ctx, p.problem, children.flat(), budget);
    open.forEach(({ j }, k) => {
      subtrees[j] = children[k][topK(children[k], 1, s.aggregator)[0]];
    });
  }
  return subtrees;
}
