import { fileStem, type AdapterOptions, type AdapterOutput } from './adapter.js';
import { gsm8kExampleFromRecord } from './bon.js';
import { asObject, fail, requireString, type RecordLocation } from './record.js';
import { splitSteps } from './split.js';
import type { StepSample } from './types.js';

/** GSM8K's calculator annotations: "48/2 = <<48/2=24>>24" reads "48/2 = 24" without them. */
const CALCULATOR_ANNOTATION = /<<[^<>]*>>/g;

export function stripCalculatorAnnotations(text: string): string {
  return text.replace(CALCULATOR_ANNOTATION, '');
}

/**
 * GSM8K {question, answer}: the answer's lines are the steps (separator default "\n"), its
 * final "#### N" is the gold answer, and calculator annotations are removed from the steps.
 * These are reference solutions, so no correctness labels are claimed. A line of
 * example_model_solutions.jsonl gives one sample per model solution (its final "A: N" line
 * stays the last step), with meta.model and meta.is_correct.
 */
export function fromGsm8kRecord(value: unknown, loc: RecordLocation, opts: Pick<AdapterOptions, 'stepSeparator'>): AdapterOutput {
  const rec = asObject(value, loc);
  const separator = opts.stepSeparator ?? '\n';
  if (rec.ground_truth !== undefined) {
    const c = gsm8kExampleFromRecord(rec, loc, loc.line - 1);
    const models = c.meta?.models as string[];
    const isCorrect = c.meta?.is_correct as boolean[];
    const samples = c.responses.map((response, i): StepSample => ({
      id: `${c.id}-${models[i]}`,
      problem: c.problem,
      steps: splitSteps(stripCalculatorAnnotations(response), separator),
      answer: c.answer,
      source: 'gsm8k',
      meta: { model: models[i], is_correct: isCorrect[i] },
    }));
    return { samples };
  }
  const question = requireString(rec, 'question', loc);
  const answerText = requireString(rec, 'answer', loc);
  const hashes = answerText.lastIndexOf('####');
  if (hashes < 0) return fail(loc, 'answer', 'no final "#### N" line');
  const answer = answerText.slice(hashes + 4).trim();
  const { question: _q, answer: _a, ...extra } = rec;
  const sample: StepSample = {
    id: `gsm8k-${fileStem(loc.file)}-${loc.line - 1}`,
    problem: question,
    steps: splitSteps(stripCalculatorAnnotations(answerText.slice(0, hashes)), separator),
    answer,
    source: 'gsm8k',
    meta: extra,
  };
  return { samples: [sample] };
}

/** GSM8K's own layout back: steps one per line, then "#### answer" (annotations are not restored). */
export function toGsm8kRecord(sample: StepSample): Record<string, unknown> {
  if (sample.answer === undefined) throw new Error(`sample ${sample.id}: GSM8K needs an answer`);
  return { ...sample.meta, question: sample.problem, answer: `${sample.steps.join('\n')}\n#### ${sample.answer}` };
}

