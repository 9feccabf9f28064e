import type { StepScorer } from '../eval/step-scorer.js';
import { checkSolution } from './check.js';
import { parseProblemCached } from './problems.js';

/**
 * The sim world's truth as a step scorer: 1 for every step before the first wrong one, 0 from
 * it on (partial solutions are checked as prefixes; a whole one must end with the right
 * answer). The ceiling a PRM of the sim world can reach: search and Best-of-N guided by it show
 * what a perfect process verifier would do with the same policy and budget. Text that is not
 * a sim problem cannot be checked: an error.
 */
export function simTruthScorer(opts: { partial?: boolean } = {}): StepScorer {
  return {
    backend: 'sim-truth',
    async score(samples) {
      const stepScores = samples.map((s, i) => {
        const problem = parseProblemCached(s.problem);
        if (!problem) throw Object.assign(new Error('not a sim problem: the sim truth cannot check it'), { index: i });
        // A prefix that has not stated an answer yet is checked as unfinished.
        const { firstError } = checkSolution(problem, s.steps, { partial: opts.partial ?? !/\\boxed\{/.test(s.steps[s.steps.length - 1] ?? '') });
        return s.steps.map((_, j) => (firstError === -1 || j < firstError ? 1 : 0));
      });
      return { stepScores, tooLong: [] };
    },
    dispose() {},
  };
}
