import { lastBoxed } from './extract.js';
import { normalizeAnswer, stripMathDelimiters, unwrapTextCommands } from './normalize.js';

/**
 * Multiple-choice answers (MMLU-STEM style): the response names a letter. `choices` is either the
 * option texts (letters A, B, ... in order; a boxed option text also counts) or `true` for A-E.
 */

export function choiceLetters(choices: string[] | boolean | undefined): string[] {
  const n = Array.isArray(choices) && choices.length > 0 ? Math.min(choices.length, 26) : 5;
  return Array.from({ length: n }, (_, i) => String.fromCharCode(65 + i));
}

/**
 * A letter written alone, possibly dressed: `B`, `(B)`, `B.`, `B)`, `\text{(B)}`, `**B**`,
 * `Option B`, `B. 42 m/s` (a letter followed by its option text).
 */
export function parseChoiceLetter(raw: string, letters: string[]): string | null {
  let s = unwrapTextCommands(stripMathDelimiters(raw.trim())).replace(/\*+/g, '').trim();
  s = s.replace(/^(?:option|choice)\s*/i, '');
  const m = /^\(?\s*([A-Z])\s*\)?(?:$|[.:)]|\s)/.exec(s);
  return m && letters.includes(m[1]) ? m[1] : null;
}

/** The letter of the option whose text equals `answer` (after normalisation), if exactly one does. */
function letterOfChoiceText(answer: string, texts: string[], letters: string[]): string | null {
  const target = normalizeAnswer(answer).toLowerCase();
  if (target === '') return null;
  const hits = texts.map((t, i) => (normalizeAnswer(t).toLowerCase() === target ? letters[i] : null)).filter((x) => x !== null);
  return hits.length === 1 ? hits[0] : null;
}

const LETTER_PHRASE =
  /\b(?:answer|option|choice)\b(?:\s+(?:is|would\s+be|should\s+be|must\s+be))?[\s:*]*(?:(?:option|choice)\s*)?\(?\s*([A-Za-z])(?![A-Za-z0-9])/gi;

export function extractChoice(text: string, choices: string[] | boolean | undefined = true): string | null {
  const letters = choiceLetters(choices);
  const texts = Array.isArray(choices) ? choices : undefined;

  const boxed = lastBoxed(text);
  if (boxed !== null) {
    const letter = parseChoiceLetter(boxed, letters) ?? (texts ? letterOfChoiceText(boxed, texts, letters) : null);
    if (letter) return letter;
  }

  // Phrases: "the answer is (C)", "Answer: B", "the correct option is D". A lower-case capture is
  // an article ("the answer is a ..."), not a letter.
  let phraseLetter: string | null = null;
  for (const m of text.matchAll(LETTER_PHRASE)) if (letters.includes(m[1])) phraseLetter = m[1];
  if (phraseLetter) return phraseLetter;

  let parenLetter: string | null = null;
  for (const m of text.matchAll(/\(([A-Z])\)/g)) if (letters.includes(m[1])) parenLetter = m[1];
  if (parenLetter) return parenLetter;

  const lines = text.trim().split('\n');
  const lastLine = lines[lines.length - 1] ?? '';
  return parseChoiceLetter(lastLine, letters) ?? (texts ? letterOfChoiceText(lastLine, texts, letters) : null);
}

/**
 * The gold letter: a letter (`C`, `(C)`), or, when options are in play, a 0-based index (MMLU
 * stores `answer: 2` for C).
 */
export function goldChoiceLetter(gold: string, choices: string[] | boolean | undefined): string | null {
  const letters = choiceLetters(choices);
  const letter = bareChoiceLetter(gold);
  if (letter) return letters.includes(letter) ? letter : null;
  if (choices && /^\d+$/.test(gold.trim())) {
    const index = Number(gold.trim());
    return index < letters.length ? letters[index] : null;
  }
  return null;
}

/** A string that is nothing but one upper-case letter, maybe in parentheses or `\text{}`. */
export function bareChoiceLetter(raw: string): string | null {
  const s = unwrapTextCommands(stripMathDelimiters(raw.trim())).replace(/\*+/g, '').trim();
  const m = /^(?:option\s*|choice\s*)?\(?\s*([A-Z])\s*\)?\.?$/i.exec(s);
  return m && /[A-Z]/.test(m[1]) ? m[1] : null;
}
