import { stripVariablePrefix } from './normalize.js';

/**
 * The shape of a normalised answer, so tuples, intervals, sets, unions, equations and matrices are
 * compared element by element with the right rules (order, bracket kinds) instead of as strings.
 */
export type AnswerShape =
  | { kind: 'scalar'; text: string }
  /** `(a,b)`, `[a,b)`, `[a,b,c]`: ordered; the bracket kinds are part of the meaning (intervals). */
  | { kind: 'bracketed'; open: '(' | '['; close: ')' | ']'; items: AnswerShape[] }
  /** `\{a,b\}` (braced) or a bare list `a, b` (several answers): unordered. */
  | { kind: 'set'; braced: boolean; items: AnswerShape[] }
  /** `A \cup B`: unordered union of parts. */
  | { kind: 'union'; parts: AnswerShape[] }
  | { kind: 'equation'; lhs: string; rhs: string }
  | { kind: 'matrix'; rows: AnswerShape[][] };

const OPENERS = new Set(['(', '[', '{']);
const CLOSERS = new Set([')', ']', '}']);

/** Splits at `sep` characters that sit at bracket depth 0 (any bracket kind, `\{` included). */
export function splitTopLevel(s: string, sep: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && (s[i + 1] === '{' || s[i + 1] === '}')) {
      depth += s[i + 1] === '{' ? 1 : -1;
      i++;
      continue;
    }
    if (OPENERS.has(c)) depth++;
    else if (CLOSERS.has(c)) depth--;
    else if (depth === 0 && s.startsWith(sep, i)) {
      parts.push(s.slice(start, i));
      start = i + sep.length;
      i += sep.length - 1;
    }
  }
  parts.push(s.slice(start));
  return parts;
}

/** True when the brackets at s[0] and s[end] enclose everything in between as one group. */
function enclosesAll(s: string): boolean {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && (s[i + 1] === '{' || s[i + 1] === '}')) {
      depth += s[i + 1] === '{' ? 1 : -1;
      i++;
      if (depth === 0 && i < s.length - 1) return false;
      continue;
    }
    if (OPENERS.has(c)) depth++;
    else if (CLOSERS.has(c)) {
      depth--;
      if (depth === 0 && i < s.length - 1) return false;
    }
  }
  return depth === 0;
}

const REALS = /^(?:\\mathbb\{R\}|\\R|\\mathbb R|\\Reals|allrealnumbers|\\text\{allrealnumbers\})$/i;
const MATRIX = /^\\begin\{([pbBvV]?matrix|array)\}(?:\{[^}]*\})?(.*)\\end\{\1\}$/s;

export function parseShape(raw: string): AnswerShape {
  const s = stripVariablePrefix(raw.trim());

  if (REALS.test(s)) return { kind: 'bracketed', open: '(', close: ')', items: [scalar('-\\infty'), scalar('\\infty')] };

  const matrix = MATRIX.exec(s);
  if (matrix) {
    const rows = matrix[2]
      .split('\\\\')
      .map((row) => row.trim())
      .filter((row) => row !== '')
      .map((row) => row.split('&').map((cell) => parseShape(cell)));
    return { kind: 'matrix', rows };
  }

  const unionParts = splitTopLevel(s, '\\cup');
  if (unionParts.length > 1 && unionParts.every((p) => p.trim() !== '')) {
    return { kind: 'union', parts: unionParts.map((p) => parseShape(p)) };
  }

  const inequality = s.startsWith('\\{') ? null : inequalityInterval(s);
  if (inequality) return inequality;

  if (s.startsWith('\\{') && s.endsWith('\\}') && enclosesAll(s)) {
    const inner = s.slice(2, -2);
    const builder = /^[a-zA-Z]\s*(?:\|(?!\|)|\\mid)(.+)$/.exec(inner);
    if (builder) return inequalityInterval(builder[1].trim()) ?? scalar(s); // {x | -2 <= x < 1}
    if (inner.includes('|') || inner.includes('\\mid')) return scalar(s);
    return { kind: 'set', braced: true, items: splitItems(inner) };
  }

  if ((s.startsWith('(') || s.startsWith('[')) && (s.endsWith(')') || s.endsWith(']')) && enclosesAll(s)) {
    const items = splitTopLevel(s.slice(1, -1), ',');
    if (items.length >= 2) {
      return {
        kind: 'bracketed',
        open: s[0] as '(' | '[',
        close: s[s.length - 1] as ')' | ']',
        items: items.map((item) => parseShape(item)),
      };
    }
  }

  const commaItems = splitTopLevel(s, ',');
  if (commaItems.length > 1 && commaItems.every((p) => p.trim() !== '')) return { kind: 'set', braced: false, items: commaItems.map((p) => parseShape(p)) };
  const semicolonItems = splitTopLevel(s, ';');
  if (semicolonItems.length > 1 && semicolonItems.every((p) => p.trim() !== '')) {
    return { kind: 'set', braced: false, items: semicolonItems.map((p) => parseShape(p)) };
  }

  const pm = splitTopLevel(s, '\\pm');
  if (pm.length === 2 && pm[1].trim() !== '' && !/^[a-zA-Z]/.test(pm[1])) {
    // a \pm b is the pair {a+b, a-b}; "\pm b" alone is {b, -b}.
    const [a, b] = pm;
    const plus = a.trim() === '' ? b : `${a}+${b}`;
    const minus = a.trim() === '' ? `-${b}` : `${a}-(${b})`;
    return { kind: 'set', braced: false, items: [scalar(plus), scalar(minus)] };
  }

  const sides = splitTopLevel(s, '=');
  if (sides.length === 2 && sides[0].trim() !== '' && sides[1].trim() !== '' && !/[<>\\]$/.test(sides[0])) {
    return { kind: 'equation', lhs: sides[0], rhs: sides[1] };
  }

  return scalar(s);
}

const LESS = String.raw`(<|\\le(?:q|qslant)?(?![a-zA-Z]))`;
const GREATER = String.raw`(>|\\ge(?:q|qslant)?(?![a-zA-Z]))`;
const BOTH_SIDES = new RegExp(String.raw`^(.+?)${LESS}\s*[a-zA-Z]\s*${LESS}(.+)$`);
const UPPER = new RegExp(String.raw`^[a-zA-Z]\s*${LESS}(.+)$`);
const LOWER = new RegExp(String.raw`^[a-zA-Z]\s*${GREATER}(.+)$`);

/**
 * A one-variable inequality as the interval it describes: `x<3` is (-\infty,3), `x\ge 2` is
 * [2,\infty), `-2\le x<1` is [-2,1). Null for anything else.
 */
function inequalityInterval(s: string): AnswerShape | null {
  const strict = (op: string) => op === '<' || op === '>';
  let m = BOTH_SIDES.exec(s);
  if (m) return interval(strict(m[2]) ? '(' : '[', m[1], m[4], strict(m[3]) ? ')' : ']');
  m = UPPER.exec(s);
  if (m) return interval('(', '-\\infty', m[2], strict(m[1]) ? ')' : ']');
  m = LOWER.exec(s);
  if (m) return interval(strict(m[1]) ? '(' : '[', m[2], '\\infty', ')');
  return null;
}

function interval(open: '(' | '[', lo: string, hi: string, close: ')' | ']'): AnswerShape {
  return { kind: 'bracketed', open, close, items: [scalar(lo.trim()), scalar(hi.trim())] };
}

function splitItems(inner: string): AnswerShape[] {
  const separator = splitTopLevel(inner, ',').length > 1 ? ',' : ';';
  return splitTopLevel(inner, separator)
    .filter((p) => p.trim() !== '')
    .map((p) => parseShape(p));
}

function scalar(text: string): AnswerShape {
  return { kind: 'scalar', text };
}
