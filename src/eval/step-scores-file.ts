import { readJsonl, RecordError } from '../data/jsonl.js';

/**
 * Reads a step-score file (JSONL lines `{"id": "gsm8k-0", "step_scores": [0.98, 0.12, ...]}`)
 * and aligns it with the samples, one score list per sample in sample order.
 *
 * Every mismatch is an error naming file:line: an id the data does not know, an id given twice,
 * a step count that differs from the sample's, a score that is not a finite number. Ids in
 * `ignoredIds` (samples present in the data but outside the selected subsets) are skipped.
 * Samples without a score line are reported together, with the first few ids.
 */
export async function readStepScoresFile(
  file: string,
  samples: readonly { id: string; steps: readonly string[] }[],
  opts: { ignoredIds?: ReadonlySet<string> } = {},
): Promise<number[][]> {
  const indexById = new Map<string, number>();
  samples.forEach((s, i) => indexById.set(s.id, i));
  const scores: (number[] | undefined)[] = new Array(samples.length);
  const seenAt = new Map<string, number>();

  for await (const { value, line } of readJsonl(file)) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new RecordError(file, line, undefined, 'expected a JSON object {"id", "step_scores"}');
    }
    const record = value as Record<string, unknown>;
    const id = record.id;
    if (typeof id !== 'string' || id === '') throw new RecordError(file, line, 'id', 'missing or not a non-empty string');
    const previous = seenAt.get(id);
    if (previous !== undefined) throw new RecordError(file, line, 'id', `"${id}" already given at line ${previous}`);
    seenAt.set(id, line);
    if (opts.ignoredIds?.has(id)) continue;
    const index = indexById.get(id);
    if (index === undefined) throw new RecordError(file, line, 'id', `"${id}" is not a sample of the data`);

    const raw = record.step_scores;
    if (!Array.isArray(raw)) throw new RecordError(file, line, 'step_scores', 'missing or not an array of numbers');
    const expected = samples[index].steps.length;
    if (raw.length !== expected) {
      throw new RecordError(file, line, 'step_scores', `has ${raw.length} scores but sample "${id}" has ${expected} steps`);
    }
    raw.forEach((s, j) => {
      if (typeof s !== 'number' || !Number.isFinite(s)) {
        throw new RecordError(file, line, 'step_scores', `entry ${j} is ${JSON.stringify(s)}, not a finite number`);
      }
    });
    scores[index] = raw as number[];
  }

  const missing = samples.filter((_, i) => scores[i] === undefined).map((s) => s.id);
  if (missing.length > 0) {
    const shown = missing.slice(0, 5).join(', ');
    throw new Error(
      `${file}: no step_scores for ${missing.length} of ${samples.length} samples (first: ${shown}${missing.length > 5 ? ', ...' : ''})`,
    );
  }
  return scores as number[][];
}
