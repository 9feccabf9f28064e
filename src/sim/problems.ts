/**
 * Word problems of the sim world: a character starts with some items and a chain of
 * operations changes the count. Problems are generated from a seed, rendered from sentence
 * templates, and parsed back from their text (the policy and judge only ever see text).
 */
import type { Rng } from '../util/rng.js';
import { applyOp, type OpSymbol, type SimOp } from './arith.js';

export interface ProblemOptions {
  /** Number of operations (= gold steps), drawn uniformly in [minSteps, maxSteps]. */
  minSteps: number;
  maxSteps: number;
  /** Starting count range. */
  startMin: number;
  startMax: number;
  /** Largest operand of + and -. */
  addMax: number;
  /** Largest factor of * and divisor of /. */
  mulMax: number;
  /** No gold value exceeds this. */
  maxValue: number;
  /** Operations allowed (every result stays a positive integer). */
  ops: OpSymbol[];
}

export const DEFAULT_PROBLEM_OPTIONS: ProblemOptions = {
  minSteps: 3,
  maxSteps: 6,
  startMin: 4,
  startMax: 60,
  addMax: 40,
  mulMax: 9,
  maxValue: 5000,
  ops: ['+', '-', '*', '/'],
};

export interface SimProblem {
  id: string;
  name: string;
  items: string;
  start: number;
  ops: SimOp[];
  /** Which sentence template states each operation (index into PROBLEM_TEMPLATES[symbol]). */
  phrasing: number[];
  /** Gold running values: values[0] = start, values[i+1] = values[i] op_i. */
  values: number[];
  answer: number;
  text: string;
}

const NAMES = ['Sam', 'Maya', 'Leo', 'Aisha', 'Tom', 'Nina', 'Omar', 'Lena', 'Ravi', 'Chloe', 'Ivan', 'Zoe', 'Kenji', 'Elena', 'Hugo', 'Priya'];
const ITEMS = ['apples', 'marbles', 'stickers', 'coins', 'books', 'cookies', 'pencils', 'shells', 'stamps', 'cards', 'beads', 'candles'];

/** Sentences stating each operation in a problem; {name}, {items}, {b} are filled in. */
export const PROBLEM_TEMPLATES: Record<OpSymbol, readonly string[]> = {
  '+': ['Then {name} buys {b} more {items}.', 'A friend gives {name} another {b} {items}.', '{name} finds {b} more {items}.'],
  '-': ['Then {name} gives away {b} {items}.', '{name} loses {b} {items}.', '{name} uses up {b} {items}.'],
  '*': ['Then the number of {items} {name} has grows to {b} times as many.', '{name} multiplies the collection of {items} by {b}.'],
  '/': ['{name} splits the {items} into {b} equal groups and keeps one group.', 'Then {name} shares the {items} equally among {b} boxes and keeps one box.'],
};

const OPENING = '{name} has {b} {items}.';
const QUESTION = 'How many {items} does {name} have at the end?';

function fill(template: string, name: string, items: string, b: number | string): string {
  return template.replaceAll('{name}', name).replaceAll('{items}', items).replaceAll('{b}', String(b));
}

/** A generated problem; throws only for option sets that can never produce one. */
export function generateProblem(rng: Rng, id: string, options: Partial<ProblemOptions> = {}): SimProblem {
  const opts = { ...DEFAULT_PROBLEM_OPTIONS, ...options };
  checkOptions(opts);
  for (let attempt = 0; attempt < 100; attempt++) {
    const problem = tryGenerate(rng, id, opts);
    if (problem) return problem;
  }
  throw new Error(`sim: could not generate a problem with options ${JSON.stringify(opts)} (are the ranges too tight?)`);
}

function checkOptions(opts: ProblemOptions): void {
  const bad = (what: string) => {
    throw new Error(`sim problem options: ${what}`);
  };
  if (!Number.isInteger(opts.minSteps) || opts.minSteps < 1) bad(`minSteps must be an integer >= 1 (got ${opts.minSteps})`);
  if (!Number.isInteger(opts.maxSteps) || opts.maxSteps < opts.minSteps) bad(`maxSteps must be an integer >= minSteps (got ${opts.maxSteps})`);
  if (opts.startMin < 1 || opts.startMax < opts.startMin) bad(`need 1 <= startMin <= startMax (got ${opts.startMin}..${opts.startMax})`);
  if (opts.addMax < 1) bad(`addMax must be >= 1 (got ${opts.addMax})`);
  if (opts.mulMax < 2) bad(`mulMax must be >= 2 (got ${opts.mulMax})`);
  if (opts.maxValue < opts.startMax) bad(`maxValue must be >= startMax`);
  if (opts.ops.length === 0) bad('ops must name at least one of + - * /');
  for (const op of opts.ops) if (!['+', '-', '*', '/'].includes(op)) bad(`unknown operation "${op}"`);
}

function tryGenerate(rng: Rng, id: string, opts: ProblemOptions): SimProblem | null {
  const name = rng.pick(NAMES);
  const items = rng.pick(ITEMS);
  const start = rng.int(opts.startMin, opts.startMax);
  const nSteps = rng.int(opts.minSteps, opts.maxSteps);
  const ops: SimOp[] = [];
  const phrasing: number[] = [];
  const values = [start];
  let value = start;
  for (let i = 0; i < nSteps; i++) {
    const choices = opts.ops.filter((s) => operandChoices(s, value, opts).length > 0);
    if (choices.length === 0) return null;
    const symbol = rng.pick(choices);
    const operand = rng.pick(operandChoices(symbol, value, opts));
    ops.push({ symbol, operand });
    phrasing.push(rng.int(0, PROBLEM_TEMPLATES[symbol].length - 1));
    value = applyOp(value, symbol, operand);
    values.push(value);
  }
  const problem = { id, name, items, start, ops, phrasing, values, answer: value, text: '' };
  problem.text = renderProblem(problem);
  return problem;
}

/** Operands that keep the running value a positive integer within range. */
function operandChoices(symbol: OpSymbol, value: number, opts: ProblemOptions): number[] {
  const out: number[] = [];
  if (symbol === '+') for (let b = 1; b <= opts.addMax && value + b <= opts.maxValue; b++) out.push(b);
  if (symbol === '-') for (let b = 1; b <= opts.addMax && b < value; b++) out.push(b);
  if (symbol === '*') for (let b = 2; b <= opts.mulMax && value * b <= opts.maxValue; b++) out.push(b);
  if (symbol === '/') for (let b = 2; b <= opts.mulMax && b < value; b++) if (value % b === 0) out.push(b);
  return out;
}

export function renderProblem(p: Pick<SimProblem, 'name' | 'items' | 'start' | 'ops' | 'phrasing'>): string {
  const sentences = [fill(OPENING, p.name, p.items, p.start)];
  p.ops.forEach((op, i) => sentences.push(fill(PROBLEM_TEMPLATES[op.symbol][p.phrasing[i]], p.name, p.items, op.operand)));
  sentences.push(fill(QUESTION, p.name, p.items, ''));
  return sentences.join(' ');
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** A template as an anchored regex capturing {b}. */
function templateRegex(template: string, name: string, items: string): RegExp {
  const parts = template.split('{b}').map((part) => escapeRegex(fill(part, name, items, '')));
  return new RegExp(`^\\s*${parts.join('(\\d+)')}`);
}

/**
 * Reads a problem back from its text: the world's "reading comprehension", used by the policy
 * and the judge. Returns null for text that is not a sim problem.
 */
export function parseProblem(text: string, id = ''): SimProblem | null {
  const opening = /^\s*([A-Z][a-z]+) has (\d+) ([a-z]+)\./.exec(text);
  if (!opening) return null;
  const name = opening[1];
  const items = opening[3];
  const start = Number(opening[2]);
  let rest = text.slice(opening[0].length);
  const ops: SimOp[] = [];
  const phrasing: number[] = [];
  const question = templateRegex(QUESTION, name, items);
  while (!question.test(rest)) {
    let matched = false;
    for (const symbol of ['+', '-', '*', '/'] as const) {
      const templates = PROBLEM_TEMPLATES[symbol];
      for (let t = 0; t < templates.length && !matched; t++) {
        const m = templateRegex(templates[t], name, items).exec(rest);
        if (!m) continue;
        ops.push({ symbol, operand: Number(m[1]) });
        phrasing.push(t);
        rest = rest.slice(m[0].length);
        matched = true;
      }
      if (matched) break;
    }
    if (!matched) return null;
  }
  if (ops.length === 0) return null;
  const values = [start];
  for (const op of ops) values.push(applyOp(values[values.length - 1], op.symbol, op.operand));
  return { id, name, items, start, ops, phrasing, values, answer: values[values.length - 1], text };
}

const parsedCache = new Map<string, SimProblem | null>();

/** parseProblem, remembered for recent texts: a server parses the same problem for every prefix and rollout. */
export function parseProblemCached(text: string): SimProblem | null {
  let parsed = parsedCache.get(text);
  if (parsed === undefined) {
    if (parsedCache.size >= 4096) parsedCache.clear();
    parsed = parseProblem(text);
    parsedCache.set(text, parsed);
  }
  return parsed;
}
