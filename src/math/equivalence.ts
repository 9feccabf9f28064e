import { casEquivalentBounded, ensureCasReady, noteBudgetExhausted } from './bounded-cas.js';
import type { CasRequest } from './cas.js';
import { normalizeAnswer } from './normalize.js';
import { INTEGER_REL_TOL, numbersMatch, parsePlainNumber } from './numbers.js';
import { parseShape, type AnswerShape } from './structure.js';

export interface EquivalenceOptions {
  /** Relative tolerance for numbers that are not both integers (default 1e-4). */
  relTol?: number;
  /** Deadline of each symbolic (CAS) check in ms (default 2000); an overrun counts as false. */
  timeoutMs?: number;
}

export const DEFAULT_REL_TOL = 1e-4;
export const DEFAULT_TIMEOUT_MS = 2000;

/**
 * A list answer can need many CAS checks (greedy matching of 8 items is up to 64); the whole
 * comparison gets this many times the per-check deadline, so one answer stays bounded too.
 */
const BUDGET_PER_ANSWER = 3;

interface Context {
  relTol: number;
  timeoutMs: number;
  /** performance.now() after which no further CAS check starts. */
  deadline: number;
}

/**
 * Whether two final answers mean the same thing. Both are normalised (normalize.ts), split into a
 * shape (structure.ts) and compared: plain numbers on a fast path, everything else through the CAS
 * in a worker with a deadline. Symmetric in a and b.
 */
export function isEquivalent(a: string, b: string, opts: EquivalenceOptions = {}): boolean {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const ctx: Context = { relTol: opts.relTol ?? DEFAULT_REL_TOL, timeoutMs, deadline: performance.now() + BUDGET_PER_ANSWER * timeoutMs };
  const na = normalizeAnswer(a);
  const nb = normalizeAnswer(b);
  if (na === '' || nb === '') return false;
  if (na === nb) return true;
  return shapesEqual(parseShape(na), parseShape(nb), ctx);
}

function shapesEqual(x: AnswerShape, y: AnswerShape, ctx: Context): boolean {
  if (x.kind === 'scalar' && y.kind === 'scalar') return scalarsEqual(x.text, y.text, ctx);
  if (x.kind === 'bracketed' && y.kind === 'bracketed') {
    const [xo, xc] = intervalBrackets(x);
    const [yo, yc] = intervalBrackets(y);
    return xo === yo && xc === yc && orderedEqual(x.items, y.items, ctx);
  }
  if (x.kind === 'set' && y.kind === 'set') return unorderedEqual(x.items, y.items, ctx);
  if (x.kind === 'union' && y.kind === 'union') return unorderedEqual(x.parts, y.parts, ctx);
  if (x.kind === 'matrix' && y.kind === 'matrix') {
    return x.rows.length === y.rows.length && x.rows.every((row, i) => orderedEqual(row, y.rows[i], ctx));
  }
  if (x.kind === 'equation' && y.kind === 'equation') return equationsEqual(x, y, ctx);
  // A bare list "1, 2" against a tuple "(1, 2)": read the list as the tuple written without
  // parentheses (order matters). Braced sets never match tuples.
  if (x.kind === 'set' && !x.braced && y.kind === 'bracketed' && y.open === '(') return orderedEqual(x.items, y.items, ctx);
  if (y.kind === 'set' && !y.braced && x.kind === 'bracketed' && x.open === '(') return orderedEqual(x.items, y.items, ctx);
  // A one-element set against a scalar: {5} vs 5.
  if (x.kind === 'set' && x.items.length === 1) return shapesEqual(x.items[0], y, ctx);
  if (y.kind === 'set' && y.items.length === 1) return shapesEqual(x, y.items[0], ctx);
  return false;
}

/** An infinite endpoint is open whatever bracket was written: [-\infty, 3) is (-\infty, 3). */
function intervalBrackets(x: Extract<AnswerShape, { kind: 'bracketed' }>): [string, string] {
  const endpoint = (item: AnswerShape | undefined) => (item?.kind === 'scalar' ? item.text : '');
  const infinite = (t: string) => /^[-+]?\\infty$/.test(t);
  const open = x.items.length === 2 && infinite(endpoint(x.items[0])) ? '(' : x.open;
  const close = x.items.length === 2 && infinite(endpoint(x.items[1])) ? ')' : x.close;
  return [open, close];
}

function orderedEqual(xs: AnswerShape[], ys: AnswerShape[], ctx: Context): boolean {
  return xs.length === ys.length && xs.every((x, i) => shapesEqual(x, ys[i], ctx));
}

/** Multiset equality by greedy matching (answer lists are short). */
function unorderedEqual(xs: AnswerShape[], ys: AnswerShape[], ctx: Context): boolean {
  if (xs.length !== ys.length) return false;
  const used = new Array<boolean>(ys.length).fill(false);
  return xs.every((x) => {
    const j = ys.findIndex((y, k) => !used[k] && shapesEqual(x, y, ctx));
    if (j < 0) return false;
    used[j] = true;
    return true;
  });
}

function equationsEqual(
  x: Extract<AnswerShape, { kind: 'equation' }>,
  y: Extract<AnswerShape, { kind: 'equation' }>,
  ctx: Context,
): boolean {
  if (scalarsEqual(x.lhs, y.lhs, ctx) && scalarsEqual(x.rhs, y.rhs, ctx)) return true;
  if (scalarsEqual(x.lhs, y.rhs, ctx) && scalarsEqual(x.rhs, y.lhs, ctx)) return true;
  // Same solution set: lhs - rhs proportional (3x+4y=5 and 6x+8y-10=0).
  return cas({ a: `(${x.lhs})-(${x.rhs})`, b: `(${y.lhs})-(${y.rhs})`, relTol: ctx.relTol, mode: 'proportional' }, ctx);
}

/** Words like "yes", "Monday", "nosolution": compared as text, never handed to the CAS. */
function isWord(s: string): boolean {
  return /^[A-Za-z]{4,}$/.test(s);
}

function scalarsEqual(a: string, b: string, ctx: Context): boolean {
  if (a === b) return true;
  const pa = parsePlainNumber(a);
  const pb = parsePlainNumber(b);
  if (pa && pb) return numbersMatch(pa, pb, ctx.relTol);
  const bothWords = /^[A-Za-z]{2,}$/.test(a) && /^[A-Za-z]{2,}$/.test(b);
  if ((bothWords && a.toLowerCase() === b.toLowerCase()) || isWord(a) || isWord(b)) return a.toLowerCase() === b.toLowerCase();
  const integerSide = pa?.integer !== undefined || pb?.integer !== undefined;
  const toCas = (s: string) => s.replace(/%$/, '\\%');
  return cas({ a: toCas(a), b: toCas(b), relTol: integerSide ? INTEGER_REL_TOL : ctx.relTol, mode: 'equal' }, ctx);
}

function cas(req: CasRequest, ctx: Context): boolean {
  // Worker start-up (first use, or a restart after a timeout) does not eat the answer's budget.
  ctx.deadline += ensureCasReady();
  const left = ctx.deadline - performance.now();
  if (left <= 0) {
    noteBudgetExhausted();
    return false;
  }
  return casEquivalentBounded(req, Math.min(ctx.timeoutMs, left));
}
