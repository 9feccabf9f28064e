import { positionalId, type AdapterOptions, type AdapterOutput } from './adapter.js';
import { asObject, describeType, fail, type RecordLocation } from './record.js';
import type { StepSample } from './types.js';

interface Completion {
  text: string;
  rating: number | null;
}

/**
 * One PRM800K phase-1/phase-2 line -> StepSample. Each labelled step offers rated completions
 * (-1 bad, 0 neutral, +1 good); the one the labeler chose (chosen_completion) continues the
 * solution, or the labeler's own human_completion (counted good). A step with neither is where
 * labelling stopped: its first -1 completion is kept as the erroneous step (finish_reason
 * "found_error"); otherwise its completions are counted as dropped steps. Neutral ratings are
 * positive by default (as the Qwen PRM paper does) or negative with neutral:'negative'.
 * firstError is the first step labelled 0 (i.e. the first -1, or first 0/-1 when neutral is
 * negative); -1 when the labeler finished the solution without finding one; unknown otherwise
 * (gave up, bad problem).
 */
export function fromPrm800kRecord(value: unknown, loc: RecordLocation, opts: Pick<AdapterOptions, 'neutral'>): AdapterOutput {
  const rec = asObject(value, loc);
  const question = rec.question;
  if (question === null || typeof question !== 'object' || Array.isArray(question)) fail(loc, 'question', `expected an object, got ${describeType(question)}`);
  const q = question as Record<string, unknown>;
  if (typeof q.problem !== 'string') fail(loc, 'question.problem', `expected a string, got ${describeType(q.problem)}`);
  const label = rec.label;
  if (label === null || typeof label !== 'object' || Array.isArray(label)) fail(loc, 'label', `expected an object, got ${describeType(label)}`);
  const l = label as Record<string, unknown>;
  if (!Array.isArray(l.steps)) fail(loc, 'label.steps', `expected an array, got ${describeType(l.steps)}`);

  const steps: string[] = [];
  const labels: number[] = [];
  const ratings: (number | null)[] = [];
  let droppedSteps = 0;
  // Labelling ended on a step with rated completions but none chosen and none bad: where the
  // solution goes wrong (if it does) is then not known.
  let endedUnchosen = false;
  const toLabel = (rating: number | null) => (rating === null || rating === 1 ? 1 : rating === -1 ? 0 : opts.neutral === 'positive' ? 1 : 0);
  for (let i = 0; i < l.steps.length; i++) {
    const field = `label.steps[${i}]`;
    const step = l.steps[i];
    if (step === null || typeof step !== 'object' || Array.isArray(step)) fail(loc, field, 'expected an object');
    const s = step as Record<string, unknown>;
    const completions = readCompletions(s.completions, `${field}.completions`, loc);
    let kept: Completion | undefined;
    if (s.chosen_completion !== null && s.chosen_completion !== undefined) {
      const chosen = s.chosen_completion;
      if (typeof chosen !== 'number' || !Number.isInteger(chosen) || chosen < 0 || chosen >= completions.length) {
        fail(loc, `${field}.chosen_completion`, `expected an index into the ${completions.length} completions, got ${String(chosen)}`);
      }
      kept = completions[chosen];
    } else if (s.human_completion !== null && s.human_completion !== undefined) {
      // Phase 1 stores the labeler's own step as {text, rating, ...}; a bare string is accepted too.
      const human = typeof s.human_completion === 'string' ? { text: s.human_completion, rating: null } : readCompletion(s.human_completion, `${field}.human_completion`, loc, true);
      kept = { text: human.text, rating: human.rating ?? null };
    } else {
      kept = completions.find((c) => c.rating === -1);
      if (!kept) {
        droppedSteps += completions.length > 0 ? 1 : 0;
        endedUnchosen = completions.length > 0;
        if (i !== l.steps.length - 1) fail(loc, field, 'no chosen or human completion before the last step');
        break;
      }
    }
    steps.push(kept.text);
    ratings.push(kept.rating);
    labels.push(toLabel(kept.rating));
    if (kept.rating === -1) {
      // Labelling stops at the first bad step; anything after it has no trustworthy rating.
      droppedSteps += l.steps.length - 1 - i;
      break;
    }
  }
  const finish = typeof l.finish_reason === 'string' ? l.finish_reason : null;
  const firstBad = labels.indexOf(0);
  let firstError: number | undefined;
  if (firstBad >= 0) firstError = firstBad;
  else if (!endedUnchosen && (finish === 'solution' || finish === 'found_error')) firstError = -1;

  const meta: Record<string, unknown> = {
    ratings,
    finish_reason: finish,
    neutral: opts.neutral,
    labeler: rec.labeler ?? null,
    timestamp: rec.timestamp ?? null,
    generation: rec.generation ?? null,
    is_quality_control_question: rec.is_quality_control_question ?? null,
    is_initial_screening_question: rec.is_initial_screening_question ?? null,
    total_time: l.total_time ?? null,
    ground_truth_solution: q.ground_truth_solution ?? null,
    pre_generated_answer: q.pre_generated_answer ?? null,
    pre_generated_verifier_score: q.pre_generated_verifier_score ?? null,
  };
  const sample: StepSample = { id: positionalId(loc), problem: q.problem, steps, labels, source: 'prm800k', meta };
  if (typeof q.ground_truth_answer === 'string') sample.answer = q.ground_truth_answer;
  if (firstError !== undefined) sample.firstError = firstError;
  // A soft-label-free sample with firstError after a neutral step under 'negative' is still
  // consistent: labels and firstError both count neutral as bad.
  return { samples: [sample], droppedSteps };
}

function readCompletions(value: unknown, field: string, loc: RecordLocation): Completion[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) fail(loc, field, `expected an array, got ${describeType(value)}`);
  return value.map((c, i) => readCompletion(c, `${field}[${i}]`, loc, false));
}

function readCompletion(value: unknown, field: string, loc: RecordLocation, human: boolean): Completion {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(loc, field, 'expected an object {text, rating}');
  const c = value as Record<string, unknown>;
  if (typeof c.text !== 'string') fail(loc, `${field}.text`, `expected a string, got ${describeType(c.text)}`);
  const rating = c.rating;
  if (rating === null || rating === undefined) {
    if (!human) fail(loc, `${field}.rating`, 'missing');
    return { text: c.text, rating: null };
  }
  if (rating !== -1 && rating !== 0 && rating !== 1) fail(loc, `${field}.rating`, `expected -1, 0 or 1, got ${String(rating)}`);
  return { text: c.text, rating };
}
