import { bareChoiceLetter, extractChoice, goldChoiceLetter } from './choices.js';
import { isEquivalent, type EquivalenceOptions } from './equivalence.js';
import { extractFinalAnswer, lastBoxed } from './extract.js';

export interface ExtractOptions {
  /**
   * Multiple choice: the option texts (letters A, B, ... in order) or true for A-E. Extraction then
   * returns a letter.
   */
  choices?: string[] | boolean;
}

export interface GradeOptions extends ExtractOptions, EquivalenceOptions {}

export interface GradeResult {
  /** The extracted answer (a letter for multiple choice), or null when none was found. */
  extracted: string | null;
  correct: boolean;
}

/** The final answer of a response: a choice letter when `choices` is set, else the general rules. */
export function extractAnswer(text: string, opts: ExtractOptions = {}): string | null {
  return opts.choices ? extractChoice(text, opts.choices) : extractFinalAnswer(text);
}

/**
 * Grades one response against a gold answer. Multiple choice applies when `choices` is given (the
 * gold is then a letter or a 0-based option index) or, with `choices` unset, when the gold is a
 * single letter A-E; `choices: false` turns it off.
 */
export function gradeAnswer(response: string, gold: string, opts: GradeOptions = {}): GradeResult {
  if (opts.choices !== false) {
    const choices = opts.choices ?? (isAutoChoiceGold(gold) ? true : undefined);
    const goldLetter = choices ? goldChoiceLetter(gold, choices) : null;
    if (goldLetter) {
      const extracted = extractChoice(response, choices);
      return { extracted, correct: extracted === goldLetter };
    }
  }
  const extracted = extractFinalAnswer(response);
  return { extracted, correct: extracted !== null && isEquivalent(extracted, gold, opts) };
}

function isAutoChoiceGold(gold: string): boolean {
  const letter = bareChoiceLetter(gold);
  return letter !== null && letter <= 'E';
}

/**
 * The gold answer held in a record field, whatever its form: a GSM8K solution ("... #### 18"), a
 * solution with a boxed answer (MATH/Minerva), a plain string or number, or a list of answers
 * (OlympiadBench `final_answer`, joined with commas). Null when there is none.
 */
export function goldAnswerFrom(value: unknown): string | null {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (typeof value === 'string') {
    const hashes = value.lastIndexOf('####');
    if (hashes >= 0) return value.slice(hashes + 4).trim() || null;
    if (/\\(?:boxed|fbox)/.test(value)) return lastBoxed(value);
    return value.trim() === '' ? null : value.trim();
  }
  if (Array.isArray(value)) {
    const parts = value.map((v) => goldAnswerFrom(v));
    if (parts.length === 0 || parts.some((p) => p === null)) return null;
    return parts.join(', ');
  }
  return null;
}
