/**
 * The sim world's ground truth: which step of a written solution is the first wrong one, and
 * what kind of error it is, judged from the text alone against the problem's gold chain.
 */
import { lastBoxed, parseEquation, sameValue, type Equation, type SimOp } from './arith.js';
import type { SimProblem } from './problems.js';

/**
 * arithmetic: right numbers, wrong result. wrong_operand: a number copied wrongly (the running
 * value or the operand). skipped_step: the next operation applied, one left out. repeated_step:
 * the previous operation applied again. The rest occur only in text the policy did not write
 * (no_equation, extra_step, premature_answer) or as a wrong/missing boxed answer.
 */
export type ErrorKind =
  | 'arithmetic'
  | 'wrong_operand'
  | 'skipped_step'
  | 'repeated_step'
  | 'wrong_final_answer'
  | 'no_equation'
  | 'extra_step'
  | 'premature_answer';

export const POLICY_ERROR_KINDS = ['arithmetic', 'wrong_operand', 'skipped_step', 'repeated_step'] as const;
export type PolicyErrorKind = (typeof POLICY_ERROR_KINDS)[number];

export interface CheckResult {
  /** 0-based index of the first wrong step, -1 if none. */
  firstError: number;
  kind: ErrorKind | null;
}

/** Does the equation apply this operation (either operand order for + and *)? */
export function appliesOp(eq: Equation, op: SimOp, value?: number): boolean {
  if (eq.symbol !== op.symbol) return false;
  const straight = sameValue(eq.b, op.operand) && (value === undefined || sameValue(eq.a, value));
  const commutative = (op.symbol === '+' || op.symbol === '*') && sameValue(eq.a, op.operand) && (value === undefined || sameValue(eq.b, value));
  return straight || commutative;
}

/** The kind of error in step j, given that all earlier steps were right (null = step right). */
function classifyStep(problem: SimProblem, j: number, eq: Equation): ErrorKind | null {
  const { ops, values } = problem;
  const current = values[j];
  if (appliesOp(eq, ops[j], current)) return sameValue(eq.result, values[j + 1]) ? null : 'arithmetic';
  if (j + 1 < ops.length && appliesOp(eq, ops[j + 1], current)) return 'skipped_step';
  if (j >= 1 && appliesOp(eq, ops[j - 1], current)) return 'repeated_step';
  return 'wrong_operand';
}

/**
 * The first wrong step of a solution. With partial, the solution is a prefix still being
 * written, so a missing final answer is not an error.
 */
export function checkSolution(problem: SimProblem, steps: readonly string[], opts: { partial?: boolean } = {}): CheckResult {
  const n = problem.ops.length;
  const error = (firstError: number, kind: ErrorKind): CheckResult => ({ firstError, kind });
  for (let j = 0; j < steps.length; j++) {
    const eq = parseEquation(steps[j]);
    const boxed = lastBoxed(steps[j]);
    const isLast = j === steps.length - 1 && !opts.partial;
    if (j >= n) {
      // A closing step that only states the answer is fine if the last computation did not.
      const answerOnly = j === n && !eq && boxed !== null && sameValue(Number(boxed), problem.answer) && lastBoxed(steps[n - 1]) === null;
      if (answerOnly) continue;
      return error(j, 'extra_step');
    }
    if (!eq) return error(j, 'no_equation');
    const kind = classifyStep(problem, j, eq);
    if (kind) return error(j, kind);
    if (boxed !== null) {
      if (!sameValue(Number(boxed), problem.values[j + 1])) return error(j, 'wrong_final_answer');
      if (j < n - 1) return error(j, 'premature_answer');
    } else if (isLast) {
      // Stopped without an answer: early is premature, at the end the answer is missing.
      return error(j, j < n - 1 ? 'premature_answer' : 'wrong_final_answer');
    }
  }
  return { firstError: -1, kind: null };
}

/** Where a (possibly wrong) partial solution stands: what a policy continues from. */
export interface SolutionState {
  /** Index of the next operation to apply (ops.length = all applied). */
  next: number;
  /** The running value as last written (right or wrong). */
  value: number;
  /** The text already states a final answer. */
  done: boolean;
  /** Kind of the first error in the text so far (null = none yet). */
  firstErrorKind: ErrorKind | null;
  /** Repeated steps seen (the policy repeats at most once). */
  repeats: number;
}

/**
 * Follows a partial solution the way a reader would: each equation is matched to the
 * operation it applies (the expected one, the one after it = a skip, the one before = a
 * repeat), and its result becomes the running value. Steps without an equation change nothing.
 */
export function analyzePrefix(problem: SimProblem, steps: readonly string[]): SolutionState {
  const { ops } = problem;
  let next = 0;
  let value = problem.start;
  let done = false;
  let repeats = 0;
  for (const step of steps) {
    if (lastBoxed(step) !== null) done = true;
    const eq = parseEquation(step);
    if (!eq) continue;
    if (next < ops.length && appliesOp(eq, ops[next])) next += 1;
    else if (next + 1 < ops.length && appliesOp(eq, ops[next + 1])) next += 2;
    else if (next >= 1 && appliesOp(eq, ops[next - 1])) repeats += 1;
    else next = Math.min(ops.length, next + 1);
    value = eq.result;
  }
  const { kind } = checkSolution(problem, steps, { partial: true });
  return { next, value, done, firstErrorKind: kind, repeats };
}
