/**
 * ProcessBench step-error identification metrics (ProcessBench, arXiv 2412.06559).
 * The ONE implementation used by `prmkit eval processbench`, `eval sim` and the trainer's dev
 * evaluation. Every figure is a percentage.
 *
 * Definitions:
 * - prediction: the first step whose score is strictly below the threshold, or -1 (no error);
 * - acc_error: exact-match accuracy on samples with label != -1;
 * - acc_correct: accuracy on samples with label == -1;
 * - f1: harmonic mean 2*a*c/(a+c) of the two (0 when both are 0); null when a class is empty;
 * - avg_f1: unweighted mean of the subset F1s present (subsets with null F1 are left out);
 * - extracted_accuracy: accuracy on samples whose process is wrong but whose final answer is
 *   right (label != -1 and final_answer_correct), the "extracted ProcessBench" of Zhang et al. 2025 §3.2.
 */

import { bootstrapCounts, quantile, type BootstrapOptions, type Interval } from './bootstrap.js';

export interface ProcessBenchItem {
  subset: string;
  /** 0-based index of the first wrong step, -1 when every step is right. */
  label: number;
  predicted: number;
  finalAnswerCorrect?: boolean;
}

export interface SubsetMetrics {
  n: number;
  n_error: number;
  n_correct: number;
  /** Percent; null when the subset has no erroneous sample. */
  acc_error: number | null;
  /** Percent; null when the subset has no all-correct sample. */
  acc_correct: number | null;
  /** Percent; null when either accuracy is null. */
  f1: number | null;
}

/** Predicted vs true first-error position; rows are the true position, columns the predicted. */
export interface ConfusionTable {
  /** Row/column labels: "none" (-1), "0", "1", ..., and a last bucket like "10+". */
  labels: string[];
  counts: number[][];
}

export interface ProcessBenchMetrics {
  subsets: Record<string, SubsetMetrics>;
  avg_f1: number | null;
  /** Percent accuracy on label != -1 && final_answer_correct; null when there is no such sample. */
  extracted_accuracy: number | null;
  n_extracted: number;
  /**
   * Per subset: share (percent) of samples with a correct final answer whose process has an
   * error (Zhang et al. 2025 §3.2: GSM8K 5.1%, MATH 11.9%, ...); null without final_answer_correct data.
   */
  process_error_rate_among_correct_answers: Record<string, number | null>;
  confusion: ConfusionTable;
}

/** Index of the first step scored strictly below threshold, or -1 when none is. */
export function predictFirstError(stepScores: readonly number[], threshold: number): number {
  for (let i = 0; i < stepScores.length; i++) if (stepScores[i] < threshold) return i;
  return -1;
}

/** Percent of hits over total; null for an empty set. */
function percent(hits: number, total: number): number | null {
  return total === 0 ? null : (100 * hits) / total;
}

/** Harmonic mean of the two accuracies, 0 when both are 0, null when either is undefined. */
export function harmonicF1(accError: number | null, accCorrect: number | null): number | null {
  if (accError === null || accCorrect === null) return null;
  const denom = accError + accCorrect;
  return denom === 0 ? 0 : (2 * accError * accCorrect) / denom;
}

export function subsetMetrics(items: readonly ProcessBenchItem[]): SubsetMetrics {
  let nError = 0;
  let hitError = 0;
  let nCorrect = 0;
  let hitCorrect = 0;
  for (const item of items) {
    if (item.label === -1) {
      nCorrect++;
      if (item.predicted === -1) hitCorrect++;
    } else {
      nError++;
      if (item.predicted === item.label) hitError++;
    }
  }
  const accError = percent(hitError, nError);
  const accCorrect = percent(hitCorrect, nCorrect);
  return {
    n: items.length,
    n_error: nError,
    n_correct: nCorrect,
    acc_error: accError,
    acc_correct: accCorrect,
    f1: harmonicF1(accError, accCorrect),
  };
}

/** Groups items by subset, keeping the order in which subsets first appear. */
function groupBySubset<T extends { subset: string }>(items: readonly T[]): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    let group = groups.get(item.subset);
    if (!group) groups.set(item.subset, (group = []));
    group.push(item);
  }
  return groups;
}

export function processBenchMetrics(
  items: readonly ProcessBenchItem[],
  opts: { confusionMaxPosition?: number } = {},
): ProcessBenchMetrics {
  const subsets: Record<string, SubsetMetrics> = {};
  const processErrorRate: Record<string, number | null> = {};
  for (const [name, group] of groupBySubset(items)) {
    subsets[name] = subsetMetrics(group);
    const withAnswerInfo = group.filter((it) => it.finalAnswerCorrect !== undefined);
    const rightAnswers = withAnswerInfo.filter((it) => it.finalAnswerCorrect === true);
    processErrorRate[name] =
      withAnswerInfo.length === 0 ? null : percent(rightAnswers.filter((it) => it.label !== -1).length, rightAnswers.length);
  }
  const f1s = Object.values(subsets)
    .map((m) => m.f1)
    .filter((f): f is number => f !== null);
  const avgF1 = f1s.length === 0 ? null : f1s.reduce((a, b) => a + b, 0) / f1s.length;

  const extracted = items.filter((it) => it.label !== -1 && it.finalAnswerCorrect === true);
  return {
    subsets,
    avg_f1: avgF1,
    extracted_accuracy: percent(extracted.filter((it) => it.predicted === it.label).length, extracted.length),
    n_extracted: extracted.length,
    process_error_rate_among_correct_answers: processErrorRate,
    confusion: confusionTable(items, opts.confusionMaxPosition ?? 10),
  };
}

/**
 * Counts of (true, predicted) first-error positions. Positions >= maxPosition share one bucket,
 * so the table stays readable for long solutions.
 */
export function confusionTable(items: readonly { label: number; predicted: number }[], maxPosition = 10): ConfusionTable {
  const labels = ['none', ...Array.from({ length: maxPosition }, (_, i) => String(i)), `${maxPosition}+`];
  const bucket = (pos: number) => (pos < 0 ? 0 : Math.min(pos, maxPosition) + 1);
  const counts = labels.map(() => labels.map(() => 0));
  for (const item of items) counts[bucket(item.label)][bucket(item.predicted)]++;
  return { labels, counts };
}

export interface ScoredItem {
  subset: string;
  label: number;
  stepScores: readonly number[];
}

export interface ThresholdChoice {
  threshold: number;
  /** F1 (percent) of the chosen threshold on the selection subset. */
  f1: number;
  /** Number of candidate thresholds evaluated. */
  candidates: number;
}

/**
 * The `auto` threshold: the one that maximises F1 on `subset` (gsm8k by default, as ProcessBench
 * does for scalar PRMs), then reused on every subset.
 *
 * Search: exact, not a grid. Predictions only change when the threshold crosses a score value,
 * so with v1 < v2 < ... < vm the distinct score values of the subset, the candidates are v1
 * (no step flagged) and every midpoint (vi + vi+1) / 2 (one candidate per interval, placed in
 * the middle so it generalises to other subsets without favouring either end). Thresholds
 * above vm flag every sample at step 0, which scores acc_correct = 0 and F1 = 0, never better
 * than v1; they are not searched. Ties in F1 go to the smallest threshold (the one that flags
 * the fewest steps).
 *
 * Each sample is right on an interval of thresholds: an all-correct sample for t <= min(scores),
 * a sample with first error L for min(scores[0..L-1]) >= t > scores[L]. Counting with sorted
 * interval ends gives every candidate's F1 in O((n + m) log n).
 */
export function chooseThreshold(items: readonly ScoredItem[], subset = 'gsm8k'): ThresholdChoice {
  const selected = items.filter((it) => it.subset === subset);
  const correctUpper: number[] = [];
  const errorLower: number[] = [];
  const errorUpper: number[] = [];
  const values = new Set<number>();
  for (const item of selected) {
    const scores = item.stepScores;
    for (const s of scores) {
      if (!Number.isFinite(s)) throw new Error(`chooseThreshold: non-finite step score ${s} in subset ${subset}`);
      values.add(s);
    }
    if (item.label === -1) {
      correctUpper.push(scores.length === 0 ? Infinity : Math.min(...scores));
    } else if (item.label < scores.length) {
      const before = scores.slice(0, item.label);
      const upper = before.length === 0 ? Infinity : Math.min(...before);
      const lower = scores[item.label];
      // An empty interval (lower >= upper) means no threshold predicts this sample right.
      if (lower < upper) {
        errorLower.push(lower);
        errorUpper.push(upper);
      }
    }
  }
  const nCorrect = selected.filter((it) => it.label === -1).length;
  const nError = selected.length - nCorrect;
  if (nCorrect === 0 || nError === 0) {
    throw new Error(
      `auto threshold: subset "${subset}" needs both erroneous and all-correct samples (has ${nError} and ${nCorrect})`,
    );
  }
  const sorted = [...values].sort((a, b) => a - b);
  const candidates = sorted.length === 0 ? [0.5] : [sorted[0]];
  for (let i = 0; i + 1 < sorted.length; i++) candidates.push((sorted[i] + sorted[i + 1]) / 2);

  const asc = (a: number, b: number) => a - b;
  correctUpper.sort(asc);
  errorLower.sort(asc);
  errorUpper.sort(asc);
  let best: ThresholdChoice | undefined;
  for (const t of candidates) {
    const hitCorrect = correctUpper.length - countBelow(correctUpper, t); // upper >= t
    const hitError = countBelow(errorLower, t) - countBelow(errorUpper, t); // lower < t <= upper
    const f1 = harmonicF1((100 * hitError) / nError, (100 * hitCorrect) / nCorrect) as number;
    if (!best || f1 > best.f1) best = { threshold: t, f1, candidates: candidates.length };
  }
  return best as ThresholdChoice;
}

/** Number of entries of an ascending array strictly below x (binary search). */
function countBelow(sortedAsc: readonly number[], x: number): number {
  let lo = 0;
  let hi = sortedAsc.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sortedAsc[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export interface F1Intervals {
  /** Per subset: the percentile interval of its F1 (null when a class is empty). */
  subsets: Record<string, Interval | null>;
  /** Of the average F1 over subsets, each resampled within itself on the same draw. */
  avg: Interval | null;
  level: number;
  resamples: number;
  seed: number;
}

/**
 * Percentile bootstrap intervals of first-error F1: samples are redrawn with replacement within
 * each subset (a subset's size is fixed by the benchmark), and F1 is recomputed per draw. F1 is
 * a ratio of counts, not a mean of per-sample outcomes, so each draw recounts both accuracies.
 */
export function f1Intervals(items: readonly ProcessBenchItem[], opts: BootstrapOptions = {}): F1Intervals {
  const resamples = opts.resamples ?? 1000;
  const seed = opts.seed ?? 0;
  const level = opts.level ?? 95;
  const perSubset = [...groupBySubset(items)].map(([name, group], k) => {
    const draws = bootstrapCounts(group.length, resamples, seed + k);
    const f1s = draws.map((counts) => {
      let nE = 0, hE = 0, nC = 0, hC = 0;
      group.forEach((it, i) => {
        const c = counts[i];
        if (c === 0) return;
        if (it.label === -1) {
          nC += c;
          if (it.predicted === -1) hC += c;
        } else {
          nE += c;
          if (it.predicted === it.label) hE += c;
        }
      });
      return harmonicF1(percent(hE, nE), percent(hC, nC));
    });
    return { name, f1s };
  });
  const alpha = (100 - level) / 200;
  const interval = (values: (number | null)[]): Interval | null => {
    const finite = values.filter((v): v is number => v !== null);
    if (finite.length < values.length / 2) return null;
    const sorted = Float64Array.from(finite).sort();
    return [quantile(sorted, alpha), quantile(sorted, 1 - alpha)];
  };
  const subsets: Record<string, Interval | null> = {};
  for (const s of perSubset) subsets[s.name] = interval(s.f1s);
  const avgs = Array.from({ length: resamples }, (_, b) => {
    const vals = perSubset.map((s) => s.f1s[b]).filter((v): v is number => v !== null);
    return vals.length === 0 ? null : vals.reduce((a, v) => a + v, 0) / vals.length;
  });
  return { subsets, avg: resamples > 0 ? interval(avgs) : null, level, resamples, seed };
}
