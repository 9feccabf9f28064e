/**
 * Data sets of the sim world, all deterministic from a seed: problems, policy solutions with
 * their true labels, a ProcessBench-style step-error set and Best-of-N candidate sets.
 */
import type { BonCandidate } from '../data/bon.js';
import type { StepSample } from '../data/types.js';
import { Rng } from '../util/rng.js';
import { formatValue, lastBoxed, sameValue } from './arith.js';
import { checkSolution } from './check.js';
import type { JudgeOptions } from './judge.js';
import { SimPolicy, type PolicyOptions } from './policy.js';
import { generateProblem, type ProblemOptions, type SimProblem } from './problems.js';

export interface SimWorldOptions {
  problem?: Partial<ProblemOptions>;
  policy?: Partial<PolicyOptions>;
  /** The sim judge's noise model (the sim server's judge; data generation does not use it). */
  judge?: Partial<JudgeOptions>;
}

/** Truth kept in every sim sample's meta, so label quality can be measured against it. */
export interface SimTruth {
  firstError: number;
  errorKind: string | null;
  finalAnswerCorrect: boolean;
}

/** n problems; problem i depends only on (seed, i). */
export function simProblems(n: number, seed: number, opts: SimWorldOptions = {}, prefix = 'problem'): SimProblem[] {
  const root = new Rng(seed);
  return Array.from({ length: n }, (_, i) => generateProblem(root.fork(`problem:${i}`), `${prefix}-${i}`, opts.problem));
}

/** One policy solution as a StepSample whose labels and firstError are the truth. */
export function simSolution(problem: SimProblem, policy: SimPolicy, rng: Rng, id: string): StepSample {
  const { steps, trace } = policy.solve(problem, rng);
  const truth = checkSolution(problem, steps);
  const finalAnswerCorrect = finalCorrect(problem, steps);
  const labels = steps.map((_, i) => (truth.firstError === -1 || i < truth.firstError ? 1 : 0));
  const simTruth: SimTruth = { firstError: truth.firstError, errorKind: truth.kind, finalAnswerCorrect };
  return {
    id,
    problem: problem.text,
    steps,
    answer: formatValue(problem.answer),
    labels,
    firstError: truth.firstError,
    source: 'sim',
    meta: {
      problemId: problem.id,
      errorKind: truth.kind,
      final_answer_correct: finalAnswerCorrect,
      truth: simTruth,
      slips: trace.slips,
      recoveries: trace.recoveries,
    },
  };
}

function finalCorrect(problem: SimProblem, steps: readonly string[]): boolean {
  const boxed = lastBoxed(steps[steps.length - 1] ?? '');
  return boxed !== null && sameValue(Number(boxed), problem.answer);
}

/** `perProblem` policy solutions for each problem; solution k of problem i depends only on (seed, i, k). */
export function simSolutions(problems: readonly SimProblem[], perProblem: number, seed: number, opts: SimWorldOptions = {}): StepSample[] {
  const policy = new SimPolicy(opts.policy);
  const root = new Rng(seed).fork('solutions');
  const out: StepSample[] = [];
  for (const problem of problems) {
    for (let k = 0; k < perProblem; k++) out.push(simSolution(problem, policy, root.fork(`${problem.id}:${k}`), `${problem.id}-r${k}`));
  }
  return out;
}

/**
 * A ProcessBench-style test set: n samples (one per problem, problems drawn until filled),
 * half with a process error and half without; firstError is the truth.
 */
export function simProcessBench(n: number, seed: number, opts: SimWorldOptions = {}): StepSample[] {
  const policy = new SimPolicy(opts.policy);
  const root = new Rng(seed).fork('processbench');
  const wantErrors = Math.floor(n / 2);
  const wantCorrect = n - wantErrors;
  const out: StepSample[] = [];
  let errors = 0;
  let correct = 0;
  for (let i = 0; errors + correct < n; i++) {
    if (i > 200 * n + 1000) throw new Error('simProcessBench: the policy almost never (or always) errs; cannot balance the set');
    const problem = generateProblem(root.fork(`problem:${i}`), `sim-${i}`, opts.problem);
    const sample = simSolution(problem, policy, root.fork(`solution:${i}`), `sim-${i}`);
    const isError = sample.firstError !== -1;
    if (isError ? errors >= wantErrors : correct >= wantCorrect) continue;
    if (isError) errors++;
    else correct++;
    sample.meta = { ...sample.meta, subset: 'sim', generator: 'sim-policy' };
    out.push(sample);
  }
  return out;
}

/** Best-of-N candidates: nResponses policy solutions per problem, each response its steps joined by blank lines. */
export function simBonCandidates(nProblems: number, nResponses: number, seed: number, opts: SimWorldOptions = {}): BonCandidate[] {
  const problems = simProblems(nProblems, seed, opts, 'bon');
  const solutions = simSolutions(problems, nResponses, new Rng(seed).fork('bon').nextU32(), opts);
  return problems.map((problem, i) => {
    const mine = solutions.slice(i * nResponses, (i + 1) * nResponses);
    const raw = {
      id: problem.id,
      problem: problem.text,
      answer: formatValue(problem.answer),
      responses: mine.map((s) => s.steps.join('\n\n')),
      truth: mine.map((s) => s.meta.truth),
    };
    return { id: problem.id, problem: raw.problem, answer: raw.answer, responses: raw.responses, line: i + 1, raw, meta: { truth: raw.truth } };
  });
}
