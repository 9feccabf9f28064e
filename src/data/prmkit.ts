import { fileStem, positionalId, type AdapterOutput } from './adapter.js';
import { asObject, describeType, fail, idText, type RecordLocation } from './record.js';
import type { StepSample } from './types.js';

const FIELDS = ['id', 'problem', 'steps', 'answer', 'labels', 'firstError', 'source', 'meta'] as const;

/**
 * The canonical StepSample itself (one per JSONL line, or one per Arrow/Parquet row where
 * `meta` is a JSON string because its shape differs per record). Type checks here; the
 * content rules (label count, range, first-error index) are in validateStepSample.
 * The plain record {problem, steps, labels} is one too: without an id it gets its position
 * (file stem and line), without a source the file stem; 0/1 labels may be written as booleans.
 */
export function fromPrmkitRecord(value: unknown, loc: RecordLocation): AdapterOutput {
  const rec = asObject(value, loc);
  for (const key of Object.keys(rec)) {
    if (!(FIELDS as readonly string[]).includes(key)) fail(loc, key, `unknown field (a StepSample has ${FIELDS.join(', ')})`);
  }
  const str = (field: string, optional: boolean): string | undefined => {
    const v = rec[field];
    if (v === undefined || v === null) {
      if (optional) return undefined;
      fail(loc, field, 'missing');
    }
    if (typeof v !== 'string') fail(loc, field, `expected a string, got ${describeType(v)}`);
    return v;
  };
  const steps = rec.steps;
  if (!Array.isArray(steps)) fail(loc, 'steps', steps === undefined ? 'missing' : `expected an array of strings, got ${describeType(steps)}`);
  steps.forEach((s, i) => {
    if (typeof s !== 'string') fail(loc, `steps[${i}]`, `expected a string, got ${describeType(s)}`);
  });
  let labels: number[] | undefined;
  if (rec.labels !== undefined && rec.labels !== null) {
    if (!Array.isArray(rec.labels)) fail(loc, 'labels', `expected an array of numbers, got ${describeType(rec.labels)}`);
    rec.labels.forEach((l, i) => {
      if (typeof l !== 'number' && typeof l !== 'boolean') fail(loc, `labels[${i}]`, `expected a number or a boolean, got ${describeType(l)}`);
    });
    labels = (rec.labels as (number | boolean)[]).map((l) => (typeof l === 'boolean' ? Number(l) : l));
  }
  let firstError: number | undefined;
  if (rec.firstError !== undefined && rec.firstError !== null) {
    if (typeof rec.firstError !== 'number' || !Number.isInteger(rec.firstError)) fail(loc, 'firstError', `expected an integer, got ${String(rec.firstError)}`);
    firstError = rec.firstError;
  }
  let meta: unknown = rec.meta ?? {};
  if (typeof meta === 'string') {
    try {
      meta = JSON.parse(meta);
    } catch (e) {
      fail(loc, 'meta', `not valid JSON (${(e as Error).message})`);
    }
  }
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) fail(loc, 'meta', `expected an object, got ${describeType(meta)}`);
  const sample: StepSample = {
    id: rec.id === undefined || rec.id === null ? positionalId(loc) : idText(rec.id, 'id', loc),
    problem: str('problem', false)!,
    steps: steps as string[],
    source: rec.source === undefined || rec.source === null ? fileStem(loc.file) : str('source', false)!,
    meta: meta as Record<string, unknown>,
  };
  const answer = str('answer', true);
  if (answer !== undefined) sample.answer = answer;
  if (labels !== undefined) sample.labels = labels;
  if (firstError !== undefined) sample.firstError = firstError;
  return { samples: [orderFields(sample)] };
}

/** A StepSample with its keys in canonical order (stable JSONL output, deep-equal round trips). */
export function orderFields(s: StepSample): StepSample {
  const out: Partial<StepSample> = { id: s.id, problem: s.problem, steps: s.steps };
  if (s.answer !== undefined) out.answer = s.answer;
  if (s.labels !== undefined) out.labels = s.labels;
  if (s.firstError !== undefined) out.firstError = s.firstError;
  out.source = s.source;
  out.meta = s.meta;
  return out as StepSample;
}
