import type { AdapterOptions, AdapterOutput } from './adapter.js';
// extract.ts is the grader's CAS-free layer: the one \boxed{} reader, without loading the CAS.
import { lastBoxed } from '../math/extract.js';
import { BadRecordPolicy, type BadRecordOptions } from './bad-records.js';
import { RecordError, writeJsonlAtomically } from './jsonl.js';
import { asObject, describeType, extraFields, fail, idText, type RecordLocation } from './record.js';
import { readRecords, type SourceRecord } from './sources.js';
import { splitSteps } from './split.js';
import type { StepSample } from './types.js';

/** A Best-of-N problem: gold answer and the N candidate responses (N may be 0: a bare test set). */
export interface BonCandidate {
  id: string;
  problem: string;
  answer: string;
  responses: string[];
  /** Per response: one score (an ORM or aggregated PRM score) or one score per step. */
  scores?: (number | number[])[];
  /** 1-based line (JSONL) or row (Arrow, Parquet) of the source record. */
  line: number;
  /** The source record as read. */
  raw: Record<string, unknown>;
  /** Per-response facts the source carries (GSM8K example solutions: model names, is_correct). */
  meta?: Record<string, unknown>;
}

export interface BonFieldOptions {
  problemField?: string;
  answerField?: string;
  responsesField?: string;
  scoresField?: string;
  idField?: string;
}

// Field names of the Qwen2.5-Math evaluation outputs (and the bon-eval sets made from them), in the order tried.
const PROBLEM_FIELDS = ['problem', 'question'];
const ANSWER_FIELDS = ['answer', 'gt', 'final_answer'];
const RESPONSE_FIELDS = ['responses', 'code'];
const SCORE_FIELDS = ['scores'];
const ID_FIELDS = ['idx'];
/** Sets that ship only a worked solution: the gold answer is its last \boxed{}. */
const SOLUTION_FIELDS = ['solution'];
const CHOICE_LETTERS = 'ABCDEFGHIJ';
const CHOICES_MARK = '\nAnswer Choices: (A) ';

/**
 * One record -> BonCandidate. Gold answers are normalised the way the sets need: GSM8K's
 * "... #### N" keeps N, a list (OlympiadBench final_answer) its first item, an integer answer
 * with `choices` (MMLU-STEM) its letter, a worked solution without an answer field
 * (minerva_math) its last \boxed{}; one pair of enclosing $...$ is removed. Multiple-choice
 * problems get their options appended ("Answer Choices: (A) ... (B) ...") so a policy or PRM
 * sees them.
 */
export function bonCandidateFromRecord(value: unknown, loc: RecordLocation, opts: BonFieldOptions = {}): BonCandidate {
  const rec = asObject(value, loc);
  const problemField = pickField(rec, opts.problemField, PROBLEM_FIELDS, loc, 'problem');
  const rawProblem = rec[problemField];
  if (typeof rawProblem !== 'string') fail(loc, problemField, `expected a string, got ${describeType(rawProblem)}`);
  const choices = rec.choices;
  // Our own writer keeps `choices` next to a problem that already lists them.
  const problem = Array.isArray(choices) && !rawProblem.includes(CHOICES_MARK) ? withChoices(rawProblem, choices, loc) : rawProblem;
  const answer = readAnswer(rec, opts.answerField, loc);
  const responsesField = opts.responsesField ?? RESPONSE_FIELDS.find((f) => rec[f] !== undefined);
  let responses: string[] = [];
  if (responsesField !== undefined) {
    const raw = rec[responsesField];
    if (raw === undefined) fail(loc, responsesField, 'missing');
    if (!Array.isArray(raw)) fail(loc, responsesField, `expected an array of strings, got ${describeType(raw)}`);
    raw.forEach((r, i) => {
      if (typeof r !== 'string') fail(loc, `${responsesField}[${i}]`, `expected a string, got ${describeType(r)}`);
    });
    responses = raw as string[];
  }
  const scoresField = opts.scoresField ?? SCORE_FIELDS.find((f) => rec[f] !== undefined);
  let scores: (number | number[])[] | undefined;
  if (scoresField !== undefined && rec[scoresField] !== undefined && rec[scoresField] !== null) {
    scores = readScores(rec[scoresField], scoresField, responses.length, loc);
  }
  const idField = opts.idField ?? ID_FIELDS.find((f) => rec[f] !== undefined);
  const id = idField !== undefined ? idText(rec[idField], idField, loc) : String(loc.line - 1);
  const candidate: BonCandidate = { id, problem, answer, responses, line: loc.line, raw: rec };
  if (scores) candidate.scores = scores;
  const meta = rec.meta;
  if (meta !== undefined && meta !== null) {
    if (typeof meta !== 'object' || Array.isArray(meta)) fail(loc, 'meta', `expected an object, got ${describeType(meta)}`);
    candidate.meta = meta as Record<string, unknown>;
  }
  return candidate;
}

function pickField(rec: Record<string, unknown>, explicit: string | undefined, candidates: string[], loc: RecordLocation, what: string): string {
  if (explicit !== undefined) {
    if (rec[explicit] === undefined) fail(loc, explicit, 'missing');
    return explicit;
  }
  const found = candidates.find((f) => rec[f] !== undefined);
  if (found === undefined) fail(loc, candidates.join('|'), `no ${what} field`);
  return found;
}

function readAnswer(rec: Record<string, unknown>, explicit: string | undefined, loc: RecordLocation): string {
  const field = explicit ?? ANSWER_FIELDS.find((f) => rec[f] !== undefined && rec[f] !== null);
  if (field === undefined) {
    const solutionField = SOLUTION_FIELDS.find((f) => typeof rec[f] === 'string');
    if (solutionField === undefined) fail(loc, ANSWER_FIELDS.join('|'), 'no gold answer field (and no solution with \\boxed{})');
    const boxed = lastBoxed(rec[solutionField] as string);
    if (boxed === null) fail(loc, solutionField, 'no answer field and no \\boxed{} in the solution');
    return boxed;
  }
  const value = rec[field];
  if (value === undefined || value === null) fail(loc, field, 'missing');
  if (typeof value === 'number' && Number.isInteger(value) && Array.isArray(rec.choices)) {
    if (value < 0 || value >= rec.choices.length) fail(loc, field, `choice index ${value} outside the ${rec.choices.length} choices`);
    return CHOICE_LETTERS[value];
  }
  if (typeof value === 'number') return String(value);
  if (Array.isArray(value)) {
    if (value.length === 0 || typeof value[0] !== 'string') fail(loc, field, 'expected a non-empty list of strings');
    return stripDollars(value[0] as string);
  }
  if (typeof value !== 'string') fail(loc, field, `expected a string, got ${describeType(value)}`);
  const hashes = value.lastIndexOf('####');
  if (hashes >= 0) return value.slice(hashes + 4).trim();
  return stripDollars(value);
}

function stripDollars(text: string): string {
  const t = text.trim();
  const m = /^\$+([^$]*)\$+$/.exec(t);
  return (m ? m[1] : t).trim();
}

function withChoices(question: string, choices: unknown[], loc: RecordLocation): string {
  if (choices.length > CHOICE_LETTERS.length) fail(loc, 'choices', `more than ${CHOICE_LETTERS.length} choices`);
  const options = choices.map((c, i) => `(${CHOICE_LETTERS[i]}) ${String(c).trim()}`).join(' ');
  return `${question.trim()}${CHOICES_MARK.slice(0, -4)}${options}`;
}

function readScores(raw: unknown, field: string, n: number, loc: RecordLocation): (number | number[])[] {
  if (!Array.isArray(raw)) fail(loc, field, `expected an array, got ${describeType(raw)}`);
  if (raw.length !== n) fail(loc, field, `${raw.length} scores for ${n} responses`);
  return raw.map((s, i) => {
    if (typeof s === 'number' && Number.isFinite(s)) return s;
    if (Array.isArray(s) && s.every((x) => typeof x === 'number' && Number.isFinite(x))) return s as number[];
    return fail(loc, `${field}[${i}]`, 'expected a number or an array of numbers');
  });
}

/**
 * Streams BoN candidates from a JSONL / JSON / Arrow / Parquet file (bon-eval test sets,
 * Qwen2.5-Math evaluation outputs with `code`/`gt`, or our own writeBonCandidates output).
 * Field names are detected per record unless given. Bad records fail the read after the first
 * few are reported, or with onBadRecord 'skip' go to the rejects file.
 */
export async function* readBonCandidates(file: string, opts: BonFieldOptions & BadRecordOptions = {}): AsyncGenerator<BonCandidate> {
  yield* readWithPolicy(file, opts, (rec) => bonCandidateFromRecord(rec.value, rec, opts));
}

async function* readWithPolicy(file: string, opts: BadRecordOptions, map: (rec: SourceRecord, index: number) => BonCandidate): AsyncGenerator<BonCandidate> {
  const policy = new BadRecordPolicy(file, opts);
  let index = 0;
  let completed = false;
  try {
    for await (const rec of readRecords(file)) {
      policy.countRecord();
      let candidate: BonCandidate;
      try {
        if (rec.error) throw rec.error;
        candidate = map(rec, index++);
      } catch (e) {
        if (!(e instanceof RecordError)) throw e;
        await policy.reject(e, rec.value);
        continue;
      }
      if (!policy.failing) yield candidate;
    }
    policy.finish();
    completed = true;
  } finally {
    await policy.close(completed);
  }
}

/** The model keys of GSM8K's example_model_solutions.jsonl (openai/grade-school-math), in file order. */
export const GSM8K_SOLUTION_MODELS = ['6b_finetuning', '6b_verification', '175b_finetuning', '175b_verification'] as const;

/**
 * One line of OpenAI's example_model_solutions.jsonl ({question, ground_truth, <model>:
 * {is_correct, solution}}) -> BonCandidate: responses in model order, answer from the
 * ground truth's final "A: N" (or "#### N") line, meta.models and meta.is_correct per response.
 */
export function gsm8kExampleFromRecord(value: unknown, loc: RecordLocation, index: number): BonCandidate {
  const rec = asObject(value, loc);
  if (typeof rec.question !== 'string') fail(loc, 'question', `expected a string, got ${describeType(rec.question)}`);
  if (typeof rec.ground_truth !== 'string') fail(loc, 'ground_truth', `expected a string, got ${describeType(rec.ground_truth)}`);
  const answer = finalAnswerLine(rec.ground_truth);
  if (answer === undefined) fail(loc, 'ground_truth', 'no final "A: N" or "#### N" line');
  const models = Object.keys(rec).filter((k) => k !== 'question' && k !== 'ground_truth');
  if (models.length === 0) fail(loc, undefined, 'no model solutions');
  const responses: string[] = [];
  const isCorrect: boolean[] = [];
  for (const model of models) {
    const sol = rec[model];
    if (sol === null || typeof sol !== 'object' || Array.isArray(sol)) fail(loc, model, 'expected {is_correct, solution}');
    const { solution, is_correct } = sol as Record<string, unknown>;
    if (typeof solution !== 'string') fail(loc, `${model}.solution`, `expected a string, got ${describeType(solution)}`);
    if (typeof is_correct !== 'boolean') fail(loc, `${model}.is_correct`, `expected a boolean, got ${describeType(is_correct)}`);
    responses.push(solution);
    isCorrect.push(is_correct);
  }
  return {
    id: `gsm8k-test-${index}`,
    problem: rec.question,
    answer,
    responses,
    line: loc.line,
    raw: rec,
    meta: { models, is_correct: isCorrect },
  };
}

/** The text after the last "#### " or on a final "A: " line. */
export function finalAnswerLine(text: string): string | undefined {
  const hashes = text.lastIndexOf('####');
  if (hashes >= 0) return text.slice(hashes + 4).trim();
  const m = /(?:^|\n)A:\s*([^\n]*)\s*$/.exec(text.trimEnd());
  return m ? m[1].trim() : undefined;
}

/** Streams GSM8K's example_model_solutions.jsonl as BoN candidates (4 per problem). */
export async function* readGsm8kExampleSolutions(file: string, opts: BadRecordOptions = {}): AsyncGenerator<BonCandidate> {
  yield* readWithPolicy(file, opts, (rec, index) => gsm8kExampleFromRecord(rec.value, rec, index));
}

/** Writes candidates as JSONL that readBonCandidates reads back to the same candidates. */
export async function writeBonCandidates(file: string, candidates: AsyncIterable<BonCandidate> | Iterable<BonCandidate>): Promise<number> {
  return writeJsonlAtomically(file, async (out) => {
    let n = 0;
    for await (const c of candidates) {
      await out.write(bonCandidateToRecord(c));
      n++;
    }
    return n;
  });
}

const CONSUMED_FIELDS = [...PROBLEM_FIELDS, ...ANSWER_FIELDS, ...RESPONSE_FIELDS, ...SCORE_FIELDS, ...ID_FIELDS, 'meta'];

/** The JSONL record for a candidate: its fields plus the source fields it did not consume. */
export function bonCandidateToRecord(c: BonCandidate): Record<string, unknown> {
  const rec: Record<string, unknown> = { ...extraFields(c.raw, CONSUMED_FIELDS), idx: c.id, problem: c.problem, answer: c.answer, responses: c.responses };
  if (c.scores) rec.scores = c.scores;
  if (c.meta) rec.meta = c.meta;
  return rec;
}

/**
 * BoN records as StepSamples: one per response, steps split on the separator (default blank
 * line), id "<problem id>-<response index>". Scores and GSM8K correctness go to meta.
 */
export function fromBonRecord(value: unknown, loc: RecordLocation, opts: AdapterOptions): AdapterOutput {
  const rec = asObject(value, loc);
  const isExample = typeof rec.ground_truth === 'string' && rec.question !== undefined && Object.values(rec).some((v) => v !== null && typeof v === 'object' && 'is_correct' in (v as object));
  const c = isExample ? gsm8kExampleFromRecord(rec, loc, loc.line - 1) : bonCandidateFromRecord(rec, loc);
  return { samples: bonCandidateSamples(c, opts.stepSeparator) };
}

export function bonCandidateSamples(c: BonCandidate, separator = '\n\n'): StepSample[] {
  return c.responses.map((response, i) => {
    const meta: Record<string, unknown> = { problem_id: c.id, response_index: i };
    if (c.scores) meta.score = c.scores[i];
    if (c.meta) for (const [k, v] of Object.entries(c.meta)) meta[k] = Array.isArray(v) && v.length === c.responses.length ? v[i] : v;
    return { id: `${c.id}-${i}`, problem: c.problem, steps: splitSteps(response, separator), answer: c.answer, source: 'bon', meta };
  });
}
