import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readJsonl } from '../data/jsonl.js';
import { asObject, describeType, fail, idText, requireString, requireStringArray, type RecordLocation } from '../data/record.js';

/**
 * PRMBench's test data read with the official loader's semantics (ssmisya/PRMBench,
 * mr_eval/tasks/prmtest_classified/task.py, load_data_function):
 * - every *.jsonl file of the folder is read (here in name order, so the item order is stable;
 *   the official order is os.listdir's, which changes no metric);
 * - each line is one item with id `{classification}_{idx}`, the modified question and process,
 *   and its 1-based error steps; an id seen before is skipped (the first line wins);
 * - each `redundency` line also yields, once per idx, the item `correct_{idx}`: the ORIGINAL
 *   question and process, with no error step (classification "correct").
 */

/** The item classifications of PRMBench besides "correct", in the order of the paper's table. */
export const PRMBENCH_CLASSES = [
  'redundency',
  'circular',
  'counterfactual',
  'step_contradiction',
  'domain_inconsistency',
  'confidence',
  'missing_condition',
  'deception',
  'multi_solutions',
] as const;

/** The paper's three groups of classes (simplicity, soundness, sensitivity). */
export const PRMBENCH_GROUPS: Record<string, readonly string[]> = {
  simplicity: ['redundency', 'circular'],
  soundness: ['counterfactual', 'step_contradiction', 'domain_inconsistency', 'confidence'],
  sensitivity: ['missing_condition', 'deception', 'multi_solutions'],
};

/** The classification the loader derives the error-free "correct" items from (official spelling). */
const CORRECT_SOURCE_CLASS = 'redundency';

export interface PrmBenchItem {
  /** The loader's id: `{classification}_{idx}` or `correct_{idx}`. */
  id: string;
  classification: string;
  problem: string;
  steps: string[];
  /** 1-based indices of the erroneous steps, as in the data (empty for correct items). */
  errorSteps: number[];
  /** Where the item was read. */
  file: string;
  line: number;
}

export interface PrmBenchData {
  items: PrmBenchItem[];
  files: string[];
  /** Lines skipped because their id was already loaded (the official loader keeps the first). */
  duplicates: { id: string; file: string; line: number }[];
  /** Error steps outside 1..steps (never matched by a step, as in the official metric). */
  errorStepsOutOfRange: number;
}

function errorStepList(rec: Record<string, unknown>, loc: RecordLocation): number[] {
  const value = rec.error_steps;
  if (value === undefined) fail(loc, 'error_steps', 'missing');
  if (!Array.isArray(value)) fail(loc, 'error_steps', `expected an array of 1-based step numbers, got ${describeType(value)}`);
  value.forEach((v, i) => {
    if (typeof v !== 'number' || !Number.isInteger(v)) fail(loc, `error_steps[${i}]`, `expected an integer, got ${JSON.stringify(v)}`);
  });
  return value as number[];
}

/** A process of at least one step: an empty one has nothing to score and would count as an item silently. */
function nonEmptySteps(rec: Record<string, unknown>, field: string, loc: RecordLocation): string[] {
  const steps = requireStringArray(rec, field, loc);
  if (steps.length === 0) fail(loc, field, 'no steps (an item needs at least one step to score)');
  return steps;
}

/** The *.jsonl files of a folder in name order, or the one file given. */
async function dataFiles(path: string): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new Error(`${path}: no such file or folder (PRMBench data: a folder of *.jsonl files)`);
  }
  if (!info.isDirectory()) return [path];
  const names = (await readdir(path)).filter((f) => f.endsWith('.jsonl')).sort();
  if (names.length === 0) throw new Error(`${path}: no *.jsonl files (PRMBench data: mr_eval/tasks/prmtest_classified/data)`);
  return names.map((f) => join(path, f));
}

/** Reads PRMBench (a folder of *.jsonl, or one file) into the official loader's items. */
export async function loadPrmBench(path: string): Promise<PrmBenchData> {
  const files = await dataFiles(path);
  const items: PrmBenchItem[] = [];
  const seen = new Set<string>();
  const duplicates: PrmBenchData['duplicates'] = [];
  let outOfRange = 0;
  const add = (item: PrmBenchItem) => {
    if (seen.has(item.id)) {
      duplicates.push({ id: item.id, file: item.file, line: item.line });
      return;
    }
    seen.add(item.id);
    for (const e of item.errorSteps) if (e < 1 || e > item.steps.length) outOfRange++;
    items.push(item);
  };
  for (const file of files) {
    for await (const { value, line } of readJsonl(file)) {
      const loc: RecordLocation = { file, line, unit: 'line' };
      const rec = asObject(value, loc);
      const idx = idText(rec.idx, 'idx', loc);
      const classification = requireString(rec, 'classification', loc);
      if (classification === 'correct') fail(loc, 'classification', '"correct" is reserved for the items the loader derives');
      const problem = requireString(rec, 'modified_question', loc);
      const steps = nonEmptySteps(rec, 'modified_process', loc);
      const errorSteps = errorStepList(rec, loc);
      if (classification === CORRECT_SOURCE_CLASS && !seen.has(`correct_${idx}`)) {
        add({
          id: `correct_${idx}`,
          classification: 'correct',
          problem: requireString(rec, 'original_question', loc),
          steps: nonEmptySteps(rec, 'original_process', loc),
          errorSteps: [],
          file,
          line,
        });
      }
      add({ id: `${classification}_${idx}`, classification, problem, steps, errorSteps, file, line });
    }
  }
  if (items.length === 0) throw new Error(`${path}: no PRMBench items`);
  return { items, files, duplicates, errorStepsOutOfRange: outOfRange };
}
