import { PRMBENCH_CLASSES, PRMBENCH_GROUPS } from './prmbench-data.js';

/**
 * PRMBench metrics (arXiv 2501.03124; ssmisya/PRMBench mr_eval/tasks/prmtest_classified/task.py
 * evaluate_function and the paper's table script). Every figure is a percentage.
 *
 * - A step is judged valid when its score > threshold (strictly), as the official PRM wrappers do.
 * - Over steps, "positive" = a correct step: TP = correct step judged valid, FN = correct step
 *   judged invalid, TN = erroneous step judged invalid, FP = erroneous step judged valid.
 *   Erroneous steps are the item's 1-based error_steps; numbers outside the process match no step.
 * - F1 is the F1 of the positive class, negative F1 that of the erroneous steps.
 * - PRMScore = 0.5 F1 + 0.5 negative F1, overall on the counts summed over every item except the
 *   "correct" ones (multi_solutions included), and per class on that class's counts; the class
 *   multi_solutions (no erroneous step) is scored by its F1 alone, as the paper does.
 * - Groups (simplicity, soundness, sensitivity) are the plain mean of their classes' PRMScores.
 *
 * Degenerate counts: F1 is computed as 2TP / (2TP + FP + FN), equal to the official
 * 2PR / (P + R) whenever TP > 0. With TP = 0 it is 0, and null when the class has no step; the
 * official code gives its sentinel -1 in two of those cases (TP = 0 with FP, FN > 0; no step
 * at all), which would pull a PRMScore below 0. Precision and recall are null on an empty
 * denominator (official: -1).
 */

export interface StepCounts {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export interface PrmBenchClassMetrics extends StepCounts {
  n: number;
  precision: number | null;
  recall: number | null;
  f1: number | null;
  negative_precision: number | null;
  negative_recall: number | null;
  negative_f1: number | null;
  prmscore: number | null;
}

export interface PrmBenchMetrics {
  /** Items evaluated (including the "correct" ones, which the overall figures leave out). */
  n: number;
  threshold: number;
  prmscore: number | null;
  /** Overall figures (all classes but "correct"). */
  overall: PrmBenchClassMetrics;
  /** PRMScore per class (the 8 error classes and multi_solutions). */
  classes: Record<string, number | null>;
  groups: Record<string, number | null>;
  class_details: Record<string, PrmBenchClassMetrics>;
}

/** Classes scored by F1 alone: their processes have no erroneous step. */
const F1_ONLY_CLASSES = new Set(['multi_solutions', 'correct']);

/** TP/FP/TN/FN of one item's steps. errorSteps are 1-based; valid[i] is step i's judgement. */
export function stepCounts(errorSteps: readonly number[], valid: readonly boolean[]): StepCounts {
  const erroneous = new Set(errorSteps.map((e) => e - 1));
  const c: StepCounts = { tp: 0, fp: 0, tn: 0, fn: 0 };
  valid.forEach((v, i) => {
    if (erroneous.has(i)) {
      if (v) c.fp++;
      else c.tn++;
    } else if (v) c.tp++;
    else c.fn++;
  });
  return c;
}

const ratio = (a: number, b: number) => (b === 0 ? null : (100 * a) / b);
const f1Of = (hit: number, missA: number, missB: number) => (hit + missA + missB === 0 ? null : (200 * hit) / (2 * hit + missA + missB));

export function classMetrics(counts: StepCounts, n: number, f1Only: boolean): PrmBenchClassMetrics {
  const { tp, fp, tn, fn } = counts;
  const f1 = f1Of(tp, fp, fn);
  const negativeF1 = f1Of(tn, fn, fp);
  const prmscore = f1Only ? f1 : f1 === null || negativeF1 === null ? null : 0.5 * f1 + 0.5 * negativeF1;
  return {
    n,
    tp,
    fp,
    tn,
    fn,
    precision: ratio(tp, tp + fp),
    recall: ratio(tp, tp + fn),
    f1,
    negative_precision: ratio(tn, tn + fn),
    negative_recall: ratio(tn, tn + fp),
    negative_f1: negativeF1,
    prmscore,
  };
}

function add(into: StepCounts, c: StepCounts): void {
  into.tp += c.tp;
  into.fp += c.fp;
  into.tn += c.tn;
  into.fn += c.fn;
}

/** Metrics of scored items: each with its class, 1-based error steps and one score per step. */
export function prmBenchMetrics(
  items: readonly { classification: string; errorSteps: readonly number[]; stepScores: readonly number[] }[],
  threshold: number,
): PrmBenchMetrics {
  if (!Number.isFinite(threshold)) throw new Error(`PRMBench threshold must be a finite number, got ${threshold}`);
  const total: StepCounts = { tp: 0, fp: 0, tn: 0, fn: 0 };
  const byClass = new Map<string, { counts: StepCounts; n: number }>();
  let nOverall = 0;
  for (const item of items) {
    const counts = stepCounts(
      item.errorSteps,
      item.stepScores.map((s) => s > threshold),
    );
    let cls = byClass.get(item.classification);
    if (!cls) byClass.set(item.classification, (cls = { counts: { tp: 0, fp: 0, tn: 0, fn: 0 }, n: 0 }));
    add(cls.counts, counts);
    cls.n++;
    if (item.classification !== 'correct') {
      add(total, counts);
      nOverall++;
    }
  }
  // Class names come from the data: set as own properties, so "__proto__" is a class like any other.
  const classDetails: Record<string, PrmBenchClassMetrics> = {};
  const classes: Record<string, number | null> = {};
  const setOwn = <V>(into: Record<string, V>, key: string, value: V) => Object.defineProperty(into, key, { value, enumerable: true, writable: true, configurable: true });
  // The paper's class order, then any other class, then "correct".
  const rank = (name: string) => (name === 'correct' ? Infinity : (PRMBENCH_CLASSES as readonly string[]).indexOf(name) >>> 0);
  const names = [...byClass.keys()].sort((a, b) => rank(a) - rank(b));
  for (const name of names) {
    const { counts, n } = byClass.get(name)!;
    setOwn(classDetails, name, classMetrics(counts, n, F1_ONLY_CLASSES.has(name)));
    if (name !== 'correct') setOwn(classes, name, classDetails[name].prmscore);
  }
  const groups: Record<string, number | null> = {};
  for (const [group, members] of Object.entries(PRMBENCH_GROUPS)) {
    const scores = members.filter((m) => Object.hasOwn(classes, m)).map((m) => classes[m]);
    if (scores.length === 0) continue;
    groups[group] = scores.some((s) => s === null) ? null : (scores as number[]).reduce((a, b) => a + b, 0) / scores.length;
  }
  const overall = classMetrics(total, nOverall, false);
  return { n: items.length, threshold, prmscore: overall.prmscore, overall, classes, groups, class_details: classDetails };
}
