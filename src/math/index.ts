/**
 * Answer grading: extraction of the final answer from a response, normalisation, and equivalence
 * (numeric fast path, structures, and symbolic checks through compute-engine bounded in time).
 */
export { extractAnswer, gradeAnswer, goldAnswerFrom } from './grade.js';
export type { ExtractOptions, GradeOptions, GradeResult } from './grade.js';
export { isEquivalent, DEFAULT_REL_TOL, DEFAULT_TIMEOUT_MS } from './equivalence.js';
export type { EquivalenceOptions } from './equivalence.js';
export { extractFinalAnswer, findBoxed, lastBoxed, removeCalculatorAnnotations } from './extract.js';
export { extractChoice, goldChoiceLetter, bareChoiceLetter, choiceLetters, parseChoiceLetter } from './choices.js';
export { normalizeAnswer } from './normalize.js';
export { parseShape } from './structure.js';
export type { AnswerShape } from './structure.js';
export { casStats, ensureCasReady, resetCasStats, shutdownCas } from './bounded-cas.js';
export type { CasStats } from './bounded-cas.js';
