/**
 * The sim judge: a stand-in for an LLM critic. It reads the problem and the numbered steps,
 * finds the true first error with the world's checker (it is a simulated judge, so it may),
 * and then reports it through an explicit noise model:
 *
 *  - walking the steps in order, each correct step before the first error is wrongly flagged
 *    with probability falseAlarmRate * hardness(step) (bigger numbers look more suspicious);
 *  - the first error itself is named with probability detect[kind]; otherwise it is missed,
 *    and the judge then flags a uniformly chosen later step with probability lateFlagShare,
 *    else answers "no error" (-1);
 *  - a share unparsableRate of replies ignores the answer format (no usable \boxed{k}).
 *
 * Nothing else is used: no sample metadata, only the text it is sent.
 */
import type { Rng } from '../util/rng.js';
import { parseEquation } from './arith.js';
import { checkSolution, type ErrorKind } from './check.js';
import { hardness } from './policy.js';
import { parseProblemCached } from './problems.js';

export interface JudgeOptions {
  /** P(the true first error is named exactly), by its kind; `other` covers kinds not listed. */
  detect: Partial<Record<ErrorKind, number>> & { other: number };
  /** When the first error is missed: share of misses that flag a later step instead of "none". */
  lateFlagShare: number;
  /** Per correct step: P(flagged as wrong) = falseAlarmRate * hardness of its computation. */
  falseAlarmRate: number;
  /** Share of replies without a parsable answer. */
  unparsableRate: number;
}

export const DEFAULT_JUDGE_OPTIONS: JudgeOptions = {
  detect: { arithmetic: 0.93, wrong_operand: 0.45, skipped_step: 0.5, repeated_step: 0.8, other: 0.85 },
  lateFlagShare: 0.5,
  falseAlarmRate: 0.045,
  unparsableRate: 0.03,
};

export interface JudgeVerdict {
  /** The step the judge names as the first wrong one, -1 for none; null when the reply is unparsable. */
  verdict: number | null;
  reply: string;
}

export class SimJudge {
  readonly options: JudgeOptions;

  constructor(options: Partial<JudgeOptions> = {}) {
    this.options = { ...DEFAULT_JUDGE_OPTIONS, ...options, detect: { ...DEFAULT_JUDGE_OPTIONS.detect, ...options.detect } };
  }

  judge(problemText: string, steps: readonly string[], rng: Rng): JudgeVerdict {
    const verdict = this.decide(problemText, steps, rng);
    if (rng.bernoulli(this.options.unparsableRate)) return { verdict: null, reply: unparsableReply(verdict, rng) };
    return { verdict, reply: critique(steps, verdict) };
  }

  /** The noise model above; a problem it cannot read leaves it with nothing to check: -1. */
  private decide(problemText: string, steps: readonly string[], rng: Rng): number {
    const problem = parseProblemCached(problemText);
    if (!problem) return -1;
    const truth = checkSolution(problem, steps);
    const o = this.options;
    const end = truth.firstError === -1 ? steps.length : truth.firstError;
    for (let j = 0; j < end; j++) {
      if (rng.bernoulli(Math.min(1, o.falseAlarmRate * stepHardness(steps[j])))) return j;
    }
    if (truth.firstError === -1) return -1;
    const detect = (truth.kind && o.detect[truth.kind]) ?? o.detect.other;
    if (rng.bernoulli(detect)) return truth.firstError;
    const later = steps.length - 1 - truth.firstError;
    if (later > 0 && rng.bernoulli(o.lateFlagShare)) return truth.firstError + rng.int(1, later);
    return -1;
  }
}

function stepHardness(step: string): number {
  const eq = parseEquation(step);
  return eq ? hardness({ symbol: eq.symbol, operand: eq.b }, eq.a) : 1;
}

function critique(steps: readonly string[], verdict: number): string {
  const lines: string[] = [];
  const upTo = verdict === -1 ? steps.length : verdict;
  for (let i = 0; i < upTo; i++) lines.push(`Paragraph ${i}: the computation is consistent with the problem.`);
  if (verdict === -1) lines.push('Every paragraph is correct, so no error is found.', '', '\\boxed{-1}');
  else lines.push(`Paragraph ${verdict}: this step does not follow from the problem and the previous steps.`, '', `The earliest error is in paragraph ${verdict}.`, '', `\\boxed{${verdict}}`);
  return lines.join('\n');
}

/** Replies a real judge produces when it drifts from the format; none states a clean index. */
function unparsableReply(verdict: number, rng: Rng): string {
  const styles = [
    `The solution seems questionable, though I am not fully sure where it goes wrong.`,
    `The earliest error is in \\boxed{paragraph ${verdict}}.`,
    `Paragraph ${Math.max(0, verdict)} might be wrong, or paragraph ${Math.max(0, verdict) + 1}: \\boxed{${verdict}} or \\boxed{${verdict + 1}}.`,
  ];
  return rng.pick(styles);
}

