/**
 * The sim policy: writes a solution step by step like a small math model would, with slips
 * whose odds grow with the size of the numbers, errors that propagate (later steps compute
 * correctly from the wrong value), and occasional recoveries that reach the right answer after
 * a wrong step. It continues any partial solution, including a wrong one.
 */
import { Rng } from '../util/rng.js';
import { applyOp, digits, formatValue, lastBoxed, numbersIn, parseEquation, roundValue, sameValue, type SimOp } from './arith.js';
import { analyzePrefix, checkSolution, type ErrorKind, type PolicyErrorKind, type SolutionState } from './check.js';
import { parseProblemCached, type SimProblem } from './problems.js';
import { renderStep } from './steps.js';

export interface PolicyOptions {
  /** 0..1: slip rates are scaled by 2*(1-strength), recovery rates by 2*strength (0.5 = as given). */
  strength: number;
  /**
   * Base per-step slip rates at strength 0.5. The arithmetic rate is further multiplied by how
   * hard the computation is (digits of the numbers; * and / harder than + and -).
   */
  slipRates: { arithmetic: number; wrongOperand: number; skip: number; repeat: number };
  /**
   * Per-step chance, while the running value is wrong, that the policy notices and puts it
   * right, by the kind of the first error (how noticeable each slip is on re-reading).
   */
  recoveryRates: Record<PolicyErrorKind, number> & { other: number };
  /** Multiplies every recovery rate: the knob for "right answer after a wrong step". */
  recoveryScale: number;
  /** Share of recoveries that are a compensating slip (a wrong computation landing on the right value) rather than an explicit recheck. */
  compensateShare: number;
  /**
   * Problems differ in how hard they are for the policy: slip rates on a problem are scaled by
   * exp(difficultySpread * z), z ~ N(0,1) fixed by the problem text. Hard problems are where MC
   * rollouts all fail from a correct prefix (MC false alarms).
   */
  difficultySpread: number;
}

export const DEFAULT_POLICY_OPTIONS: PolicyOptions = {
  strength: 0.5,
  slipRates: { arithmetic: 0.06, wrongOperand: 0.04, skip: 0.03, repeat: 0.015 },
  recoveryRates: { arithmetic: 0.12, wrong_operand: 0.004, skipped_step: 0.006, repeated_step: 0.03, other: 0.02 },
  recoveryScale: 1,
  compensateShare: 0.25,
  difficultySpread: 0.8,
};

export interface PolicyTrace {
  /** Slips the policy made, by step index in the whole solution. */
  slips: { step: number; kind: PolicyErrorKind }[];
  /** Steps where it put a wrong running value right. */
  recoveries: { step: number; style: 'recheck' | 'compensate' }[];
}

export interface PolicyOutput {
  /** The steps written (a continuation: only the new ones). */
  steps: string[];
  trace: PolicyTrace;
}

/** Steps a continuation may write beyond the operations left (a repeat; guards loops). */
const EXTRA_STEPS = 2;

export class SimPolicy {
  readonly options: PolicyOptions;

  constructor(options: Partial<PolicyOptions> = {}) {
    this.options = {
      ...DEFAULT_POLICY_OPTIONS,
      ...options,
      slipRates: { ...DEFAULT_POLICY_OPTIONS.slipRates, ...options.slipRates },
      recoveryRates: { ...DEFAULT_POLICY_OPTIONS.recoveryRates, ...options.recoveryRates },
    };
    const s = this.options.strength;
    if (!(s >= 0 && s <= 1)) throw new Error(`sim policy: strength must be in [0, 1] (got ${s})`);
  }

  /** A whole solution from scratch. */
  solve(problem: SimProblem, rng: Rng): PolicyOutput {
    return this.continueFrom(problem, [], rng);
  }

  /**
   * Continues a partial solution of a parsed problem: reads where the prefix stands (running
   * value, next operation, first error so far) and writes the remaining steps.
   */
  continueFrom(problem: SimProblem, prefix: readonly string[], rng: Rng): PolicyOutput {
    const state = analyzePrefix(problem, prefix);
    const trace: PolicyTrace = { slips: [], recoveries: [] };
    if (state.done) return { steps: [], trace };
    const written: string[] = [];
    const n = problem.ops.length;
    let firstKind: ErrorKind | null = state.firstErrorKind;
    const maxSteps = n - state.next + EXTRA_STEPS;
    while (state.next < n && written.length < maxSteps) {
      const stepIndex = prefix.length + written.length;
      const recovery = this.tryRecover(problem, state, firstKind, rng);
      if (recovery) {
        written.push(recovery.text);
        trace.recoveries.push({ step: stepIndex, style: recovery.style });
        continue;
      }
      const step = this.writeStep(problem, state, rng, firstKind === null ? [...prefix, ...written] : null);
      written.push(step.text);
      if (step.slip) {
        trace.slips.push({ step: stepIndex, kind: step.slip });
        firstKind ??= step.slip;
      }
    }
    if (written.length === 0 || lastBoxed(written[written.length - 1]) === null) {
      // No answer stated yet (e.g. the prefix ended after the last operation): state it.
      written.push(`The answer is \\boxed{${formatValue(state.value)}}.`);
    }
    return { steps: written, trace };
  }

  /**
   * Continues from text: parses the problem and prefix; text that is not a sim problem still
   * gets a plausible ending built from its numbers.
   */
  continueText(problemText: string, prefix: readonly string[], rng: Rng): string[] {
    const problem = parseProblemCached(problemText);
    if (problem) return this.continueFrom(problem, prefix, rng).steps;
    return continuePlausibly(problemText, prefix, rng);
  }

  private scale(problem: SimProblem): { slip: number; recover: number } {
    const s = this.options.strength;
    return { slip: 2 * (1 - s) * problemDifficulty(problem, this.options.difficultySpread), recover: 2 * s * this.options.recoveryScale };
  }

  private tryRecover(problem: SimProblem, state: SolutionState, firstKind: ErrorKind | null, rng: Rng): { text: string; style: 'recheck' | 'compensate' } | null {
    const gold = problem.values[state.next];
    if (sameValue(state.value, gold)) return null;
    const kind = firstKind && firstKind in this.options.recoveryRates ? (firstKind as PolicyErrorKind) : 'other';
    const rate = Math.min(1, this.options.recoveryRates[kind] * this.scale(problem).recover);
    if (!rng.bernoulli(rate)) return null;
    const op = problem.ops[state.next];
    const target = problem.values[state.next + 1];
    const final = state.next + 1 === problem.ops.length;
    const variant = rng.int(0, 5);
    const compensate = rng.bernoulli(this.options.compensateShare) && !sameValue(applyOp(state.value, op.symbol, op.operand), target);
    const text = compensate
      ? renderStep(problem, { symbol: op.symbol, a: state.value, b: op.operand, r: target, variant, final })
      : renderStep(problem, { symbol: op.symbol, a: gold, b: op.operand, r: target, variant, final, recheckValue: gold });
    state.value = target;
    state.next += 1;
    return { text, style: compensate ? 'compensate' : 'recheck' };
  }

  /**
   * One step from the current state, maybe with a slip. `cleanPrefix` is the text so far when
   * it has no error yet: a slip there is the first error, and it is re-checked so that the
   * kind recorded is the kind the truth checker sees.
   */
  private writeStep(problem: SimProblem, state: SolutionState, rng: Rng, cleanPrefix: string[] | null): { text: string; slip: PolicyErrorKind | null } {
    const { ops } = problem;
    const op = ops[state.next];
    const variant = rng.int(0, 5);
    const slipScale = this.scale(problem).slip;
    const rates = this.options.slipRates;
    const pArith = rates.arithmetic * hardness(op, state.value) * slipScale;
    const pOperand = rates.wrongOperand * slipScale;
    const pSkip = rates.skip * slipScale;
    const pRepeat = rates.repeat * slipScale;
    const u = rng.next();
    let planned: { kind: PolicyErrorKind; eq: { a: number; applied: SimOp; r: number; advance: number } } | null = null;
    if (u < pArith) planned = { kind: 'arithmetic', eq: { a: state.value, applied: op, r: wrongResult(applyOp(state.value, op.symbol, op.operand), rng), advance: 1 } };
    else if (u < pArith + pOperand) planned = wrongOperand(problem, state, rng);
    else if (u < pArith + pOperand + pSkip) planned = skipStep(problem, state);
    else if (u < pArith + pOperand + pSkip + pRepeat) planned = repeatStep(problem, state);

    if (planned) {
      const next = state.next + planned.eq.advance;
      const text = renderStep(problem, { symbol: planned.eq.applied.symbol, a: planned.eq.a, b: planned.eq.applied.operand, r: planned.eq.r, variant, final: next >= ops.length });
      const agrees = cleanPrefix === null || checkSolution(problem, [...cleanPrefix, text], { partial: true }).kind === planned.kind;
      if (agrees) {
        state.next = next;
        state.value = planned.eq.r;
        if (planned.kind === 'repeated_step') state.repeats += 1;
        return { text, slip: planned.kind };
      }
    }
    const a = state.value;
    const r = applyOp(a, op.symbol, op.operand);
    state.next += 1;
    state.value = r;
    return { text: renderStep(problem, { symbol: op.symbol, a, b: op.operand, r, variant, final: state.next >= ops.length }), slip: null };
  }
}

/** The policy's difficulty multiplier for a problem: log-normal, fixed by the problem's text. */
export function problemDifficulty(problem: Pick<SimProblem, 'text'>, spread: number): number {
  if (spread === 0) return 1;
  return Math.exp(spread * new Rng(`difficulty:${problem.text}`).normal());
}

/** How error-prone a computation is: more digits, and * and / more than + and -. */
export function hardness(op: SimOp, value: number): number {
  const a = digits(value);
  const b = digits(op.operand);
  switch (op.symbol) {
    case '+':
    case '-':
      return 0.5 * Math.max(a, b);
    case '*':
      return 0.5 * a * b;
    case '/':
      return 0.75 * a;
  }
}

/** A plausible wrong result: off by one or two, a carry of ten, or a dropped digit's worth. */
function wrongResult(correct: number, rng: Rng): number {
  const deltas = [-10, -2, -1, 1, 2, 10, 100];
  for (let i = 0; i < 20; i++) {
    const candidate = roundValue(correct + rng.pick(deltas));
    if (!sameValue(candidate, correct) && (correct <= 0 || candidate > 0)) return candidate;
  }
  return roundValue(correct + 1);
}

type PlannedSlip = { kind: PolicyErrorKind; eq: { a: number; applied: SimOp; r: number; advance: number } };

/** Copies a wrong number: another number of the problem as operand, or the previous running value. */
function wrongOperand(problem: SimProblem, state: SolutionState, rng: Rng): PlannedSlip | null {
  const op = problem.ops[state.next];
  const correct = applyOp(state.value, op.symbol, op.operand);
  const candidates: { a: number; b: number }[] = [];
  const problemNumbers = new Set([problem.start, ...problem.ops.map((o) => o.operand)]);
  for (const b of problemNumbers) {
    if (sameValue(b, op.operand) || b <= 0 || (op.symbol === '/' && b === 1)) continue;
    candidates.push({ a: state.value, b });
  }
  if (state.next >= 1) {
    const previous = problem.values[state.next - 1];
    if (!sameValue(previous, state.value)) candidates.push({ a: previous, b: op.operand });
  }
  const usable = candidates.filter((c) => !sameValue(applyOp(c.a, op.symbol, c.b), correct) && Number.isFinite(applyOp(c.a, op.symbol, c.b)));
  if (usable.length === 0) return null;
  // A division slip that still divides evenly is the more natural one to write.
  const even = usable.filter((c) => op.symbol !== '/' || Number.isInteger(c.a / c.b));
  const pick = rng.pick(even.length > 0 ? even : usable);
  return { kind: 'wrong_operand', eq: { a: pick.a, applied: { symbol: op.symbol, operand: pick.b }, r: applyOp(pick.a, op.symbol, pick.b), advance: 1 } };
}

function sameOp(x: SimOp, y: SimOp): boolean {
  return x.symbol === y.symbol && sameValue(x.operand, y.operand);
}

/** Jumps over the next operation: applies the one after it. */
function skipStep(problem: SimProblem, state: SolutionState): PlannedSlip | null {
  const { ops } = problem;
  if (state.next + 1 >= ops.length || sameOp(ops[state.next], ops[state.next + 1])) return null;
  const applied = ops[state.next + 1];
  return { kind: 'skipped_step', eq: { a: state.value, applied, r: applyOp(state.value, applied.symbol, applied.operand), advance: 2 } };
}

/** Applies the previous operation a second time (once per solution at most). */
function repeatStep(problem: SimProblem, state: SolutionState): PlannedSlip | null {
  const { ops } = problem;
  if (state.next < 1 || state.repeats > 0 || sameOp(ops[state.next - 1], ops[state.next])) return null;
  const applied = ops[state.next - 1];
  return { kind: 'repeated_step', eq: { a: state.value, applied, r: applyOp(state.value, applied.symbol, applied.operand), advance: 0 } };
}

/**
 * For text that is not a sim problem: combine the running value (the last result in the
 * prefix, else the problem's first number) with the problem's remaining numbers, then answer.
 */
export function continuePlausibly(problemText: string, prefix: readonly string[], rng: Rng): string[] {
  if (prefix.some((s) => lastBoxed(s) !== null)) return [];
  const numbers = numbersIn(problemText);
  let value = numbers[0] ?? 0;
  let used = numbers.length > 0 ? 1 : 0;
  for (const step of prefix) {
    const eq = parseEquation(step);
    if (eq) {
      value = eq.result;
      used += 1;
    }
  }
  const rest = numbers.slice(used, used + rng.int(1, 3));
  const steps = rest.map((x) => {
    const symbol = rng.pick(['+', '-', '*'] as const);
    const r = applyOp(value, symbol, x);
    const text = `Next, using ${formatValue(x)}: ${formatValue(value)} ${symbol} ${formatValue(x)} = ${formatValue(r)}.`;
    value = r;
    return text;
  });
  steps.push(`The answer is \\boxed{${formatValue(value)}}.`);
  return steps;
}
