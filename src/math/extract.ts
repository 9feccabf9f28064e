import { matchBrace, stripMathDelimiters } from './normalize.js';

/**
 * Final-answer extraction from a model response. Sources, first hit wins:
 *   1. the last `\boxed{...}` / `\fbox{...}` (nested braces), or `\boxed 5`;
 *   2. the last "the (final) answer is ...";
 *   3. the last "#### N" (GSM8K);
 *   4. the last "A: N" / "Answer: N" / "Final Answer: N" line;
 *   5. the last number in the text.
 * The result is the raw answer text (math delimiters stripped), not yet normalised.
 */

/** Contents of every complete `\boxed{}` / `\fbox{}` in order, plus the brace-less `\boxed 5` form. */
export function findBoxed(text: string): string[] {
  const out: string[] = [];
  const re = /\\(?:boxed|fbox)(?![a-zA-Z])\s*/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const at = m.index + m[0].length;
    if (text[at] === '{') {
      const end = matchBrace(text, at);
      if (end < 0) continue;
      out.push(text.slice(at + 1, end - 1));
      re.lastIndex = end;
    } else {
      const token = /^[^\s$\\}]+/.exec(text.slice(at));
      if (token) out.push(token[0]);
    }
  }
  return out;
}

/** The last boxed answer, with nested `\boxed{\boxed{x}}` unwrapped. */
export function lastBoxed(text: string): string | null {
  const all = findBoxed(text);
  if (all.length === 0) return null;
  let inner = all[all.length - 1];
  for (;;) {
    const nested = findBoxed(inner);
    if (nested.length !== 1 || !/^\s*\\(?:boxed|fbox)/.test(inner)) break;
    inner = nested[0];
  }
  return inner.trim();
}

/**
 * The answer text after a phrase like "the answer is": up to the end of the line or sentence; an
 * inline math span right after the phrase is taken whole (it may contain periods).
 */
function clipAnswerPhrase(rest: string): string | null {
  let s = rest.replace(/^[\s:]+/, '');
  // Inline math, where `\$` is an escaped dollar inside the span, not its end.
  const delimited = /^(\$\$[\s\S]*?\$\$|\$(?:\\[\s\S]|[^$\\])*\$|\\\([\s\S]*?\\\)|\\\[[\s\S]*?\\\])/.exec(s);
  if (delimited) return stripMathDelimiters(delimited[1]).trim() || null;
  const boxed = lastBoxed(s.split('\n')[0]);
  if (boxed !== null) return boxed;
  s = s.split('\n')[0];
  // Sentence end: a period followed by a space or the end, not a decimal point.
  const end = /\.(?=\s|$)|\s(?:because|since|which|so)\s/.exec(s);
  if (end) s = s.slice(0, end.index);
  s = s.trim();
  return s === '' ? null : stripMathDelimiters(s).trim();
}

function lastMatch(re: RegExp, text: string): RegExpExecArray | null {
  let last: RegExpExecArray | null = null;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    last = m;
    if (m[0].length === 0) re.lastIndex++;
  }
  return last;
}

const ANSWER_PHRASE = /\b(?:the\s+)?(?:final\s+)?answer\s+(?:is|was|would\s+be|will\s+be|should\s+be)(?:\s*:)?/gi;
const HASHES = /####\s*([^\n]*)/g;
const ANSWER_LINE = /^[ \t*]*(?:A|Answer|Final\s+Answer)[ \t*]*:[ \t*]*(.*)$/gim;
const NUMBER = /-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:\/\d+)?|-?\.\d+/g;

/** Calculator annotations of GSM8K solutions: `<<3*4=12>>`. */
export function removeCalculatorAnnotations(text: string): string {
  return text.replace(/<<[^<>]*>>/g, '');
}

/** The general (not multiple-choice) extraction; see the module comment for the order. */
export function extractFinalAnswer(text: string): string | null {
  const boxed = lastBoxed(text);
  if (boxed !== null && boxed !== '') return boxed;

  const clean = removeCalculatorAnnotations(text);
  const phrase = lastMatch(new RegExp(ANSWER_PHRASE.source, 'gi'), clean);
  if (phrase) {
    const answer = clipAnswerPhrase(clean.slice(phrase.index + phrase[0].length));
    if (answer) return answer;
  }
  const hashes = lastMatch(new RegExp(HASHES.source, 'g'), clean);
  if (hashes && hashes[1].trim() !== '') return stripMathDelimiters(hashes[1].trim());
  const line = lastMatch(new RegExp(ANSWER_LINE.source, 'gim'), clean);
  if (line) {
    const answer = clipAnswerPhrase(line[1]);
    if (answer) return answer;
  }
  const numbers = clean.match(NUMBER);
  return numbers ? numbers[numbers.length - 1].replace(/,/g, '') : null;
}
