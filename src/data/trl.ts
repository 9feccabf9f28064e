import { firstErrorOf, positionalId, type AdapterOutput } from './adapter.js';
import { asObject, describeType, extraFields, fail, idText, requireString, requireStringArray, type RecordLocation } from './record.js';
import type { StepSample } from './types.js';

const NATIVE_FIELDS = ['id', 'prompt', 'completions', 'labels'] as const;

/**
 * TRL stepwise supervision {prompt, completions, labels} -> StepSample. Boolean labels become
 * 0/1 (and give firstError); float labels stay floats (soft labels, firstError unknown).
 * meta.label_type remembers which, so the native writer gives back what it read.
 */
export function fromTrlRecord(value: unknown, loc: RecordLocation): AdapterOutput {
  const rec = asObject(value, loc);
  const problem = requireString(rec, 'prompt', loc);
  const steps = requireStringArray(rec, 'completions', loc);
  const rawLabels = rec.labels;
  if (rawLabels === undefined) fail(loc, 'labels', 'missing');
  if (!Array.isArray(rawLabels)) fail(loc, 'labels', `expected an array of booleans or numbers, got ${describeType(rawLabels)}`);
  const allBool = rawLabels.every((l) => typeof l === 'boolean');
  const allNumber = rawLabels.every((l) => typeof l === 'number');
  if (!allBool && !allNumber) {
    const i = rawLabels.findIndex((l) => typeof l !== typeof rawLabels[0] || (typeof l !== 'boolean' && typeof l !== 'number'));
    fail(loc, `labels[${Math.max(i, 0)}]`, 'labels must be all booleans or all numbers');
  }
  const labels = rawLabels.map((l) => (typeof l === 'boolean' ? (l ? 1 : 0) : (l as number)));
  const id = rec.id !== undefined && rec.id !== null ? idText(rec.id, 'id', loc) : positionalId(loc);
  const sample: StepSample = {
    id,
    problem,
    steps,
    labels,
    source: 'trl',
    meta: { label_type: allBool && rawLabels.length > 0 ? 'bool' : 'float', ...extraFields(rec, NATIVE_FIELDS) },
  };
  const firstError = firstErrorOf(labels);
  if (firstError !== undefined) sample.firstError = firstError;
  return { samples: [sample] };
}

/**
 * StepSample -> TRL stepwise record. Labels are written as booleans when they were read as
 * booleans (or the caller asks for them), else as numbers; the id is kept as an extra column
 * (TRL ignores unknown columns) so re-reading gives the same ids.
 */
export function toTrlRecord(sample: StepSample, opts: { labelType?: 'bool' | 'float' } = {}): Record<string, unknown> {
  if (!sample.labels) throw new Error(`sample ${sample.id}: TRL stepwise supervision needs per-step labels`);
  const { label_type, ...extra } = sample.meta;
  const type = opts.labelType ?? (label_type === 'bool' ? 'bool' : 'float');
  if (type === 'bool' && !sample.labels.every((l) => l === 0 || l === 1)) {
    throw new Error(`sample ${sample.id}: soft labels cannot be written as booleans`);
  }
  return {
    ...extra,
    id: sample.id,
    prompt: sample.problem,
    completions: sample.steps,
    labels: type === 'bool' ? sample.labels.map((l) => l === 1) : sample.labels,
  };
}
