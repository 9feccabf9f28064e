import { chooseThreshold, predictFirstError, processBenchMetrics } from '../eval/processbench-metrics.js';

/**
 * Dev-split metrics computed from step scores: step accuracy and AUROC against the (binarised)
 * step labels, and first-error F1 through the evaluation module's ProcessBench metric so the
 * trainer and `prmkit eval` share one definition.
 */
export interface DevSample {
  /** P(correct) per labelled step. */
  scores: ArrayLike<number>;
  /** Target per labelled step (0/1 or soft; binarised at 0.5). */
  labels: readonly number[];
}

export interface DevMetrics {
  dev_loss: number;
  /** Percent of labelled steps whose score falls on the label's side of 0.5. */
  step_accuracy: number;
  /** Percent; null when the dev steps hold a single class. */
  step_auroc: number | null;
  /**
   * ProcessBench-style F1 (percent) of the first step scored below `first_error_threshold`
   * against the first negative label. The threshold is the one that maximises this F1 on the dev
   * split itself (as `eval.threshold: dev` chooses it), so an uncalibrated PRM whose scores all
   * sit on one side of 0.5 is not read as F1 0 while it ranks steps well.
   */
  first_error_f1: number | null;
  /** The threshold first_error_f1 was computed at. */
  first_error_threshold: number;
  n_samples: number;
  n_steps: number;
}

/**
 * Area under the ROC curve of scores for the positive class, by the rank-sum (Mann-Whitney)
 * statistic with average ranks for ties; null when either class is empty.
 */
export function auroc(scores: ArrayLike<number>, positives: ArrayLike<boolean>): number | null {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let nPos = 0;
  let rankSumPos = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (positives[order[k]]) {
        nPos++;
        rankSumPos += avgRank;
      }
    }
    i = j + 1;
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return null;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

/** Index of the first label below 0.5, or -1 when every labelled step is positive. */
export function firstNegative(labels: readonly number[]): number {
  const i = labels.findIndex((p) => p < 0.5);
  return i;
}

export function devMetrics(samples: readonly DevSample[], devLoss: number, fixedThreshold?: number): DevMetrics {
  const flatScores: number[] = [];
  const flatPos: boolean[] = [];
  let correct = 0;
  for (const s of samples) {
    if (s.scores.length !== s.labels.length) throw new Error(`devMetrics: ${s.scores.length} scores for ${s.labels.length} labels`);
    s.labels.forEach((p, j) => {
      const positive = p >= 0.5;
      flatScores.push(s.scores[j]);
      flatPos.push(positive);
      if ((s.scores[j] >= 0.5) === positive) correct++;
    });
  }
  const auc = auroc(flatScores, flatPos);
  const items = samples.map((s) => ({ subset: 'dev', label: firstNegative(s.labels), stepScores: Array.from(s.scores) }));
  const threshold = fixedThreshold ?? bestThreshold(items);
  const pb = processBenchMetrics(items.map((it) => ({ subset: 'dev', label: it.label, predicted: predictFirstError(it.stepScores, threshold) })));
  return {
    dev_loss: devLoss,
    step_accuracy: flatScores.length === 0 ? 0 : (100 * correct) / flatScores.length,
    step_auroc: auc === null ? null : 100 * auc,
    first_error_f1: pb.subsets.dev?.f1 ?? null,
    first_error_threshold: threshold,
    n_samples: samples.length,
    n_steps: flatScores.length,
  };
}

/** The F1-maximising threshold on the dev items; 0.5 when they hold only one class. */
function bestThreshold(items: readonly { subset: string; label: number; stepScores: number[] }[]): number {
  const errors = items.filter((it) => it.label !== -1).length;
  if (errors === 0 || errors === items.length) return 0.5;
  return chooseThreshold(items, 'dev').threshold;
}
