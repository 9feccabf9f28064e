import { readJsonl, RecordError, writeJsonlAtomically } from '../data/jsonl.js';
import { spliceJsonFields } from '../data/splice.js';
import { countRecords } from '../data/sources.js';
import { progressBar } from '../util/progress.js';
import { casStats, resetCasStats } from './bounded-cas.js';
import { gradeAnswer, goldAnswerFrom, type GradeOptions } from './grade.js';

/** Field names tried, in order, when none is given (BoN files, Qwen2.5-Math outputs, plain sets). */
export const DEFAULT_RESPONSE_FIELDS = ['response', 'responses', 'code', 'output', 'outputs', 'completion', 'generation', 'prediction'];
export const DEFAULT_ANSWER_FIELDS = ['answer', 'gt', 'gold', 'final_answer', 'ground_truth', 'expected_answer', 'solution'];

export interface GradeFileOptions {
  input: string;
  out: string;
  /** Field holding the response (a string, or an array of strings graded one by one); dotted paths allowed. */
  responseField?: string;
  /** Field holding the gold answer (plain, "#### N", boxed solution, number, or list). */
  answerField?: string;
  /** Multiple choice: letters A-E, or the options in `choicesField` (default "choices") when present. */
  choices?: boolean;
  choicesField?: string;
  relTol?: number;
  timeoutMs?: number;
  onBadRecord?: 'fail' | 'skip';
  /** Called for each skipped record (skip mode). */
  onReject?: (err: RecordError) => void;
  progress?: boolean;
}

export interface GradeFileSummary {
  records: number;
  /** Responses graded (a record with an array of N responses counts N). */
  responses: number;
  correct: number;
  /** Responses with no extractable answer (counted as incorrect). */
  noAnswer: number;
  badRecords: number;
  casCalls: number;
  casTimeouts: number;
  seconds: number;
}

function getPath(record: Record<string, unknown>, path: string): unknown {
  if (path in record) return record[path];
  let value: unknown = record;
  for (const key of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function pickField(record: Record<string, unknown>, given: string | undefined, defaults: string[]): string | undefined {
  if (given !== undefined) return given;
  return defaults.find((f) => record[f] !== undefined && record[f] !== null);
}

/**
 * Grades every line of a JSONL file and writes it back with `extracted` and `correct` added (arrays
 * when the response field holds an array); the rest of each line is copied as written. A line
 * that does not fit raises a RecordError naming file:line and field, or is skipped and counted
 * with onBadRecord 'skip'.
 */
export async function gradeFile(opts: GradeFileOptions): Promise<GradeFileSummary> {
  const started = performance.now();
  const summary: GradeFileSummary = { records: 0, responses: 0, correct: 0, noAnswer: 0, badRecords: 0, casCalls: 0, casTimeouts: 0, seconds: 0 };
  const skip = opts.onBadRecord === 'skip';
  const reject = (err: RecordError) => {
    if (!skip) throw err;
    summary.badRecords++;
    opts.onReject?.(err);
  };
  const total = await countRecords(opts.input, 'jsonl');
  const bar = progressBar('grade', total ?? 0, { enabled: opts.progress });
  resetCasStats();
  try {
    // Written atomically: a failed run leaves no partial file and an earlier --out as it was.
    await writeJsonlAtomically(opts.out, async (writer) => {
      for await (const { value, line, raw } of readJsonl(opts.input, { onParseError: skip ? (err) => reject(err) : undefined })) {
        bar.tick();
        if (value === null || typeof value !== 'object' || Array.isArray(value)) {
          reject(new RecordError(opts.input, line, undefined, 'a line must be a JSON object'));
          continue;
        }
        const record = value as Record<string, unknown>;
        const graded = gradeRecord(record, opts, line);
        if (graded instanceof RecordError) {
          reject(graded);
          continue;
        }
        summary.records++;
        const results = Array.isArray(graded) ? graded : [graded];
        for (const r of results) {
          summary.responses++;
          if (r.correct) summary.correct++;
          if (r.extracted === null) summary.noAnswer++;
        }
        // The line as written plus the two fields: numbers and everything else pass through untouched.
        await writer.writeLine(
          spliceJsonFields(raw, {
            extracted: Array.isArray(graded) ? graded.map((r) => r.extracted) : graded.extracted,
            correct: Array.isArray(graded) ? graded.map((r) => r.correct) : graded.correct,
          }),
        );
      }
    });
  } finally {
    bar.stop();
  }
  const cas = casStats();
  summary.casCalls = cas.calls;
  summary.casTimeouts = cas.timeouts;
  summary.seconds = (performance.now() - started) / 1000;
  return summary;
}

type Graded = { extracted: string | null; correct: boolean };

function gradeRecord(record: Record<string, unknown>, opts: GradeFileOptions, line: number): Graded | Graded[] | RecordError {
  const responseField = pickField(record, opts.responseField, DEFAULT_RESPONSE_FIELDS);
  if (responseField === undefined) {
    return new RecordError(opts.input, line, 'response', `no response field (tried ${DEFAULT_RESPONSE_FIELDS.join(', ')}); pass --response-field`);
  }
  const answerField = pickField(record, opts.answerField, DEFAULT_ANSWER_FIELDS);
  if (answerField === undefined) {
    return new RecordError(opts.input, line, 'answer', `no gold answer field (tried ${DEFAULT_ANSWER_FIELDS.join(', ')}); pass --answer-field`);
  }
  const response = getPath(record, responseField);
  const isStringArray = Array.isArray(response) && response.every((r) => typeof r === 'string');
  if (typeof response !== 'string' && !isStringArray) {
    return new RecordError(opts.input, line, responseField, response === undefined ? 'missing' : 'must be a string or an array of strings');
  }
  const goldValue = getPath(record, answerField);
  const gold = goldAnswerFrom(goldValue);
  if (gold === null) {
    return new RecordError(opts.input, line, answerField, goldValue === undefined ? 'missing' : 'holds no usable gold answer');
  }
  let choices: GradeOptions['choices'];
  if (opts.choices) {
    const options = getPath(record, opts.choicesField ?? 'choices');
    choices = Array.isArray(options) && options.every((o) => typeof o === 'string') ? options : true;
  }
  const gradeOpts: GradeOptions = { choices, relTol: opts.relTol, timeoutMs: opts.timeoutMs };
  if (typeof response === 'string') return gradeAnswer(response, gold, gradeOpts);
  return (response as string[]).map((r) => gradeAnswer(r, gold, gradeOpts));
}
