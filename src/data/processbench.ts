import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileStem, type AdapterOptions, type AdapterOutput } from './adapter.js';
import { asObject, extraFields, fail, idText, requireInteger, requireString, requireStringArray, type RecordLocation } from './record.js';
import type { StepSample } from './types.js';
import { openStepSamples, type ReadOptions } from './read.js';
import { writeNativeRecords } from './write.js';

/** The four ProcessBench subsets, in the order of the paper's tables. */
export const PROCESSBENCH_SUBSETS = ['gsm8k', 'math', 'olympiadbench', 'omnimath'] as const;

const NATIVE_FIELDS = ['id', 'generator', 'problem', 'steps', 'final_answer_correct', 'label'] as const;
const DATA_EXTENSIONS = ['.json', '.jsonl', '.parquet', '.arrow', '.feather'];

/**
 * One ProcessBench record {id, generator, problem, steps, final_answer_correct, label} ->
 * StepSample with firstError = label (0-based, -1 = no error). ProcessBench labels only the
 * first wrong step, so per-step labels stay undefined. Unknown fields are kept in meta.
 */
export function fromProcessBenchRecord(value: unknown, loc: RecordLocation, opts: Partial<AdapterOptions> = {}): AdapterOutput {
  const rec = asObject(value, loc);
  const id = idText(rec.id, 'id', loc);
  const problem = requireString(rec, 'problem', loc);
  const steps = requireStringArray(rec, 'steps', loc);
  const label = requireInteger(rec, 'label', loc);
  const generator = rec.generator;
  if (generator !== undefined && generator !== null && typeof generator !== 'string') fail(loc, 'generator', 'expected a string');
  const correct = rec.final_answer_correct;
  if (correct !== undefined && correct !== null && typeof correct !== 'boolean') fail(loc, 'final_answer_correct', 'expected a boolean');
  const extra = extraFields(rec, [...NATIVE_FIELDS, 'subset']);
  const subset = typeof rec.subset === 'string' ? rec.subset : (opts.subset ?? subsetFromId(id) ?? fileStem(loc.file));
  const sample: StepSample = {
    id,
    problem,
    steps,
    firstError: label,
    source: 'processbench',
    meta: { subset, generator: generator ?? null, final_answer_correct: correct ?? null, ...extra },
  };
  return { samples: [sample] };
}

/** "olympiadbench-12" -> "olympiadbench"; ids without a numeric suffix say nothing. */
function subsetFromId(id: string): string | undefined {
  const m = /^(.+)-\d+$/.exec(id);
  return m ? m[1] : undefined;
}

/** StepSample -> native ProcessBench record (the inverse of fromProcessBenchRecord). */
export function toProcessBenchRecord(sample: StepSample): Record<string, unknown> {
  if (sample.firstError === undefined) {
    throw new Error(`sample ${sample.id}: ProcessBench needs firstError (the first wrong step, -1 for none)`);
  }
  const { subset, generator, final_answer_correct, ...extra } = sample.meta;
  const rec: Record<string, unknown> = {
    id: sample.id,
    generator: generator ?? null,
    problem: sample.problem,
    steps: sample.steps,
    final_answer_correct: final_answer_correct ?? null,
    label: sample.firstError,
    ...extra,
  };
  // The subset is derived from the id on reading; write it only when that would not recover it.
  if (subset !== undefined && subset !== subsetFromId(sample.id)) rec.subset = subset;
  return rec;
}

/**
 * Reads ProcessBench: PATH is a folder of <subset>.json files (gsm8k, math, olympiadbench,
 * omnimath; .jsonl/.parquet/.arrow also accepted) or one JSON array / JSONL / Parquet / Arrow
 * file. `subsets` restricts which subsets are returned (default: all present). Bad records fail
 * (RecordError naming file:line and field).
 */
export async function readProcessBench(path: string, opts: { subsets?: string[] } & Pick<ReadOptions, 'onBadRecord' | 'rejectsPath'> = {}): Promise<StepSample[]> {
  const out = await readProcessBenchRecords(path, opts);
  // Metrics count samples by id: one id twice would be counted twice (or its scores matched to either).
  const firstAt = new Map<string, number>();
  out.forEach((s, i) => {
    const first = firstAt.get(s.id);
    if (first !== undefined) throw new Error(`${path}: sample id "${s.id}" appears twice (samples ${first + 1} and ${i + 1} in reading order); ids must be unique`);
    firstAt.set(s.id, i);
  });
  return out;
}

async function readProcessBenchRecords(path: string, opts: { subsets?: string[] } & Pick<ReadOptions, 'onBadRecord' | 'rejectsPath'>): Promise<StepSample[]> {
  const out: StepSample[] = [];
  const readOpts: ReadOptions = { format: 'processbench', onBadRecord: opts.onBadRecord, rejectsPath: opts.rejectsPath };
  if ((await stat(path)).isDirectory()) {
    const files = await processBenchFiles(path, opts.subsets);
    for (const { subset, file } of files) {
      const { samples } = openStepSamples(file, { ...readOpts, subset });
      for await (const s of samples) out.push(s);
    }
    return out;
  }
  const wanted = opts.subsets ? new Set(opts.subsets) : undefined;
  const { samples } = openStepSamples(path, readOpts);
  for await (const s of samples) if (!wanted || wanted.has(String(s.meta.subset))) out.push(s);
  return out;
}

/** The subset files of a ProcessBench folder, in canonical subset order. */
export async function processBenchFiles(dir: string, subsets?: string[]): Promise<{ subset: string; file: string }[]> {
  const names = await readdir(dir);
  const bySubset = new Map<string, string>();
  for (const name of names.sort()) {
    const ext = DATA_EXTENSIONS.find((e) => name.toLowerCase().endsWith(e));
    if (!ext) continue;
    const subset = name.slice(0, -ext.length);
    if (!bySubset.has(subset)) bySubset.set(subset, join(dir, name));
  }
  const known = PROCESSBENCH_SUBSETS.filter((s) => bySubset.has(s));
  const others = [...bySubset.keys()].filter((s) => !(PROCESSBENCH_SUBSETS as readonly string[]).includes(s));
  const order = subsets ?? (known.length > 0 ? [...known] : others);
  return order.map((subset) => {
    const file = bySubset.get(subset);
    if (!file) throw new Error(`${dir}: no file for ProcessBench subset "${subset}" (have: ${[...bySubset.keys()].join(', ') || 'none'})`);
    return { subset, file };
  });
}

/** Writes samples in ProcessBench's own layout: a JSON array for ".json", else JSONL. */
export async function writeProcessBench(path: string, samples: AsyncIterable<StepSample> | Iterable<StepSample>): Promise<number> {
  return writeNativeRecords(path, samples, 'processbench');
}
