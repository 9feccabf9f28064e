import type { RecordAdapter } from './adapter.js';
import { fromBonRecord } from './bon.js';
import { fromGsm8kRecord } from './gsm8k.js';
import { fromMathShepherdRecord } from './math-shepherd.js';
import { fromPrm800kRecord } from './prm800k.js';
import { fromPrmkitRecord } from './prmkit.js';
import { fromProcessBenchRecord } from './processbench.js';
import { fromTrlRecord } from './trl.js';

/** Record layouts prmkit reads (the container — JSONL, JSON, Arrow, Parquet — is detected separately). */
export type DataFormat = 'prmkit' | 'processbench' | 'prm800k' | 'math-shepherd' | 'trl' | 'bon' | 'gsm8k';

export const DATA_FORMATS: readonly DataFormat[] = ['prmkit', 'processbench', 'prm800k', 'math-shepherd', 'trl', 'bon', 'gsm8k'];

export const ADAPTERS: Record<DataFormat, RecordAdapter> = {
  prmkit: (value, loc) => fromPrmkitRecord(value, loc),
  processbench: fromProcessBenchRecord,
  prm800k: fromPrm800kRecord,
  'math-shepherd': (value, loc) => fromMathShepherdRecord(value, loc),
  trl: (value, loc) => fromTrlRecord(value, loc),
  bon: fromBonRecord,
  gsm8k: fromGsm8kRecord,
};

export function isDataFormat(value: string): value is DataFormat {
  return (DATA_FORMATS as readonly string[]).includes(value);
}

/**
 * Guesses the layout of one record from its keys (used when --format is not given). Returns
 * undefined when nothing fits; callers then ask the user to name the format.
 */
export function guessFormat(record: unknown): DataFormat | undefined {
  if (record === null || typeof record !== 'object' || Array.isArray(record)) return undefined;
  const r = record as Record<string, unknown>;
  const has = (...keys: string[]) => keys.every((k) => k in r);
  if (has('id', 'problem', 'steps', 'source')) return 'prmkit';
  // The plain record {problem, steps, labels?} (id and source optional) is prmkit's own too; no
  // other layout has a `steps` list without ProcessBench's `label` or BoN's responses.
  if (has('problem', 'steps') && Array.isArray(r.steps) && !('label' in r) && !('responses' in r) && !('code' in r)) return 'prmkit';
  if (has('problem', 'steps', 'label')) return 'processbench';
  if (has('question', 'label') && typeof r.label === 'object' && r.label !== null && 'steps' in (r.label as object)) return 'prm800k';
  if (has('input', 'label') && typeof r.input === 'string' && r.input.includes('ки')) return 'math-shepherd';
  if (has('prompt', 'completions', 'labels')) return 'trl';
  if (has('question', 'ground_truth')) return 'gsm8k';
  if (has('question', 'answer') && typeof r.answer === 'string' && r.answer.includes('####') && !('responses' in r) && !('code' in r)) return 'gsm8k';
  if (('problem' in r || 'question' in r) && ('responses' in r || 'code' in r || 'answer' in r || 'gt' in r || 'final_answer' in r || 'solution' in r)) return 'bon';
  return undefined;
}
