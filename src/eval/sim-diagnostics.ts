import type { StepSample } from '../data/types.js';
import { POLICY_ERROR_KINDS } from '../sim/check.js';
import { auroc } from '../train/dev-metrics.js';
import type { ProcessBenchPrediction } from './processbench.js';

/**
 * What a PRM has learned to check, read from the truth-labelled sim step-error set: how often it
 * names the first error of each kind (an arithmetic slip is visible in one equation; a wrong
 * operand, a skipped or a repeated step only against the problem's chain of operations), and how
 * its scores of right steps and of first wrong steps are spread.
 */

export interface KindRecall {
  /** Erroneous samples whose first error is of this kind (too-long samples left out). */
  n: number;
  /** Of those, samples whose predicted first error is exactly the true one. */
  found: number;
  /** found / n in percent; null when n is 0. */
  recall: number | null;
}

/**
 * Recall of the first error per error kind (the sample's meta.errorKind): ProcessBench's
 * accuracy on erroneous samples, split by kind. The four policy kinds always appear (n 0 when
 * absent), other kinds when present.
 */
export function recallByKind(samples: readonly StepSample[], predictions: readonly ProcessBenchPrediction[]): Record<string, KindRecall> {
  if (samples.length !== predictions.length) throw new Error(`recallByKind: ${samples.length} samples but ${predictions.length} predictions`);
  const out: Record<string, KindRecall> = {};
  for (const kind of POLICY_ERROR_KINDS) out[kind] = { n: 0, found: 0, recall: null };
  samples.forEach((s, i) => {
    const p = predictions[i];
    if (p.label === -1 || p.predicted === null) return;
    const kind = typeof s.meta?.errorKind === 'string' ? s.meta.errorKind : 'unknown';
    const k = (out[kind] ??= { n: 0, found: 0, recall: null });
    k.n++;
    if (p.predicted === p.label) k.found++;
  });
  for (const k of Object.values(out)) k.recall = k.n > 0 ? (100 * k.found) / k.n : null;
  return out;
}

export interface StepScoreDistribution {
  /** Bin edges, ascending: bins.length + 1 values, over [0, 1] unless a score falls outside. */
  edges: number[];
  /** Steps before the first error (every step of a correct solution): counts per bin. */
  right: number[];
  /** The first wrong step of each erroneous solution: counts per bin. */
  wrong: number[];
  /** P(a right step scores above a first wrong step), in percent; null when a class is empty. */
  auroc: number | null;
}

/**
 * Histogram of step scores for right steps and first wrong steps. Steps after the first error
 * are left out: the truth has no single label for them (the paper drops them from training too).
 */
export function stepScoreDistribution(samples: readonly StepSample[], stepScores: readonly (readonly number[] | null)[], bins = 20): StepScoreDistribution {
  if (samples.length !== stepScores.length) throw new Error(`stepScoreDistribution: ${samples.length} samples but ${stepScores.length} score lists`);
  if (!Number.isInteger(bins) || bins < 1) throw new Error(`stepScoreDistribution: bins must be a positive integer (got ${bins})`);
  const scores: number[] = [];
  const isRight: boolean[] = [];
  samples.forEach((s, i) => {
    const sc = stepScores[i];
    if (!sc) return;
    const firstError = s.firstError ?? -1;
    const end = firstError === -1 ? sc.length : Math.min(firstError + 1, sc.length);
    for (let j = 0; j < end; j++) {
      scores.push(sc[j]);
      isRight.push(j !== firstError);
    }
  });
  const lo = scores.reduce((m, x) => Math.min(m, x), 0);
  const hi = scores.reduce((m, x) => Math.max(m, x), 1);
  const width = (hi - lo) / bins;
  const edges = Array.from({ length: bins + 1 }, (_, b) => (b === bins ? hi : lo + b * width));
  const right = new Array<number>(bins).fill(0);
  const wrong = new Array<number>(bins).fill(0);
  scores.forEach((x, i) => {
    const b = Math.min(bins - 1, Math.floor((x - lo) / width));
    (isRight[i] ? right : wrong)[b]++;
  });
  const a = auroc(scores, isRight);
  return { edges, right, wrong, auroc: a === null ? null : 100 * a };
}
