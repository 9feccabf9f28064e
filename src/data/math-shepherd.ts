import { firstErrorOf, positionalId, type AdapterOutput } from './adapter.js';
import { asObject, extraFields, fail, idText, requireString, type RecordLocation } from './record.js';
import type { StepSample } from './types.js';

/** The step tag of Math-Shepherd: every step of `input` ends with it; `label` has +/- there. */
export const SHEPHERD_TAG = 'ки';
const NATIVE_FIELDS = ['id', 'input', 'label'] as const;
const STEP_PREFIX = /^Step \d+:\s*/;

/**
 * Math-Shepherd {input, label, task}: `input` is the question followed by "Step 1: ... ки\nStep
 * 2: ... ки"; `label` is the same text with each tag replaced by '+' (good) or '-' (bad). The
 * problem is the text before "Step 1:"; steps lose their "Step k:" prefix (the writer puts it
 * back). Text after the last tag has no label: it is counted as a dropped step and kept in
 * meta.unlabeled_tail.
 */
export function fromMathShepherdRecord(value: unknown, loc: RecordLocation): AdapterOutput {
  const rec = asObject(value, loc);
  const input = requireString(rec, 'input', loc);
  const labelText = requireString(rec, 'label', loc);
  const parts = input.split(SHEPHERD_TAG);
  if (parts.length < 2) fail(loc, 'input', `no "${SHEPHERD_TAG}" step tags`);
  const labels: number[] = [];
  let cursor = 0;
  for (let i = 0; i < parts.length - 1; i++) {
    if (!labelText.startsWith(parts[i], cursor)) fail(loc, 'label', `does not match input before step tag ${i + 1}`);
    cursor += parts[i].length;
    const sign = labelText[cursor];
    if (sign === '+') labels.push(1);
    else if (sign === '-') labels.push(0);
    else fail(loc, 'label', `expected '+' or '-' at step tag ${i + 1}, found ${JSON.stringify(sign ?? 'end of text')}`);
    cursor += 1;
  }
  if (labelText.slice(cursor) !== parts[parts.length - 1]) fail(loc, 'label', 'does not match input after the last step tag');

  const first = parts[0];
  const stepStart = first.search(/Step 1:/);
  if (stepStart < 0) fail(loc, 'input', 'cannot find where the problem ends (no "Step 1:" before the first tag)');
  const problem = first.slice(0, stepStart).trim();
  const rawSteps = [first.slice(stepStart), ...parts.slice(1, -1)];
  const steps = rawSteps.map((s) => s.trim().replace(STEP_PREFIX, ''));
  const tail = parts[parts.length - 1].trim();
  const id = rec.id !== undefined && rec.id !== null ? idText(rec.id, 'id', loc) : positionalId(loc);
  const meta: Record<string, unknown> = extraFields(rec, NATIVE_FIELDS);
  if (tail !== '') meta.unlabeled_tail = tail;
  const sample: StepSample = { id, problem, steps, labels, firstError: firstErrorOf(labels), source: 'math-shepherd', meta };
  return { samples: [sample], droppedSteps: tail !== '' ? 1 : 0 };
}

/** StepSample (hard labels) -> Math-Shepherd {input, label, ...meta}. */
export function toMathShepherdRecord(sample: StepSample): Record<string, unknown> {
  const labels = sample.labels;
  if (!labels || !labels.every((l) => l === 0 || l === 1)) throw new Error(`sample ${sample.id}: Math-Shepherd needs hard 0/1 labels`);
  const { unlabeled_tail, ...extra } = sample.meta;
  const body = (mark: (i: number) => string) =>
    `${sample.problem} ${sample.steps.map((s, i) => `Step ${i + 1}: ${s} ${mark(i)}`).join('\n')}${typeof unlabeled_tail === 'string' ? `\n${unlabeled_tail}` : ''}`;
  return { id: sample.id, input: body(() => SHEPHERD_TAG), label: body((i) => (labels[i] === 1 ? '+' : '-')), ...extra };
}
