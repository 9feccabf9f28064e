import type { StepSample } from './types.js';

/** One thing wrong with a record: the field it concerns and why. */
export interface FieldProblem {
  field: string;
  reason: string;
}

/**
 * Checks a StepSample against the canonical contract (types.ts): text
 * fields are strings, steps non-empty and none blank, one label per step, labels finite and
 * in [0,1], firstError an integer in [-1, steps.length) and, for hard 0/1 labels, at the first 0.
 * Returns every problem found (empty = valid); the readers turn them into RecordErrors.
 */
export function validateStepSample(sample: StepSample): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const add = (field: string, reason: string) => problems.push({ field, reason });
  if (typeof sample.id !== 'string' || sample.id === '') add('id', 'expected a non-empty string');
  if (typeof sample.problem !== 'string') add('problem', `expected a string, got ${typeof sample.problem}`);
  if (typeof sample.source !== 'string' || sample.source === '') add('source', 'expected a non-empty string');
  if (sample.meta === null || typeof sample.meta !== 'object' || Array.isArray(sample.meta)) add('meta', 'expected an object');
  if (sample.answer !== undefined && typeof sample.answer !== 'string') add('answer', `expected a string, got ${typeof sample.answer}`);
  if (!Array.isArray(sample.steps)) {
    add('steps', 'expected an array of strings');
    return problems;
  }
  if (sample.steps.length === 0) add('steps', 'no steps');
  sample.steps.forEach((step, i) => {
    if (typeof step !== 'string') add(`steps[${i}]`, `expected a string, got ${typeof step}`);
    else if (step.trim() === '') add(`steps[${i}]`, 'empty step');
  });
  const n = sample.steps.length;
  let hardLabels = true;
  if (sample.labels !== undefined) {
    if (!Array.isArray(sample.labels)) add('labels', 'expected an array of numbers');
    else {
      if (sample.labels.length !== n) add('labels', `${sample.labels.length} labels for ${n} steps`);
      sample.labels.forEach((label, i) => {
        if (typeof label !== 'number' || !Number.isFinite(label)) add(`labels[${i}]`, `expected a number, got ${String(label)}`);
        else if (label < 0 || label > 1) add(`labels[${i}]`, `label ${label} outside [0,1]`);
        if (label !== 0 && label !== 1) hardLabels = false;
      });
    }
  }
  if (sample.firstError !== undefined) {
    const fe = sample.firstError;
    if (typeof fe !== 'number' || !Number.isInteger(fe)) add('firstError', `expected an integer, got ${String(fe)}`);
    else if (fe < -1 || fe >= n) add('firstError', `first-error index ${fe} out of range [-1, ${n - 1}]`);
    else if (hardLabels && Array.isArray(sample.labels) && sample.labels.length === n) {
      const firstZero = sample.labels.indexOf(0);
      if (firstZero !== fe) add('firstError', `first-error index ${fe} disagrees with labels (first 0 label at ${firstZero})`);
    }
  }
  return problems;
}
