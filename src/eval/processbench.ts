import type { StepSample } from '../data/types.js';
import { coverage } from '../util/format.js';
import { markdownTable, pct } from './markdown.js';
import {
  chooseThreshold,
  f1Intervals,
  predictFirstError,
  processBenchMetrics,
  type F1Intervals,
  type ProcessBenchItem,
  type ProcessBenchMetrics,
} from './processbench-metrics.js';

export type ThresholdOption = number | 'auto';

export interface ProcessBenchReport extends ProcessBenchMetrics {
  threshold: number;
  threshold_mode: 'fixed' | 'auto';
  /** With `auto`: the subset the threshold was chosen on, and its F1 there. */
  threshold_subset?: string;
  threshold_subset_f1?: number;
  /** Samples evaluated (too-long samples are excluded and listed). */
  n: number;
  n_too_long: number;
  too_long_ids: string[];
  /** 95% percentile bootstrap intervals of each subset's F1 and of the average. */
  ci?: F1Intervals;
}

export interface ProcessBenchPrediction {
  id: string;
  subset: string;
  label: number;
  predicted: number | null;
  match: boolean | null;
  final_answer_correct?: boolean;
  step_scores: number[] | null;
  /** Set when the sample did not fit the model's context and was left out of the metrics. */
  too_long?: true;
}

/** The subset a sample belongs to: meta.subset (ProcessBench reader, sim) or else its source. */
export function subsetOf(sample: StepSample): string {
  const subset = sample.meta?.subset;
  return typeof subset === 'string' && subset !== '' ? subset : sample.source;
}

function finalAnswerCorrectOf(sample: StepSample): boolean | undefined {
  const v = sample.meta?.final_answer_correct;
  return typeof v === 'boolean' ? v : undefined;
}

/**
 * Turns step scores into ProcessBench predictions and metrics. stepScores[i] belongs to
 * samples[i]; null marks a sample that was too long to score: it is excluded from the metrics
 * and reported (never silently cut). With threshold 'auto' the threshold maximising F1 on
 * `thresholdSubset` (default gsm8k) is chosen first, then applied to every subset.
 */
export function evaluateProcessBench(
  samples: readonly StepSample[],
  stepScores: readonly (readonly number[] | null)[],
  opts: { threshold: ThresholdOption; thresholdSubset?: string },
): { report: ProcessBenchReport; predictions: ProcessBenchPrediction[] } {
  if (samples.length !== stepScores.length) {
    throw new Error(`evaluateProcessBench: ${samples.length} samples but ${stepScores.length} score lists`);
  }
  const scored: { sample: StepSample; subset: string; label: number; scores: readonly number[] }[] = [];
  const tooLongIds: string[] = [];
  samples.forEach((sample, i) => {
    const label = sample.firstError;
    if (typeof label !== 'number' || !Number.isInteger(label) || label < -1 || label >= sample.steps.length) {
      throw new Error(`sample "${sample.id}": firstError ${String(label)} is not -1 or a step index below ${sample.steps.length}`);
    }
    const scores = stepScores[i];
    if (scores === null) {
      tooLongIds.push(sample.id);
      return;
    }
    if (scores.length !== sample.steps.length) {
      throw new Error(`sample "${sample.id}": ${scores.length} step scores for ${sample.steps.length} steps`);
    }
    scored.push({ sample, subset: subsetOf(sample), label, scores });
  });

  let threshold: number;
  let choice: { subset: string; f1: number } | undefined;
  if (opts.threshold === 'auto') {
    const subset = opts.thresholdSubset ?? 'gsm8k';
    const chosen = chooseThreshold(
      scored.map((s) => ({ subset: s.subset, label: s.label, stepScores: s.scores })),
      subset,
    );
    threshold = chosen.threshold;
    choice = { subset, f1: chosen.f1 };
  } else {
    if (!Number.isFinite(opts.threshold)) throw new Error(`threshold must be a finite number or "auto"`);
    threshold = opts.threshold;
  }

  const items: ProcessBenchItem[] = [];
  const predictionById = new Map<string, number>();
  for (const s of scored) {
    const predicted = predictFirstError(s.scores, threshold);
    predictionById.set(s.sample.id, predicted);
    items.push({ subset: s.subset, label: s.label, predicted, finalAnswerCorrect: finalAnswerCorrectOf(s.sample) });
  }

  const predictions: ProcessBenchPrediction[] = samples.map((sample, i) => {
    const predicted = predictionById.get(sample.id);
    const fac = finalAnswerCorrectOf(sample);
    const label = sample.firstError as number;
    return {
      id: sample.id,
      subset: subsetOf(sample),
      label,
      predicted: predicted ?? null,
      match: predicted === undefined ? null : predicted === label,
      ...(fac === undefined ? {} : { final_answer_correct: fac }),
      step_scores: stepScores[i] === null ? null : [...(stepScores[i] as number[])],
      ...(stepScores[i] === null ? { too_long: true as const } : {}),
    };
  });

  const report: ProcessBenchReport = {
    ...processBenchMetrics(items),
    threshold,
    threshold_mode: opts.threshold === 'auto' ? 'auto' : 'fixed',
    ...(choice ? { threshold_subset: choice.subset, threshold_subset_f1: choice.f1 } : {}),
    n: items.length,
    n_too_long: tooLongIds.length,
    too_long_ids: tooLongIds,
    ci: f1Intervals(items),
  };
  return { report, predictions };
}

/** The per-subset table, the confusion table and the headline figures as markdown. */
export function processBenchMarkdown(report: ProcessBenchReport): string {
  const ci = (interval: [number, number] | null | undefined) => (interval ? `[${pct(interval[0])}, ${pct(interval[1])}]` : '-');
  const rows = Object.entries(report.subsets).map(([name, m]) => [
    name,
    String(m.n),
    pct(m.acc_error),
    pct(m.acc_correct),
    pct(m.f1),
    ci(report.ci?.subsets[name]),
  ]);
  rows.push([`**average** (over ${coverage(report.n, report.n + report.n_too_long)} samples)`, String(report.n), '', '', pct(report.avg_f1), ci(report.ci?.avg)]);
  const parts = [
    `ProcessBench (threshold ${formatThreshold(report)})`,
    '',
    markdownTable(['subset', 'n', 'acc_error', 'acc_correct', 'F1', `F1 ${report.ci?.level ?? 95}% interval`], rows),
    '',
    `Extracted ProcessBench (wrong process, right answer; n=${report.n_extracted}): accuracy ${pct(report.extracted_accuracy)}`,
  ];
  if (report.n_too_long > 0) parts.push('', `Left out as longer than the model context: ${report.n_too_long} of ${report.n + report.n_too_long} samples; the figures above are over the rest only.`);
  const c = report.confusion;
  parts.push(
    '',
    'First-error position, true (rows) vs predicted (columns):',
    '',
    markdownTable(
      ['true \\ pred', ...c.labels],
      c.counts.map((row, i) => [c.labels[i], ...row.map(String)]),
    ),
  );
  return parts.join('\n');
}

function formatThreshold(report: ProcessBenchReport): string {
  const t = Number(report.threshold.toPrecision(6));
  if (report.threshold_mode !== 'auto') return String(t);
  return `auto: ${t}, chosen on ${report.threshold_subset} with F1 ${pct(report.threshold_subset_f1)}`;
}
