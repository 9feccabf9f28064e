/** Natural-language solution steps of the sim world: one equation per step. */
import { formatValue, type OpSymbol } from './arith.js';
import type { SimProblem } from './problems.js';

/** Sentences for one computation; {name}, {items}, {a}, {b}, {r} are filled in. */
export const STEP_TEMPLATES: Record<OpSymbol, readonly string[]> = {
  '+': ['{name} has {a} {items} and gets {b} more, so {name} has {a} + {b} = {r} {items}.', 'Adding the {b} new {items} gives {a} + {b} = {r} {items}.'],
  '-': ['After losing {b}, {name} has {a} - {b} = {r} {items}.', 'Taking away {b} {items} leaves {a} - {b} = {r} {items}.'],
  '*': ['The collection grows {b}-fold: {a} * {b} = {r} {items}.', 'Multiplying by {b} gives {a} * {b} = {r} {items}.'],
  '/': ['Splitting into {b} equal groups gives {a} / {b} = {r} {items} per group.', 'One of {b} equal shares is {a} / {b} = {r} {items}.'],
};

const FINAL_SENTENCES = ['The answer is \\boxed{{r}}.', 'So the final answer is \\boxed{{r}}.'];
const RECHECK_SENTENCES = [
  'Wait, let me recheck the earlier work: {name} should have {g} {items} at this point.',
  'Let me verify by recounting from the start: the count before this step is {g}.',
];

export interface StepText {
  symbol: OpSymbol;
  a: number;
  b: number;
  r: number;
  /** Template variant (any integer; taken modulo the number of variants). */
  variant: number;
  /** Append the boxed final answer. */
  final?: boolean;
  /** Prefix a self-check that restates this value as the correct running count. */
  recheckValue?: number;
}

export function renderStep(problem: Pick<SimProblem, 'name' | 'items'>, s: StepText): string {
  const templates = STEP_TEMPLATES[s.symbol];
  const body = templates[s.variant % templates.length]
    .replaceAll('{name}', problem.name)
    .replaceAll('{items}', problem.items)
    .replaceAll('{a}', formatValue(s.a))
    .replaceAll('{b}', formatValue(s.b))
    .replaceAll('{r}', formatValue(s.r));
  const parts: string[] = [];
  if (s.recheckValue !== undefined) {
    const recheck = RECHECK_SENTENCES[s.variant % RECHECK_SENTENCES.length];
    parts.push(recheck.replaceAll('{name}', problem.name).replaceAll('{items}', problem.items).replaceAll('{g}', formatValue(s.recheckValue)));
  }
  parts.push(body);
  if (s.final) parts.push(FINAL_SENTENCES[s.variant % FINAL_SENTENCES.length].replace('{r}', formatValue(s.r)));
  return parts.join(' ');
}

/** The gold solution: one correct step per operation, the last one boxing the answer. */
export function goldSteps(problem: SimProblem): string[] {
  return problem.ops.map((op, i) =>
    renderStep(problem, {
      symbol: op.symbol,
      a: problem.values[i],
      b: op.operand,
      r: problem.values[i + 1],
      variant: problem.phrasing[i],
      final: i === problem.ops.length - 1,
    }),
  );
}
