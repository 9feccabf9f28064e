import { join } from 'node:path';
import { addJsonlOutput } from '../data/jsonl.js';
import { AtomicOutputSet } from '../util/durable-fs.js';
import { readProcessBench } from '../data/processbench.js';
import type { StepSample } from '../data/types.js';
import {
  evaluateProcessBench,
  processBenchMarkdown,
  subsetOf,
  type ProcessBenchPrediction,
  type ProcessBenchReport,
  type ThresholdOption,
} from './processbench.js';
import { readStepScoresFile } from './step-scores-file.js';
import { scoreNamingSamples, type StepScorer } from './step-scorer.js';

export interface ProcessBenchRunOptions {
  /** Folder of <subset>.json files or one JSON/JSONL/Parquet/Arrow file. */
  data: string;
  /** Subsets to evaluate (default: all present in the data). */
  subsets?: string[];
  /** A JSONL step-score file ({"id", "step_scores"}) ... */
  scores?: string;
  /** ... or a PRM that scores the steps. */
  scorer?: StepScorer;
  threshold: ThresholdOption;
  /** Subset the auto threshold is chosen on (default gsm8k). */
  thresholdSubset?: string;
  out: string;
}

export interface ProcessBenchRunResult {
  report: ProcessBenchReport;
  markdown: string;
  files: { metrics: string; predictions: string };
}

/** Reads the benchmark, selects the subsets, keeping the ids of the others (score files may hold them). */
export async function loadProcessBench(
  data: string,
  subsets?: readonly string[],
): Promise<{ samples: StepSample[]; otherIds: Set<string> }> {
  const all = await readProcessBench(data);
  if (!subsets) return { samples: all, otherIds: new Set() };
  const wanted = new Set(subsets);
  const present = new Set(all.map(subsetOf));
  const absent = subsets.filter((s) => !present.has(s));
  if (absent.length > 0) {
    throw new Error(`${data}: no samples for subset(s) ${absent.join(', ')} (present: ${[...present].join(', ')})`);
  }
  const samples = all.filter((s) => wanted.has(subsetOf(s)));
  const otherIds = new Set(all.filter((s) => !wanted.has(subsetOf(s))).map((s) => s.id));
  return { samples, otherIds };
}

/** `prmkit eval processbench`: scores (from a file or a model) -> metrics.json + predictions.jsonl. */
export async function runProcessBench(opts: ProcessBenchRunOptions): Promise<ProcessBenchRunResult> {
  if ((opts.scores === undefined) === (opts.scorer === undefined)) {
    throw new Error('runProcessBench: give exactly one of scores (a file) and scorer (a model)');
  }
  const { samples, otherIds } = await loadProcessBench(opts.data, opts.subsets);
  let stepScores: (number[] | null)[];
  if (opts.scores !== undefined) {
    stepScores = await readStepScoresFile(opts.scores, samples, { ignoredIds: otherIds });
  } else {
    const scored = await scoreNamingSamples(opts.scorer as StepScorer, samples, 'score processbench');
    stepScores = scored.stepScores;
  }
  const { report, predictions } = evaluateProcessBench(samples, stepScores, {
    threshold: opts.threshold,
    thresholdSubset: opts.thresholdSubset,
  });
  const files = await writeProcessBenchOutputs(opts.out, report, predictions);
  return { report, markdown: processBenchMarkdown(report), files };
}

/**
 * DIR/metrics.json and DIR/predictions.jsonl, written atomically and together: into `set` when
 * given (the caller commits it with its other outputs), else committed here.
 */
export async function writeProcessBenchOutputs(
  out: string,
  report: ProcessBenchReport,
  predictions: readonly ProcessBenchPrediction[],
  set?: AtomicOutputSet,
): Promise<{ metrics: string; predictions: string }> {
  const files = { metrics: join(out, 'metrics.json'), predictions: join(out, 'predictions.jsonl') };
  const outputs = set ?? new AtomicOutputSet();
  try {
    await outputs.addFile(files.metrics, `${JSON.stringify(report, null, 2)}\n`);
    await addJsonlOutput(outputs, files.predictions, predictions);
    if (!set) await outputs.commit();
  } catch (err) {
    if (!set) await outputs.discard();
    throw err;
  }
  return files;
}
