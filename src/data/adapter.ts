import { basename, extname } from 'node:path';
import type { RecordLocation } from './record.js';
import type { StepSample } from './types.js';

/** Options every record adapter may use. */
export interface AdapterOptions {
  /** Separator for adapters that split running text into steps (default per format). */
  stepSeparator?: string;
  /** PRM800K: how a neutral (0) rating counts. */
  neutral: 'positive' | 'negative';
  /** ProcessBench: subset name when the file does not say (folder reading passes the file name). */
  subset?: string;
}

/** What an adapter makes of one source record. */
export interface AdapterOutput {
  samples: StepSample[];
  /** Steps present in the source that the adapter could not keep (e.g. unlabelled tails). */
  droppedSteps?: number;
}

/** Maps one source record to StepSamples, or throws a RecordError naming the field. */
export type RecordAdapter = (value: unknown, loc: RecordLocation, opts: AdapterOptions) => AdapterOutput;

/** File name without directory and extension: "train" for ".../train.jsonl". */
export function fileStem(file: string): string {
  return basename(file, extname(file));
}

/** A stable id for a record that carries none: file stem and line (or row). */
export function positionalId(loc: RecordLocation): string {
  return `${fileStem(loc.file)}-${loc.line}`;
}

/**
 * The hard labels a first-error index implies (ProcessBench-style data): 1 for every step before
 * it, 0 at it; later steps get no label (a step after an error is neither right nor wrong in
 * that data) and are dropped by the caller, as MC labels stop at their first 0. -1 = every step
 * correct.
 */
export function labelsFromFirstError(nSteps: number, firstError: number): number[] {
  if (firstError < 0 || firstError >= nSteps) return new Array<number>(nSteps).fill(1);
  return [...new Array<number>(firstError).fill(1), 0];
}

/** 0/1 labels -> index of the first 0, or -1 when all are 1; undefined for soft labels. */
export function firstErrorOf(labels: readonly number[]): number | undefined {
  if (!labels.every((l) => l === 0 || l === 1)) return undefined;
  return labels.indexOf(0);
}
