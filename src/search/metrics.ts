import { bootstrapCounts, bootstrapInterval, type Interval } from '../eval/bootstrap.js';
import type { SearchMethod, SearchSettings } from './methods.js';
import type { SearchResult } from './run.js';

/**
 * Accuracy and budget of each (method, N) over the same problems, in percent, with percentile
 * bootstrap intervals over problems. Every run is resampled with the SAME draws (paired), so
 * intervals of different methods and budgets are comparable.
 *
 * - accuracy: the solution with the highest aggregated step score is right;
 * - weighted_vote: the answer with the most PRM weight over the final candidates is right;
 * - majority / pass: majority answer, and any candidate right, over the final candidates; for
 *   bon these are maj@N and pass@N of N independent samples, the baselines of search;
 * - budget: per problem, mean policy tokens generated, policy requests, PRM forward passes
 *   (sequences scored) and rounds of step-wise search.
 */

export interface SearchRunMetrics {
  method: SearchMethod;
  n: number;
  n_problems: number;
  accuracy: number;
  accuracy_ci: Interval | null;
  weighted_vote: number;
  weighted_vote_ci: Interval | null;
  majority: number;
  majority_ci: Interval | null;
  pass: number;
  pass_ci: Interval | null;
  /** Problems whose chosen solution did not finish (search ran out of rounds) or that have none. */
  unfinished: number;
  budget: { policy_tokens: number; policy_requests: number; prm_passes: number; rounds: number; policy_tokens_estimated: number };
}

export interface SearchMetrics {
  n_problems: number;
  settings: Record<string, unknown>;
  bootstrap: { resamples: number; seed: number; level: number; method: string };
  runs: SearchRunMetrics[];
}

const mean = (xs: readonly number[]) => (xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length);
const share = (flags: readonly boolean[]) => (100 * flags.filter(Boolean).length) / Math.max(1, flags.length);

export function searchMetrics(
  runs: readonly { settings: SearchSettings; results: readonly SearchResult[] }[],
  opts: { resamples: number; seed: number; level?: number; settings?: Record<string, unknown> },
): SearchMetrics {
  if (runs.length === 0) throw new Error('search metrics: no runs');
  const nProblems = runs[0].results.length;
  for (const r of runs) {
    if (r.results.length !== nProblems) throw new Error(`search metrics: ${r.settings.method} n=${r.settings.n} has ${r.results.length} results, expected ${nProblems}`);
  }
  const level = opts.level ?? 95;
  const draws = opts.resamples > 0 ? bootstrapCounts(nProblems, opts.resamples, opts.seed) : [];
  const ci = (flags: boolean[]) => (draws.length > 0 ? bootstrapInterval(flags.map(Number), draws, level) : null);
  return {
    n_problems: nProblems,
    settings: opts.settings ?? {},
    bootstrap: { resamples: opts.resamples, seed: opts.seed, level, method: 'percentile bootstrap over problems (paired draws)' },
    runs: runs.map(({ settings, results }) => {
      const chosen = results.map((r) => r.chosen?.correct === true);
      const weighted = results.map((r) => r.weighted_vote.correct);
      const majority = results.map((r) => r.majority.correct);
      const pass = results.map((r) => r.pass);
      return {
        method: settings.method,
        n: settings.n,
        n_problems: results.length,
        accuracy: share(chosen),
        accuracy_ci: ci(chosen),
        weighted_vote: share(weighted),
        weighted_vote_ci: ci(weighted),
        majority: share(majority),
        majority_ci: ci(majority),
        pass: share(pass),
        pass_ci: ci(pass),
        unfinished: results.filter((r) => !r.chosen?.finished).length,
        budget: {
          policy_tokens: mean(results.map((r) => r.budget.policy_tokens)),
          policy_requests: mean(results.map((r) => r.budget.policy_requests)),
          prm_passes: mean(results.map((r) => r.budget.prm_passes)),
          rounds: mean(results.map((r) => r.budget.rounds)),
          policy_tokens_estimated: mean(results.map((r) => r.budget.policy_tokens_estimated)),
        },
      };
    }),
  };
}
