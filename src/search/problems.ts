import { readBonCandidates, type BonFieldOptions } from '../data/bon.js';
import { RecordError } from '../data/jsonl.js';
import type { SearchProblem } from './run.js';

/**
 * The problems to search on: any file the Best-of-N reader takes (bon-eval test sets, sim
 * problems.jsonl or bon/sim.jsonl, a JSONL of {problem|question, answer|gt}); responses, if
 * present, are not used. The id is the record's `id` or `idx`, else its line.
 */
export async function readSearchProblems(file: string, opts: { fields?: Omit<BonFieldOptions, 'scoresField' | 'responsesField'>; limit?: number } = {}): Promise<SearchProblem[]> {
  const out: SearchProblem[] = [];
  const seen = new Map<string, number>();
  for await (const c of readBonCandidates(file, { ...opts.fields, responsesField: undefined })) {
    const raw = c.raw.id;
    const id = typeof raw === 'string' && raw !== '' ? raw : typeof raw === 'number' && Number.isInteger(raw) ? String(raw) : c.id;
    const earlier = seen.get(id);
    if (earlier !== undefined) throw new RecordError(file, c.line, 'id', `problem id "${id}" already given at line ${earlier}`);
    seen.set(id, c.line);
    out.push({ id, problem: c.problem, answer: c.answer });
    if (opts.limit !== undefined && out.length >= opts.limit) break;
  }
  if (out.length === 0) throw new Error(`${file}: no problems`);
  return out;
}
